"""What a session library adds to a web request, coatcheck beside the usual choices, in one run.

    .venv/bin/pip install -r benchmarks/requirements.txt     # comparison libraries
    apt-get install -y wrk                                   # part 3 only
    .venv/bin/python benchmarks/web_overhead.py [--quick] [--pin] [--parts 1,3]

Part 1 (per-request cost) and part 2 (store writes of a read-only request)
  Each app is driven in this process by a direct ASGI/WSGI call (no server, no socket between
  client and app; the stores are real). A request either reads one session value or sets one
  (a read-modify-write: load, change one key, save). The framework's bare app (same routes,
  no sessions) runs in the same rounds and its cost is subtracted, so "lib µs" is the session
  library's cost alone. Pairs on the same store kind:
    Starlette  coatcheck ASGI middleware  vs Starlette SessionMiddleware (signed cookie, no
               store: paired with coatcheck's sealed cookie mode, also run with
               opened_cache=0 so that every request decrypts), starsessions (memory, Redis)
    Flask      coatcheck extension        vs Flask's own signed cookie (no store: paired with
               sealed mode), Flask-Session (cachelib SimpleCache = memory, Redis)
    Django     coatcheck SESSION_ENGINE   vs Django's cache backend (locmem = memory, RedisCache;
               memory also run with the remembered token keys cleared before every request,
               so that every token is parsed and hashed anew) and db backend (SQLite: Django's
               defaults, and WAL + synchronous=NORMAL as coatcheck's SQLite store uses)
  Variants are interleaved (A B C ... A B C ...), as PERFORMANCE-NOTES.md advises: within a
  round every variant runs in short chunks, in turn, so all of them meet the same background
  noise. The report gives the median of the per-round medians and their min-max, and the ratio
  coatcheck/other of the median library costs (below 1: coatcheck costs less). Store writes
  during the read-only requests are counted by wrapping each library's store (coatcheck's
  Store, starsessions' store, Flask-Session's upsert/delete, Django's SessionStore.save/delete;
  the wrappers cost well under a microsecond and sit on both sides); Set-Cookie headers on
  read-only responses are counted too. ``--pin`` pins this process (client and app) to CPU 0.

Part 3 (throughput floor)
  wrk -t2 -c50 against one uvicorn worker (uvloop + httptools when installed) serving a tiny
  Starlette app: coatcheck reading one session value vs the same app doing one raw
  redis.asyncio GET (one raw psycopg SELECT by primary key through an AsyncConnectionPool of
  the same size) per request. That raw lookup is the floor a server-side session cannot go
  below with a connection per command; the target is coatcheck >= 90 % of it. coatcheck's
  async Redis store pipelines the per-request commands of concurrent requests on one
  connection; ``coatcheck-redis-lane`` is the same app with ``multiplex=false`` (a connection
  per command, like the floor). Runs are interleaved too.

Everything goes to 127.0.0.1 only, under a random Redis key prefix and private tables, which
are removed at the end. A coatcheck store module or server that is missing is reported as
skipped. It prints numbers and ratios, never pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import importlib.util
import inspect
import io
import itertools
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import types
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
SEALED = "sealed"  # coatcheck's sealed cookie mode in place of a store URL: no store at all
NO_OPENED_CACHE = "coatcheck, no opened cache"  # sealed mode, every cookie decrypted anew
NOT_REMEMBERED = "coatcheck, token not remembered"  # server mode, every token parsed anew
PAYLOAD: dict[str, Any] = {
    "cart": ["book-123", "pen-9"],
    "theme": "dark",
    "csrf": secrets.token_urlsafe(32),
}
PAYLOAD["pad"] = "x" * max(0, 200 - len(json.dumps(PAYLOAD)))
# Every read of the run lies inside the touch interval (the default is 60 s: a read-only
# request then writes at most once a minute per session).
POLICY_ARGS: dict[str, Any] = {
    "idle_timeout": 3600.0,
    "absolute_lifetime": 12 * 3600.0,
    "touch_interval": 1800.0,
}
WRITE_METHODS = ("insert", "update", "delete", "delete_user", "delete_all", "purge_expired")
COUNTS: Counter[str] = Counter()  # store writes per variant key

Headers = list[tuple[str, str]]
Reply = tuple[int, Headers, bytes]


def policy() -> Any:
    from coatcheck import Policy

    return Policy(**POLICY_ARGS)


class Counting:
    """Forwards everything to ``inner``; counts calls of the named (sync or async) methods.

    Each attribute is looked up once and then kept on the instance, so the wrapper costs every
    library the same small call, not a ``__getattr__`` per store access (Django's own backends
    are counted by subclassing, which has no such lookup at all).
    """

    def __init__(self, inner: Any, methods: tuple[str, ...], key: str) -> None:
        self._inner, self._methods, self._key = inner, methods, key

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name not in self._methods:
            if callable(attr):
                setattr(self, name, attr)  # bound methods only: plain values may change
            return attr
        key = self._key
        if inspect.iscoroutinefunction(attr):

            async def counted_async(*args: Any, **kwargs: Any) -> Any:
                COUNTS[key] += 1
                return await attr(*args, **kwargs)

            setattr(self, name, counted_async)
            return counted_async

        def counted(*args: Any, **kwargs: Any) -> Any:
            COUNTS[key] += 1
            return attr(*args, **kwargs)

        setattr(self, name, counted)
        return counted


def count_calls(obj: Any, names: tuple[str, ...], key: str) -> None:
    """Counts calls of bound methods on an object that must keep its type (Flask-Session)."""
    for name in names:
        original = getattr(obj, name)

        def counted(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            COUNTS[key] += 1
            return _original(*args, **kwargs)

        setattr(obj, name, counted)


# -- driving apps without a server ----------------------------------------------------------


def asgi_scope(path: str, cookie: str | None) -> dict[str, Any]:
    headers = [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"ccbench")]
    if cookie:
        headers.append((b"cookie", cookie.encode("latin-1")))
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def asgi_get(app: Any, path: str, cookie: str | None) -> Reply:
    status = 0
    headers: Headers = []
    body = bytearray()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            headers.extend(
                (k.decode("latin-1"), v.decode("latin-1")) for k, v in message["headers"]
            )
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))

    await app(asgi_scope(path, cookie), receive, send)
    return status, headers, bytes(body)


def wsgi_get(app: Any, path: str, cookie: str | None) -> Reply:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_USER_AGENT": "ccbench",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if cookie:
        environ["HTTP_COOKIE"] = cookie
    started: list[Any] = []

    def start_response(status: str, headers: Headers, exc_info: Any = None) -> Callable[..., None]:
        started[:] = [status, headers]
        return lambda data: None

    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return int(started[0][:3]), [(str(k), str(v)) for k, v in started[1]], body


def set_cookies(headers: Headers) -> list[str]:
    return [v for k, v in headers if k.lower() == "set-cookie"]


# -- the variants ---------------------------------------------------------------------------


@dataclass
class Variant:
    """One app: how to send it a GET, and how to count its store writes."""

    framework: str
    name: str
    store: str
    get: Callable[[str, str | None], Any]  # returns a Reply, or an awaitable of one
    is_async: bool
    prefix: str = ""  # path prefix of its routes
    pair: str | None = None  # key of the coatcheck variant it is compared with
    before: Callable[[], None] = lambda: None  # select this variant's shared state (Django)
    close: Callable[[], Any] = lambda: None
    cookie: str | None = None
    note: str = ""

    @property
    def key(self) -> str:
        return f"{self.framework}/{self.name}/{self.store}"

    @property
    def bare(self) -> bool:
        return self.name == "bare app"


class Skip(Exception):
    """A variant that cannot run here (missing package, store module or server)."""


def need(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise Skip(f"{module} not installed: pip install -r benchmarks/requirements.txt")


def coatcheck_store(url: str, key: str, *, asynchronous: bool) -> Any:
    """A write-counting coatcheck store, or Skip if its module or server is missing."""
    from coatcheck import open_async_store, open_store
    from coatcheck.core.errors import ConfigError
    from coatcheck.core.tokens import TokenCodec

    where = url.split("?")[0]
    try:
        store = open_store(url)
    except (ImportError, ConfigError) as exc:
        raise Skip(f"coatcheck store for {where} not available: {exc}") from exc
    try:
        store.load(TokenCodec(store.token_key()).new_token(None)[1])  # probes (and migrates)
    except Exception as exc:
        raise Skip(f"coatcheck store at {where} unavailable: {exc}") from exc
    finally:
        if asynchronous:
            store.close()
    return Counting(open_async_store(url) if asynchronous else store, WRITE_METHODS, key)


def redis_ok(who: str) -> None:
    import redis

    try:
        redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_connect_timeout=1).ping()
    except Exception as exc:
        raise Skip(f"{who} on Redis: no Redis at {REDIS_HOST}:{REDIS_PORT}: {exc}") from exc


@dataclass
class Env:
    """Names and resources shared by the variants of one run."""

    tmp: str
    prefix: str  # Redis key prefix, ends with ':'
    runner: asyncio.Runner
    closers: list[Callable[[], Any]] = field(default_factory=list)


def counter() -> Iterator[int]:
    return itertools.count()


# -- Starlette ------------------------------------------------------------------------------


def starlette_variants(env: Env) -> list[Callable[[], Variant]]:
    def app_for(middleware: list[Any], read: Any, write: Any, seed: Any, **kw: Any) -> Any:
        from starlette.applications import Starlette
        from starlette.routing import Route

        routes = [Route("/read", read), Route("/write", write), Route("/seed", seed)]
        return Starlette(routes=routes, middleware=middleware, **kw)

    def variant(name: str, store: str, app: Any, pair: str | None = None, **kw: Any) -> Variant:
        return Variant(
            "starlette",
            name,
            store,
            lambda path, cookie: asgi_get(app, path, cookie),
            True,
            pair=pair,
            **kw,
        )

    def bare() -> Variant:
        from starlette.responses import PlainTextResponse

        async def read(request: Any) -> Any:
            return PlainTextResponse("dark")

        async def ok(request: Any) -> Any:
            return PlainTextResponse("ok")

        return variant("bare app", "-", app_for([], read, ok, ok))

    def coatcheck(store: str, url: str, opened_cache: int = 1024) -> Callable[[], Variant]:
        name = "coatcheck" if opened_cache else NO_OPENED_CACHE

        def make() -> Variant:
            from starlette.responses import PlainTextResponse

            from coatcheck import AsyncSessionManager
            from coatcheck.web.settings import WebSettings
            from coatcheck.web.starlette import EXCEPTION_HANDLERS, get_session, session_middleware

            key = f"starlette/{name}/{store}"
            if url == SEALED:
                from coatcheck.sealed import AsyncSealedSessionManager, generate_key

                manager: Any = AsyncSealedSessionManager(
                    generate_key(), policy(), opened_cache=opened_cache
                )
            else:
                store_obj = coatcheck_store(url, key, asynchronous=True)
                manager = AsyncSessionManager(store_obj, policy())
            n = counter()

            async def read(request: Any) -> Any:
                session = await get_session(request)
                return PlainTextResponse(session["theme"])

            async def write(request: Any) -> Any:
                session = await get_session(request)
                session["n"] = next(n)
                return PlainTextResponse("ok")

            async def seed(request: Any) -> Any:
                session = await get_session(request)
                session.update(PAYLOAD)
                return PlainTextResponse("ok")

            app = app_for(
                [session_middleware(manager, WebSettings())],
                read,
                write,
                seed,
                exception_handlers=dict(EXCEPTION_HANDLERS),
            )
            close = lambda: env.runner.run(manager.close())  # noqa: E731
            if opened_cache:
                return variant("coatcheck", store, app, close=close)
            return variant(
                name,
                store,
                app,
                pair="starlette/Starlette SessionMiddleware/cookie",
                close=close,
                note="sealed mode with opened_cache=0: every request decrypts and checks its "
                "cookie (a cookie this process has not seen yet)",
            )

        return make

    def starlette_cookie() -> Variant:
        from starlette.middleware import Middleware
        from starlette.middleware.sessions import SessionMiddleware
        from starlette.responses import PlainTextResponse

        n = counter()

        async def read(request: Any) -> Any:
            return PlainTextResponse(request.session["theme"])

        async def write(request: Any) -> Any:
            request.session["n"] = next(n)
            return PlainTextResponse("ok")

        async def seed(request: Any) -> Any:
            request.session.update(PAYLOAD)
            return PlainTextResponse("ok")

        mw = [Middleware(SessionMiddleware, secret_key=secrets.token_hex(32))]
        return variant(
            "Starlette SessionMiddleware",
            "cookie",
            app_for(mw, read, write, seed),
            pair="starlette/coatcheck/cookie",
            note="signed cookie, no store: compared with coatcheck's sealed cookie mode",
        )

    def starsessions(store: str) -> Callable[[], Variant]:
        def make() -> Variant:
            need("starsessions")
            from starlette.middleware import Middleware
            from starlette.responses import PlainTextResponse
            from starsessions import InMemoryStore, SessionMiddleware, load_session

            key = f"starlette/starsessions/{store}"
            if store == "memory":
                inner: Any = InMemoryStore()
            else:
                redis_ok("starsessions")
                import redis.asyncio
                from starsessions.stores.redis import RedisStore

                client = redis.asyncio.Redis(host=REDIS_HOST, port=REDIS_PORT, protocol=2)
                inner = RedisStore(connection=client, prefix=env.prefix + "ss:")
                env.closers.append(lambda: env.runner.run(client.aclose()))
            n = counter()

            async def read(request: Any) -> Any:
                await load_session(request)
                return PlainTextResponse(request.session["theme"])

            async def write(request: Any) -> Any:
                await load_session(request)
                request.session["n"] = next(n)
                return PlainTextResponse("ok")

            async def seed(request: Any) -> Any:
                await load_session(request)
                request.session.update(PAYLOAD)
                return PlainTextResponse("ok")

            store_obj: Any = Counting(inner, ("write", "remove"), key)
            mw = [Middleware(SessionMiddleware, store=store_obj, cookie_https_only=False)]
            return variant(
                "starsessions",
                store,
                app_for(mw, read, write, seed),
                pair=f"starlette/coatcheck/{store}",
            )

        return make

    redis_url = f"redis://{REDIS_HOST}:{REDIS_PORT}/0?prefix={env.prefix}cc-st:"
    return [
        bare,
        coatcheck("memory", "memory://"),
        coatcheck("cookie", SEALED),
        coatcheck("cookie", SEALED, opened_cache=0),
        starlette_cookie,
        starsessions("memory"),
        coatcheck("redis", redis_url),
        starsessions("redis"),
    ]


# -- Flask ----------------------------------------------------------------------------------


def flask_variants(env: Env) -> list[Callable[[], Variant]]:
    def app_for(name: str, with_session: bool) -> Any:
        import flask

        app = flask.Flask(f"ccbench_{name}")
        n = counter()

        if with_session:

            @app.get("/read")
            def read() -> Any:
                return flask.session["theme"]

            @app.get("/write")
            def write() -> Any:
                flask.session["n"] = next(n)
                return "ok"

            @app.get("/seed")
            def seed() -> Any:
                flask.session.update(PAYLOAD)
                return "ok"

        else:

            @app.get("/read")
            def bare_read() -> Any:
                return "dark"

            @app.get("/write")
            def bare_write() -> Any:
                return "ok"

        return app

    def variant(name: str, store: str, app: Any, pair: str | None = None, **kw: Any) -> Variant:
        return Variant(
            "flask",
            name,
            store,
            lambda path, cookie: wsgi_get(app, path, cookie),
            False,
            pair=pair,
            **kw,
        )

    def bare() -> Variant:
        return variant("bare app", "-", app_for("bare", False))

    def coatcheck(store: str, url: str) -> Callable[[], Variant]:
        def make() -> Variant:
            from coatcheck import SessionManager
            from coatcheck.web.flask import CoatCheck
            from coatcheck.web.settings import WebSettings

            key = f"flask/coatcheck/{store}"
            if url == SEALED:
                from coatcheck.sealed import SealedSessionManager, generate_key

                manager: Any = SealedSessionManager(generate_key(), policy())
            else:
                manager = SessionManager(coatcheck_store(url, key, asynchronous=False), policy())
            app = app_for(f"cc_{store}", True)
            CoatCheck(app, manager=manager, settings=WebSettings())
            return variant("coatcheck", store, app, close=manager.close)

        return make

    def flask_cookie() -> Variant:
        app = app_for("cookie", True)
        app.secret_key = secrets.token_hex(32)
        return variant(
            "Flask signed cookie",
            "cookie",
            app,
            pair="flask/coatcheck/cookie",
            note="Flask's built-in session, no store: compared with coatcheck's sealed cookie mode",
        )

    def flask_session(store: str) -> Callable[[], Variant]:
        def make() -> Variant:
            need("flask_session")
            from flask_session import Session

            key = f"flask/Flask-Session/{store}"
            app = app_for(f"fs_{store}", True)
            if store == "memory":
                from cachelib import SimpleCache

                app.config.update(SESSION_TYPE="cachelib", SESSION_CACHELIB=SimpleCache())
            else:
                redis_ok("Flask-Session")
                import redis

                client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, protocol=2)
                app.config.update(
                    SESSION_TYPE="redis",
                    SESSION_REDIS=client,
                    SESSION_KEY_PREFIX=env.prefix + "fs:",
                )
                env.closers.append(client.close)
            Session(app)
            count_calls(app.session_interface, ("_upsert_session", "_delete_session"), key)
            return variant("Flask-Session", store, app, pair=f"flask/coatcheck/{store}")

        return make

    redis_url = f"redis://{REDIS_HOST}:{REDIS_PORT}/0?prefix={env.prefix}cc-fl:"
    return [
        bare,
        coatcheck("memory", "memory://"),
        coatcheck("cookie", SEALED),
        flask_cookie,
        flask_session("memory"),
        coatcheck("redis", redis_url),
        flask_session("redis"),
    ]


# -- Django ---------------------------------------------------------------------------------

DJANGO_ROUTE = {"alias": "default"}  # the database the db session backend uses right now


class _Router:
    def db_for_read(self, model: Any, **hints: Any) -> str:
        return DJANGO_ROUTE["alias"]

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return DJANGO_ROUTE["alias"]

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return True


def django_configure(env: Env) -> None:
    import django
    from django.conf import settings

    if settings.configured:
        return
    wal = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL"
    settings.configure(
        DEBUG=False,
        SECRET_KEY=secrets.token_hex(32),
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF="ccbench_django_urls",
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django.contrib.sessions",
        ],
        MIDDLEWARE=[],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": f"{env.tmp}/django-default.db",
                "CONN_MAX_AGE": None,
            },
            "wal": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": f"{env.tmp}/django-wal.db",
                "CONN_MAX_AGE": None,
                "OPTIONS": {"init_command": wal},
            },
        },
        DATABASE_ROUTERS=[_Router()],
        CACHES={
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
            "redis": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": f"redis://{REDIS_HOST}:{REDIS_PORT}/0",
                "KEY_PREFIX": env.prefix + "dj",
                "OPTIONS": {"protocol": 2},
            },
        },
        SESSION_COOKIE_SECURE=True,
        USE_TZ=True,
    )
    django.setup()
    from django.db import connections
    from django.http import HttpResponse
    from django.urls import path

    n = counter()

    def read(request: Any) -> Any:
        return HttpResponse(request.session["theme"])

    def write(request: Any) -> Any:
        request.session["n"] = next(n)
        return HttpResponse("ok")

    def seed(request: Any) -> Any:
        request.session.update(PAYLOAD)
        return HttpResponse("ok")

    def bare_read(request: Any) -> Any:
        return HttpResponse("dark")

    def bare_ok(request: Any) -> Any:
        return HttpResponse("ok")

    urls = types.ModuleType("ccbench_django_urls")
    urls.urlpatterns = [  # type: ignore[attr-defined]
        path("read", read),
        path("write", write),
        path("seed", seed),
        path("bare/read", bare_read),
        path("bare/write", bare_ok),
    ]
    sys.modules[urls.__name__] = urls
    from django.contrib.sessions.models import Session

    for alias in ("default", "wal"):
        with connections[alias].schema_editor() as editor:
            editor.create_model(Session)


def django_engine(module: str, base_module: str, key: str, cache_alias: str | None = None) -> str:
    """A session engine module: Django's own, counting save()/delete() calls."""
    base = importlib.import_module(base_module).SessionStore
    attrs: dict[str, Any] = {}
    if cache_alias is not None:
        from django.core.cache import caches

        def __init__(self: Any, session_key: str | None = None) -> None:
            base.__init__(self, session_key)
            self._cache = caches[cache_alias]

        attrs["__init__"] = __init__

    def save(self: Any, must_create: bool = False) -> None:
        COUNTS[key] += 1
        base.save(self, must_create)

    def delete(self: Any, session_key: str | None = None) -> None:
        COUNTS[key] += 1
        base.delete(self, session_key)

    attrs.update(save=save, delete=delete)
    engine = types.ModuleType(module)
    engine.SessionStore = type("SessionStore", (base,), attrs)  # type: ignore[attr-defined]
    sys.modules[module] = engine
    return module


def django_variants(env: Env) -> list[Callable[[], Variant]]:
    def handler(middleware: list[str], engine: str) -> Any:
        from django.core.handlers.wsgi import WSGIHandler
        from django.test import override_settings

        with override_settings(MIDDLEWARE=middleware, SESSION_ENGINE=engine):
            return WSGIHandler()

    def variant(name: str, store: str, app: Any, pair: str | None = None, **kw: Any) -> Variant:
        return Variant(
            "django",
            name,
            store,
            lambda path, cookie: wsgi_get(app, path, cookie),
            False,
            pair=pair,
            **kw,
        )

    def bare() -> Variant:
        django_configure(env)
        app = handler([], "django.contrib.sessions.backends.cache")
        return variant("bare app", "-", app, prefix="/bare")

    def coatcheck(store: str, url: str, remembered: bool = True) -> Callable[[], Variant]:
        name = "coatcheck" if remembered else NOT_REMEMBERED

        def make() -> Variant:
            django_configure(env)
            from coatcheck import SessionManager
            from coatcheck.django import conf

            key = f"django/{name}/{store}"
            manager = SessionManager(coatcheck_store(url, key, asynchronous=False), policy())
            app = handler(["coatcheck.django.middleware.SessionMiddleware"], "coatcheck.django")
            if remembered:
                return variant(
                    name, store, app, before=lambda: conf.set_manager(manager), close=manager.close
                )

            def forgetting(environ: dict[str, Any], start_response: Any) -> Any:
                manager.token_codec().forget()  # about 0.1 µs, counted in this row
                return app(environ, start_response)

            return variant(
                name,
                store,
                forgetting,
                pair="django/Django cache (locmem)/memory",
                before=lambda: conf.set_manager(manager),
                close=manager.close,
                note="server mode with the remembered token keys cleared before every request: "
                "each token parsed and hashed anew (a token this process has not seen yet)",
            )

        return make

    def django_backend(
        name: str, store: str, engine: Callable[[], str], alias: str = "default"
    ) -> Callable[[], Variant]:
        def make() -> Variant:
            django_configure(env)
            if store == "redis":
                redis_ok(name)
            app = handler(["django.contrib.sessions.middleware.SessionMiddleware"], engine())
            pair_store = "sqlite" if store.startswith("sqlite") else store
            return variant(
                name,
                store,
                app,
                pair=f"django/coatcheck/{pair_store}",
                before=lambda: DJANGO_ROUTE.update(alias=alias),
            )

        return make

    backends = "django.contrib.sessions.backends"
    redis_url = f"redis://{REDIS_HOST}:{REDIS_PORT}/0?prefix={env.prefix}cc-dj:"
    return [
        bare,
        coatcheck("memory", "memory://"),
        coatcheck("memory", "memory://", remembered=False),
        django_backend(
            "Django cache (locmem)",
            "memory",
            lambda: django_engine(
                "ccbench_dj_locmem", f"{backends}.cache", "django/Django cache (locmem)/memory"
            ),
        ),
        coatcheck("sqlite", f"sqlite:///{env.tmp}/coatcheck-django.db"),
        django_backend(
            "Django db, SQLite defaults",
            "sqlite",
            lambda: django_engine(
                "ccbench_dj_db", f"{backends}.db", "django/Django db, SQLite defaults/sqlite"
            ),
        ),
        django_backend(
            "Django db, SQLite WAL+NORMAL",
            "sqlite-wal",
            lambda: django_engine(
                "ccbench_dj_db_wal",
                f"{backends}.db",
                "django/Django db, SQLite WAL+NORMAL/sqlite-wal",
            ),
            alias="wal",
        ),
        coatcheck("redis", redis_url),
        django_backend(
            "Django cache (RedisCache)",
            "redis",
            lambda: django_engine(
                "ccbench_dj_redis",
                f"{backends}.cache",
                "django/Django cache (RedisCache)/redis",
                "redis",
            ),
        ),
    ]


# -- part 1 and 2: measuring ----------------------------------------------------------------


def call(env: Env, v: Variant, path: str, cookie: str | None) -> Reply:
    reply = v.get(v.prefix + path, cookie)
    if v.is_async:
        reply = env.runner.run(reply)
    return reply  # type: ignore[no-any-return]


def seed(env: Env, v: Variant) -> None:
    """Give the variant a session holding PAYLOAD; check that reading it works."""
    v.before()
    if not v.bare:
        status, headers, body = call(env, v, "/seed", None)
        cookies = set_cookies(headers)
        if status != 200 or not cookies:
            raise RuntimeError(f"{v.key}: seeding answered {status} {body[:200]!r}")
        v.cookie = cookies[0].split(";", 1)[0]
    status, _, body = call(env, v, "/read", v.cookie)
    if status != 200 or body != b"dark":
        raise RuntimeError(f"{v.key}: reading answered {status} {body[:300]!r}")


def batch(env: Env, v: Variant, path: str, n: int) -> tuple[list[int], int, int]:
    """ns of each of n requests, how many responses carried a Set-Cookie, and store writes."""
    v.before()
    for _ in range(3):  # warm-up: caches, connections, a config rebuilt by before()
        call(env, v, path, v.cookie)
    writes = COUNTS[v.key]
    if v.is_async:
        samples, cookies = env.runner.run(_async_batch(v, v.prefix + path, n))
        return samples, cookies, COUNTS[v.key] - writes
    samples, cookies = [], 0
    for _ in range(n):
        t0 = time.perf_counter_ns()
        status, headers, _ = v.get(v.prefix + path, v.cookie)
        samples.append(time.perf_counter_ns() - t0)
        if status != 200:
            raise RuntimeError(f"{v.key} {path}: status {status}")
        cookies += bool(set_cookies(headers))
    return samples, cookies, COUNTS[v.key] - writes


async def _async_batch(v: Variant, path: str, n: int) -> tuple[list[int], int]:
    samples, cookies = [], 0
    get: Callable[[str, str | None], Awaitable[Reply]] = v.get
    for _ in range(n):
        t0 = time.perf_counter_ns()
        status, headers, _ = await get(path, v.cookie)
        samples.append(time.perf_counter_ns() - t0)
        if status != 200:
            raise RuntimeError(f"{v.key} {path}: status {status}")
        cookies += bool(set_cookies(headers))
    return samples, cookies


def spread(values: list[float]) -> str:
    return f"{min(values):.1f}-{max(values):.1f}"


FRAMEWORKS: dict[str, Callable[[Env], list[Callable[[], Variant]]]] = {
    "starlette": starlette_variants,
    "flask": flask_variants,
    "django": django_variants,
}


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when it is installed (as under uvicorn), else asyncio's."""
    if importlib.util.find_spec("uvloop"):
        import uvloop

        return uvloop.new_event_loop
    return None


@contextlib.contextmanager
def environment(prefix: str) -> Iterator[Env]:
    """A run's shared resources. On the way out every variant is closed and the Redis keys
    under ``prefix`` are removed (also used by request_instructions.py and ab_rows.py)."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        asyncio.Runner(loop_factory=event_loop_factory()) as runner,
    ):
        env = Env(tmp=tmp, prefix=prefix, runner=runner)
        try:
            yield env
        finally:
            for close in reversed(env.closers):
                with contextlib.suppress(Exception):
                    result = close()
                    if asyncio.iscoroutine(result):
                        runner.run(result)
            cleanup_redis(prefix)


def seeded_variants(env: Env, framework: str) -> Iterator[Variant]:
    """The framework's variants, each built, closed with the run and seeded with PAYLOAD; one
    that cannot run here (a missing library or server) is reported and left out."""
    for factory in FRAMEWORKS[framework](env):
        try:
            v = factory()
            env.closers.append(v.close)
            seed(env, v)
        except Skip as exc:
            print(f"  skipped ({framework}): {exc}")
            continue
        yield v


def measure_requests(env: Env, rounds: int, n: int, chunk: int) -> None:
    variants = [v for framework in FRAMEWORKS for v in seeded_variants(env, framework)]
    ops = ("read", "write")
    times: dict[tuple[str, str], list[float]] = {(v.key, op): [] for v in variants for op in ops}
    read_writes: Counter[str] = Counter()
    read_cookies: Counter[str] = Counter()
    chunks = max(1, n // chunk)
    for _ in range(rounds):
        # Within a round every variant runs in short chunks, taken in turn, so that all of them
        # meet the same background noise; the round's median per variant is over all its chunks.
        samples: dict[tuple[str, str], list[int]] = {k: [] for k in times}
        for _ in range(chunks):
            for v in variants:
                for op in ops:
                    taken, cookies, writes = batch(env, v, "/" + op, chunk)
                    samples[v.key, op] += taken
                    if op == "read":
                        read_writes[v.key] += writes
                        read_cookies[v.key] += cookies
        for k, values in samples.items():
            times[k].append(statistics.median(values) / 1000)
    bare = {v.framework: v.key for v in variants if v.bare}
    cost: dict[tuple[str, str], list[float]] = {}
    for v in variants:
        for op in ops:
            base = times.get((bare.get(v.framework, ""), op))
            if base and not v.bare:
                cost[v.key, op] = [t - b for t, b in zip(times[v.key, op], base, strict=True)]

    print(
        f"\n## 1. Per-request cost: direct ASGI/WSGI calls, {rounds} rounds x {chunks * chunk} "
        f"requests per variant and op, interleaved in chunks of {chunk}"
    )
    print("   (µs per request: median of round medians, min-max; lib = minus the bare app)")
    head = (
        f"{'framework':10} {'library':30} {'store':10} {'op':5} {'request µs':>10} {'min-max':>13}"
    )
    print(f"{head} {'lib µs':>7} {'min-max':>13} {'cc/other':>8}")
    for v in variants:
        for op in ops:
            t = times[v.key, op]
            line = f"{v.framework:10} {v.name:30} {v.store:10} {op:5} "
            line += f"{statistics.median(t):10.1f} {spread(t):>13}"
            c = cost.get((v.key, op))
            if c:
                line += f" {statistics.median(c):7.1f} {spread(c):>13}"
                other = cost.get((v.pair or "", op))
                if other:  # always coatcheck / other
                    ratio = statistics.median(other) / statistics.median(c)
                    if v.name.startswith("coatcheck"):
                        ratio = 1 / ratio
                    line += f" {ratio:8.2f}"
            print(line)
    notes = [f"  {v.key}: {v.note}" for v in variants if v.note]
    if notes:
        print("notes:\n" + "\n".join(notes))

    total = rounds * chunks * chunk
    print(f"\n## 2. Store writes and Set-Cookie per read-only request ({total} reads per variant)")
    print(
        f"{'framework':10} {'library':30} {'store':10} {'writes/read':>11} {'Set-Cookie/read':>15}"
    )
    for v in variants:
        if v.bare:
            continue
        per_read = read_writes[v.key] / total
        shown = "n/a (cookie)" if v.store == "cookie" else f"{per_read:.2f}"
        cookie_rate = read_cookies[v.key] / total
        print(f"{v.framework:10} {v.name:30} {v.store:10} {shown:>11} {cookie_rate:15.2f}")


# -- part 3: wrk against uvicorn ------------------------------------------------------------


def wrk_app() -> Any:
    """The app uvicorn serves in part 3 (``--factory``); the variant comes from the environment."""
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    kind = os.environ["CCBENCH_VARIANT"]
    opened: list[Callable[[], Awaitable[Any]]] = []
    middleware: list[Any] = []
    kw: dict[str, Any] = {}

    async def ping(request: Any) -> Any:
        return PlainTextResponse("ok")

    if kind == "hello":

        async def endpoint(request: Any) -> Any:
            return PlainTextResponse("dark")

    elif kind == "redis-floor":
        import redis.asyncio

        client = redis.asyncio.Redis(host=REDIS_HOST, port=REDIS_PORT, protocol=2)
        name = os.environ["CCBENCH_KEY"]
        opened.append(client.aclose)

        async def endpoint(request: Any) -> Any:
            value = await client.get(name)
            return PlainTextResponse("dark" if value else "missing")

    elif kind == "pg-floor":
        from psycopg_pool import AsyncConnectionPool

        pool = AsyncConnectionPool(
            PG_DSN, min_size=1, max_size=10, kwargs={"autocommit": True}, open=False
        )
        query = f"SELECT data::text FROM {os.environ['CCBENCH_TABLE']} WHERE id = %s"
        row_id = bytes.fromhex(os.environ["CCBENCH_KEY"])
        opened.append(pool.close)

        async def endpoint(request: Any) -> Any:
            async with pool.connection() as conn:
                cur = await conn.execute(query, (row_id,), prepare=True)
                row = await cur.fetchone()
            return PlainTextResponse("dark" if row else "missing")

        kw["on_open"] = pool.open
    else:  # coatcheck-redis, coatcheck-redis-lane, coatcheck-pg
        from coatcheck import AsyncSessionManager, open_async_store
        from coatcheck.web.settings import WebSettings
        from coatcheck.web.starlette import EXCEPTION_HANDLERS, get_session, session_middleware

        manager = AsyncSessionManager(open_async_store(os.environ["CCBENCH_URL"]), policy())
        opened.append(manager.close)
        middleware.append(session_middleware(manager, WebSettings()))

        async def endpoint(request: Any) -> Any:
            session = await get_session(request)
            return PlainTextResponse(session["theme"])

        kw["exception_handlers"] = dict(EXCEPTION_HANDLERS)

    on_open = kw.pop("on_open", None)

    @asynccontextmanager
    async def lifespan(app: Any) -> Any:
        if on_open is not None:
            await on_open()
        yield
        for close in opened:
            await close()

    routes = [Route("/", endpoint), Route("/ping", ping)]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan, **kw)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    cookie: str | None
    command: list[str]


def start_server(
    name: str,
    env_vars: dict[str, str],
    cookie: str | None,
    fast: bool,
    wrapper: Sequence[str] = (),
    startup: float = 20,
) -> Server:
    """uvicorn serving ``wrk_app`` for the variant ``name``; ``wrapper`` goes before the
    command (a profiler), ``startup`` is how many seconds it may take to answer /ping."""
    port = free_port()
    bench_dir = os.path.dirname(os.path.abspath(__file__))
    command = [
        *wrapper,
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "web_overhead:wrk_app",
        "--app-dir",
        bench_dir,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    command += (
        ["--loop", "uvloop", "--http", "httptools"]
        if fast
        else ["--loop", "asyncio", "--http", "h11"]
    )
    proc = subprocess.Popen(command, env={**os.environ, "CCBENCH_VARIANT": name, **env_vars})
    server = Server(name, port, proc, cookie, command)
    deadline = time.monotonic() + startup
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1) as reply:
                if reply.status == 200:
                    return server
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_server(server)
            raise Skip(f"uvicorn for {name} did not start")
        time.sleep(0.1)


def stop_server(server: Server, timeout: float = 10) -> None:
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGTERM)
        try:
            server.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()


def check_server(server: Server) -> None:
    request = urllib.request.Request(f"http://127.0.0.1:{server.port}/")
    if server.cookie:
        request.add_header("Cookie", server.cookie)
    with urllib.request.urlopen(request, timeout=5) as reply:
        body = reply.read()
        if body != b"dark" or reply.headers.get("set-cookie"):
            raise RuntimeError(f"{server.name}: answered {body!r}, {dict(reply.headers)}")


def wrk_command(server: Server, seconds: int) -> list[str]:
    command = ["wrk", "-t2", "-c50", f"-d{seconds}s"]
    if server.cookie:
        command += ["-H", f"Cookie: {server.cookie}"]
    return [*command, f"http://127.0.0.1:{server.port}/"]


def run_wrk(server: Server, seconds: int) -> tuple[float, str, int]:
    out = subprocess.run(
        wrk_command(server, seconds),
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    latency = re.search(r"Latency\s+(\S+)", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    if errors:
        print(f"  {server.name}: {errors.group(0)}")
    return rps, latency.group(1) if latency else "?", int(bad.group(1)) if bad else 0


@dataclass
class WrkPlan:
    """One app to serve, and how to count its store writes (coatcheck only)."""

    name: str
    env: dict[str, str] = field(default_factory=dict)
    cookie: str | None = None
    writes: Callable[[], int] | None = None


def coatcheck_session(url: str, cleanup: list[Callable[[], Any]]) -> tuple[str, Callable[[], int]]:
    """A session holding PAYLOAD in coatcheck's store at ``url``: its cookie, and a reader of
    its stored version (every write to a session bumps it: the writes the app made)."""
    from coatcheck import SessionManager, open_store
    from coatcheck.cookies import CookieSettings

    manager = SessionManager(open_store(url), policy())
    cleanup.append(manager.close)
    token, _ = manager.create(None, data=PAYLOAD)
    key = manager.token_codec().parse(token)

    def version() -> int:
        record = manager.store.load(key)
        return record.version if record is not None else -1

    return f"{CookieSettings().name}={token}", version


WRK_PAIRS = (
    ("coatcheck-redis", "redis-floor"),
    ("coatcheck-redis-lane", "redis-floor"),
    ("coatcheck-pg", "pg-floor"),
)


def wrk_plans(prefix: str, cleanup: list[Callable[[], Any]]) -> list[WrkPlan]:
    """The apps of part 3, with their data in place; whatever cannot run is reported."""
    value = json.dumps(PAYLOAD)
    plans = [WrkPlan("hello")]
    try:
        redis_ok("the raw GET floor")
        import redis

        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, protocol=2)
        cleanup.append(client.close)
        floor_key = prefix + "floor"
        client.set(floor_key, value)
        plans.append(WrkPlan("redis-floor", {"CCBENCH_KEY": floor_key}))
        url = f"redis://{REDIS_HOST}:{REDIS_PORT}/0?prefix={prefix}cc-wrk:"
        try:
            cookie, version = coatcheck_session(url, cleanup)
            plans.append(WrkPlan("coatcheck-redis", {"CCBENCH_URL": url}, cookie, version))
            # The same store with a connection per command (no pipelining), for comparison.
            lane = url + "&multiplex=false"
            plans.append(WrkPlan("coatcheck-redis-lane", {"CCBENCH_URL": lane}, cookie, version))
        except Exception as exc:
            print(f"  skipped coatcheck on Redis: {exc}")
    except Skip as exc:
        print(f"  skipped the Redis pair: {exc}")
    try:
        import psycopg

        hexid = secrets.token_hex(4)
        floor_table, cc_table = f"cc_bench_floor_{hexid}", f"cc_bench_web_{hexid}"
        row_id = secrets.token_bytes(32)
        with psycopg.connect(PG_DSN, autocommit=True, connect_timeout=2) as conn:
            conn.execute(f"CREATE TABLE {floor_table} (id bytea PRIMARY KEY, data jsonb NOT NULL)")
            cleanup.append(lambda: drop_tables(floor_table, cc_table))
            conn.execute(f"INSERT INTO {floor_table} VALUES (%s, %s)", (row_id, value))
        plans.append(
            WrkPlan("pg-floor", {"CCBENCH_TABLE": floor_table, "CCBENCH_KEY": row_id.hex()})
        )
        url = f"{PG_DSN}?table={cc_table}"
        try:
            cookie, version = coatcheck_session(url, cleanup)
            plans.append(WrkPlan("coatcheck-pg", {"CCBENCH_URL": url}, cookie, version))
        except Exception as exc:
            print(f"  skipped coatcheck on PostgreSQL: {exc}")
    except Exception as exc:
        print(f"  skipped the PostgreSQL pair: {exc}")
    return plans


def measure_throughput(env: Env, rounds: int, seconds: int) -> None:
    print(
        f"\n## 3. Throughput: wrk -t2 -c50 -d{seconds}s against one uvicorn worker, "
        f"{rounds} rounds interleaved"
    )
    if shutil.which("wrk") is None:
        print("  skipped: wrk not installed (apt-get install -y wrk)")
        return
    fast = all(importlib.util.find_spec(m) for m in ("uvloop", "httptools"))
    if not fast:
        print("  note: uvloop/httptools not installed: plain uvicorn (asyncio loop, h11)")
    servers: list[Server] = []
    cleanup: list[Callable[[], Any]] = []
    try:
        plans = {plan.name: plan for plan in wrk_plans(env.prefix, cleanup)}
        for plan in plans.values():
            try:
                server = start_server(plan.name, plan.env, plan.cookie, fast)
            except Skip as exc:
                print(f"  skipped {plan.name}: {exc}")
                continue
            servers.append(server)
            check_server(server)
            env_line = " ".join(shlex.quote(f"{k}={v}") for k, v in plan.env.items())
            print(f"  {plan.name}: CCBENCH_VARIANT={plan.name} {env_line} \\")
            print(f"      {shlex.join(server.command)}")
        if servers:
            print(
                f"  load: {shlex.join(wrk_command(servers[-1], seconds))}  (Cookie: coatcheck only)"
            )
        for server in servers:  # warm-up: pools grow, statements get prepared
            run_wrk(server, 2)
        results: dict[str, list[float]] = {s.name: [] for s in servers}
        latencies: dict[str, list[str]] = {s.name: [] for s in servers}
        bad: Counter[str] = Counter()
        writes: Counter[str] = Counter()
        for _ in range(rounds):
            for server in servers:
                count = plans[server.name].writes
                before = count() if count else 0
                rps, latency, non2xx = run_wrk(server, seconds)
                if count:
                    writes[server.name] += count() - before
                results[server.name].append(rps)
                latencies[server.name].append(latency)
                bad[server.name] += non2xx
        print(
            f"{'app':20} {'req/s median':>12} {'min-max':>15} {'non-2xx':>7}  latency avg per round"
        )
        for name, values in results.items():
            lo, hi = min(values), max(values)
            print(
                f"{name:20} {statistics.median(values):12.0f} {f'{lo:.0f}-{hi:.0f}':>15} "
                f"{bad[name]:7d}  {' '.join(latencies[name])}"
            )
        for cc, floor in WRK_PAIRS:
            if cc in results and floor in results:
                ratios = [a / b for a, b in zip(results[cc], results[floor], strict=True)]
                print(
                    f"{cc} / {floor}: {statistics.median(ratios):.1%} of the floor "
                    f"(per round {', '.join(f'{r:.1%}' for r in ratios)}; target >= 90%)"
                )
        for name, _ in WRK_PAIRS:
            if name in results:
                print(f"{name}: writes to its session during the measured runs: {writes[name]}")
    finally:
        for server in servers:
            stop_server(server)
        for close in reversed(cleanup):
            with contextlib.suppress(Exception):
                close()


def drop_tables(*tables: str) -> None:
    import psycopg

    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        for table in tables:
            conn.execute(f"DROP TABLE IF EXISTS {table}")


# -- the run --------------------------------------------------------------------------------


def versions() -> str:
    names = [
        "coatcheck",
        "starlette",
        "starsessions",
        "flask",
        "flask-session",
        "cachelib",
        "django",
        "redis",
        "psycopg",
        "psycopg-pool",
        "uvicorn",
        "uvloop",
        "httptools",
        "hiredis",
    ]
    found = []
    for name in names:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    found.append(f"python {sys.version.split()[0]}")
    if shutil.which("wrk"):
        banner = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout
        found.append(banner.split(" [")[0].strip() or "wrk")
    with contextlib.suppress(Exception):
        import redis

        info = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_connect_timeout=1).info(
            "server"
        )
        found.append(f"redis-server {info['redis_version']}")
    with contextlib.suppress(Exception):
        import psycopg

        with psycopg.connect(PG_DSN, connect_timeout=2) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            found.append(f"postgresql {row[0] if row else '?'}")
    return ", ".join(found)


def cleanup_redis(prefix: str) -> None:
    with contextlib.suppress(Exception):
        import redis

        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_connect_timeout=1)
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
        client.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a short run (about a minute)")
    parser.add_argument("--rounds", type=int, help="part 1 rounds (default 9, quick 3)")
    parser.add_argument(
        "--requests", type=int, help="requests per variant, op and round (default 300, quick 60)"
    )
    parser.add_argument(
        "--chunk", type=int, help="requests per variant in a row within a round (default 30)"
    )
    parser.add_argument("--wrk-rounds", type=int, help="part 3 rounds (default 3, quick 1)")
    parser.add_argument("--wrk-seconds", type=int, help="seconds per wrk run (default 10, quick 3)")
    parser.add_argument("--parts", default="1,3", help="which parts: 1 (includes 2) and/or 3")
    parser.add_argument("--pin", action="store_true", help="pin this process to CPU 0 for part 1")
    args = parser.parse_args()
    rounds = args.rounds or (3 if args.quick else 9)
    n = args.requests or (60 if args.quick else 300)
    chunk = min(n, args.chunk or 30)
    wrk_rounds = args.wrk_rounds or (1 if args.quick else 3)
    wrk_seconds = args.wrk_seconds or (3 if args.quick else 10)
    parts = set(args.parts.split(","))
    print(f"# web_overhead: {shlex.join([os.path.relpath(sys.executable), *sys.argv])}")
    print(f"# {versions()}")
    print(f"# {os.cpu_count()} CPUs, part 1 pinned to CPU 0: {args.pin}; policy {POLICY_ARGS}")
    print("# Redis clients of every library: redis-py with protocol=2 (coatcheck's default)")
    started = time.monotonic()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"# load average at the start (other processes share the machine): {load}")
    with environment(f"ccbench:{secrets.token_hex(4)}:") as env:
        if "1" in parts:
            print(f"# part 1 event loop: {'uvloop' if event_loop_factory() else 'asyncio'}")
            affinity = os.sched_getaffinity(0)
            if args.pin:
                os.sched_setaffinity(0, {0})
            try:
                measure_requests(env, rounds, n, chunk)
            finally:
                os.sched_setaffinity(0, affinity)
        if "3" in parts:
            measure_throughput(env, wrk_rounds, wrk_seconds)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\n# done in {time.monotonic() - started:.0f} s; load average at the end {load}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
