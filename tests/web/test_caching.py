"""``Cache-Control: no-store`` on a logged-in user's responses, merged with the app's own
header, and the per-route opt-out, in every adapter but Django's (tests/web/test_django.py)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import flask
import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from coatcheck import AsyncSessionManager, SessionManager, open_async_store, open_store
from coatcheck.web import asgi, wsgi
from coatcheck.web import flask as cc_flask
from coatcheck.web import starlette as cc_starlette
from coatcheck.web.caching import cacheable, is_cacheable, with_no_store
from coatcheck.web.settings import WebSettings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

HTTPS = "https://testserver"
PUBLIC = "public, max-age=60"


@pytest.mark.parametrize(
    ("existing", "sent"),
    [
        (None, "no-store"),
        ("", "no-store"),
        ("public, max-age=60", "no-store"),
        ("private, max-age=60", "private, no-store"),
        ("max-age=0, must-revalidate", "must-revalidate, no-store"),
        ("s-maxage=600, stale-while-revalidate=30, immutable", "no-store"),
        ("no-cache, no-transform", "no-cache, no-transform, no-store"),
        ("no-store", "no-store"),
        ("private, no-store, max-age=0", "private, no-store, max-age=0"),
        ("No-Store", "No-Store"),
    ],
)
def test_no_store_is_merged_into_the_apps_header(existing: str | None, sent: str) -> None:
    assert with_no_store(existing) == sent


def test_the_mark_survives_wrappers_that_copy_the_dict() -> None:
    import functools

    def view() -> None: ...

    @functools.wraps(cacheable(view))
    def wrapper() -> None: ...

    assert is_cacheable(view) and is_cacheable(wrapper)
    assert not is_cacheable(None) and not is_cacheable(lambda: None)


# -- one scenario, every adapter ------------------------------------------------------------


def check(get: Callable[[str], httpx.Response]) -> None:
    """``get(path)`` as a logged-in browser: ``/page`` and ``/open`` (marked cacheable) echo
    the ``cc`` query parameter as their own Cache-Control; ``/login`` logs in (cacheable, but
    it sets the cookie)."""
    assert get("/login").headers["cache-control"] == "no-store", "sets the cookie: never opted out"
    assert get("/page").headers["cache-control"] == "no-store"
    assert get(f"/page?cc={PUBLIC}").headers["cache-control"] == "no-store"
    assert get("/page?cc=private").headers["cache-control"] == "private, no-store"
    assert get("/page?cc=no-store, private").headers["cache-control"] == "no-store, private"
    assert "cache-control" not in get("/open").headers
    assert get(f"/open?cc={PUBLIC}").headers["cache-control"] == PUBLIC
    assert get("/plain").headers.get("cache-control") is None, "the session was never loaded"


def anonymous(get: Callable[[str], httpx.Response]) -> None:
    """No session: nothing is added (there is nothing private to keep)."""
    assert "cache-control" not in get("/page").headers
    assert get(f"/page?cc={PUBLIC}").headers["cache-control"] == PUBLIC


def flask_app() -> flask.Flask:
    app = flask.Flask(__name__)
    cc_flask.CoatCheck(app, manager=SessionManager(open_store("memory://")))

    def answer() -> flask.Response:
        response = flask.jsonify(user=cc_flask.current_session().user_id)
        if "cc" in flask.request.args:
            response.headers["Cache-Control"] = flask.request.args["cc"]
        return response

    app.get("/page")(answer)
    app.get("/open", endpoint="open")(cacheable(lambda: answer()))

    @cacheable
    @app.get("/login")  # marked above the route decorator: the same function object
    def log_in() -> str:
        cc_flask.login("alice")
        return "in"

    app.get("/plain")(lambda: "plain")
    return app


def test_flask() -> None:
    app = flask_app()
    with app.test_client() as browser:
        anonymous(lambda path: _werkzeug(browser.get(f"{HTTPS}{path}")))
        check(lambda path: _werkzeug(browser.get(f"{HTTPS}{path}")))


def _werkzeug(response: Any) -> httpx.Response:
    return httpx.Response(response.status_code, headers=list(response.headers.items()))


def starlette_answer(session: Any, request: Request) -> JSONResponse:
    response = JSONResponse({"user": session.user_id})
    if "cc" in request.query_params:
        response.headers["Cache-Control"] = request.query_params["cc"]
    return response


def fastapi_app(manager: AsyncSessionManager) -> FastAPI:
    app = FastAPI()
    cc_starlette.add_sessions(app, manager=manager, settings=WebSettings())

    @app.get("/page")
    async def page(session: cc_starlette.Session, request: Request) -> JSONResponse:
        return starlette_answer(session, request)

    @app.get("/open")
    @cacheable
    async def open_page(session: cc_starlette.Session, request: Request) -> JSONResponse:
        return starlette_answer(session, request)

    @cacheable
    @app.get("/login")
    async def log_in(session: cc_starlette.Session) -> str:
        await session.login("alice")
        return "in"

    @app.get("/plain")
    async def plain() -> str:
        return "plain"

    return app


def starlette_app(manager: AsyncSessionManager) -> Starlette:
    async def page(request: Request) -> JSONResponse:
        return starlette_answer(await cc_starlette.get_session(request), request)

    async def log_in(request: Request) -> PlainTextResponse:
        await (await cc_starlette.get_session(request)).login("alice")
        return PlainTextResponse("in")

    async def plain(request: Request) -> PlainTextResponse:
        return PlainTextResponse("plain")

    @cacheable
    async def open_page(request: Request) -> JSONResponse:
        return await page(request)

    routes = [
        Route("/page", page),
        Route("/open", open_page),
        Route("/login", cacheable(log_in)),
        Route("/plain", plain),
    ]
    return Starlette(
        routes=routes,
        middleware=[cc_starlette.session_middleware(manager, WebSettings())],
        exception_handlers=dict(cc_starlette.EXCEPTION_HANDLERS),
    )


@pytest.mark.parametrize("build", [fastapi_app, starlette_app])
def test_starlette_and_fastapi(build: Callable[[AsyncSessionManager], Any]) -> None:
    app = build(AsyncSessionManager(open_async_store("memory://")))
    with TestClient(app, base_url=HTTPS) as browser:
        anonymous(browser.get)
        check(browser.get)


# -- the bare middlewares: the app sets ``session.cacheable`` itself --------------------------


def _query(raw: str) -> dict[str, str]:
    from urllib.parse import parse_qsl

    return dict(parse_qsl(raw))


async def bare_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    session = scope[asgi.SCOPE_KEY]
    path, query = scope["path"], _query(scope["query_string"].decode())
    headers: list[tuple[bytes, bytes]] = []
    if path != "/plain":
        await session.load()
    if path == "/login":
        await session.login("alice")
    session.cacheable = path in ("/open", "/login")
    if "cc" in query:
        headers.append((b"Cache-Control", query["cc"].encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"ok"})


def bare_wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    session = environ[wsgi.ENVIRON_KEY]
    path, query = environ["PATH_INFO"], _query(environ.get("QUERY_STRING", ""))
    if path != "/plain":
        session.load()
    if path == "/login":
        session.login("alice")
    session.cacheable = path in ("/open", "/login")
    headers = [("Cache-Control", query["cc"])] if "cc" in query else []
    start_response("200 OK", headers)
    return [b"ok"]


@pytest.fixture
def bare(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    if request.param == "asgi":
        manager = AsyncSessionManager(open_async_store("memory://"))
        yield TestClient(asgi.SessionMiddleware(bare_asgi, manager), base_url=HTTPS)
        return
    app = wsgi.SessionMiddleware(bare_wsgi, SessionManager(open_store("memory://")))
    yield httpx.Client(transport=httpx.WSGITransport(app=app), base_url=HTTPS)


@pytest.mark.parametrize("bare", ["asgi", "wsgi"], indirect=True)
def test_bare_middlewares(bare: httpx.Client) -> None:
    anonymous(bare.get)
    check(bare.get)
