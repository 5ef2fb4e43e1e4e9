"""Small apps behind coatcheck's OIDC stack, served on the port the test provider's client
is registered for, and a cookie-keeping HTTP client that plays one browser.

Every app answers:

* ``GET /``: who is logged in, as JSON: ``{"user", "sid", "token", "expires_at"}``, where
  ``token`` is a digest of the access token the request saw (the token itself is never
  shown), so a test can tell a refreshed token from the old one;
* ``POST /echo``: the same, for unsafe requests (CSRF token in ``X-CSRF-Token``);
* ``GET /csrf``: the session's CSRF token;
* ``GET /page``: a small HTML page with a log-in link or a log-out form.
"""

from __future__ import annotations

import hashlib
import html
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import urljoin, urlsplit
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from uvicorn_thread import running

from coatcheck import AsyncSessionManager, SessionManager, open_async_store, open_store
from coatcheck.cookies import development
from coatcheck.oidc import OIDCSettings
from coatcheck.oidc.record import OIDC_KEY
from coatcheck.web import oidc_wsgi
from coatcheck.web.oidc import with_oidc
from coatcheck.web.settings import WebSettings
from coatcheck.web.starlette import get_session

from .provider_harness import OidcProvider

SERVER_START = 10.0  # seconds for uvicorn to listen
JSON = {"accept": "application/json"}
HTML = {"accept": "text/html,application/xhtml+xml"}


def digest(token: object) -> str | None:
    if not isinstance(token, str):
        return None
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def whoami(user_id: str | None, data: Any) -> dict[str, Any]:
    oidc = data.get(OIDC_KEY) if data is not None else None
    oidc = oidc if isinstance(oidc, dict) else {}
    return {
        "user": user_id,
        "sid": oidc.get("sid"),
        "token": digest(oidc.get("access_token")),
        "expires_at": oidc.get("expires_at"),
    }


def page_html(user_id: str | None, csrf: str) -> str:
    if user_id is None:
        body = '<p>Not logged in.</p><p><a href="/oidc/login?next=/page">Log in</a></p>'
    else:
        body = (
            f"<p>Hello {html.escape(user_id)}.</p>"
            '<form method="post" action="/oidc/logout">'
            f'<input type="hidden" name="csrf_token" value="{html.escape(csrf, quote=True)}">'
            "<button>Log out</button></form>"
        )
    return (
        "<!doctype html><html lang=en><meta charset=utf-8><title>App</title>"
        f"<main><h1>App</h1>{body}</main></html>"
    )


def starlette_app(manager: AsyncSessionManager) -> Starlette:
    async def home(request: Request) -> Response:
        session = await get_session(request)
        return JSONResponse(whoami(session.user_id, session))

    async def csrf(request: Request) -> Response:
        session = await get_session(request)
        return JSONResponse({"csrf": session.csrf_token()})

    async def page(request: Request) -> Response:
        session = await get_session(request)
        token = session.csrf_token() if session.user_id else ""
        return HTMLResponse(page_html(session.user_id, token))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await manager.close()

    return Starlette(
        routes=[
            Route("/", home),
            Route("/echo", home, methods=["POST"]),
            Route("/csrf", csrf),
            Route("/page", page),
        ],
        lifespan=lifespan,
    )


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """The same routes as :func:`starlette_app` (but ``/page``), as a plain WSGI app."""
    session = environ["coatcheck.session"]  # loads on first use
    if environ["PATH_INFO"] == "/csrf":
        answer: dict[str, Any] = {"csrf": session.csrf_token()}
    else:
        answer = whoami(session.user_id, session)
    start_response("200 OK", [("content-type", "application/json")])
    return [json.dumps(answer).encode()]


def rp_settings(provider: OidcProvider, **changes: Any) -> OIDCSettings:
    """The relying party's settings for the provider's one client, on the app's port: tokens
    refreshed a second before they expire (the provider's live five)."""
    arguments: dict[str, Any] = {
        "issuer": provider.issuer,
        "client_id": provider.client_id,
        "client_secret": provider.client_secret,
        "base_url": provider.app.base,
        "refresh_skew": 1.0,
        **changes,
    }
    return OIDCSettings(**arguments)


@dataclass
class Site:
    """A running app: its base URL, the provider, and a manager of its own on the app's store
    for looking at sessions from outside."""

    url: str
    provider: OidcProvider
    settings: OIDCSettings
    store_url: str
    sessions: SessionManager = field(repr=False)

    def browser(self) -> Browser:
        return Browser(self)

    def logged_in(self, user: str = "alice") -> tuple[Browser, dict[str, Any]]:
        """A new browser logged in as ``user``, and what the app says about it."""
        browser = Browser(self)
        browser.log_in(user)
        return browser, browser.me()

    def user_sessions(self, user_id: str) -> list[Any]:
        return list(self.sessions.list_user(user_id))


@contextmanager
def serve(app: Any, port: int) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a thread on 127.0.0.1:``port``; its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    with running(uvicorn.Server(config), port, SERVER_START) as url:
        yield url


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve_wsgi(app: Any, port: int) -> Iterator[str]:
    """Serve a WSGI app with the standard library's server, a thread per request."""
    server = make_server(
        "127.0.0.1", port, app, server_class=ThreadingWSGIServer, handler_class=QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, name=f"wsgi-{port}", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(SERVER_START)


@contextmanager
def asgi_site(
    provider: OidcProvider, store_url: str, build: Callable[..., Any] | None = None, **changes: Any
) -> Iterator[Site]:
    """The Starlette app behind ``with_oidc`` (or what ``build(manager, settings)`` makes),
    served for ``provider``'s client."""
    settings = rp_settings(provider, **changes)
    manager = AsyncSessionManager(open_async_store(store_url))
    app = (build or default_stack)(manager, settings)
    sessions = SessionManager(open_store(store_url))
    try:
        with serve(app, provider.app.port) as url:
            yield Site(url, provider, settings, store_url, sessions)
    finally:
        sessions.close()


@contextmanager
def wsgi_site(provider: OidcProvider, store_url: str, **changes: Any) -> Iterator[Site]:
    """:func:`wsgi_app` behind the WSGI ``with_oidc`` (the synchronous face throughout)."""
    settings = rp_settings(provider, **changes)
    manager = SessionManager(open_store(store_url))
    app = oidc_wsgi.with_oidc(wsgi_app, manager, settings, WebSettings.build(cookie=development()))
    try:
        with serve_wsgi(app, provider.app.port) as url:
            yield Site(url, provider, settings, store_url, manager)
    finally:
        app.close()
        manager.close()


def default_stack(manager: AsyncSessionManager, settings: OIDCSettings) -> Any:
    return with_oidc(
        starlette_app(manager), manager, settings, WebSettings.build(cookie=development())
    )


class Browser:
    """One browser: one cookie jar for the app and the provider (both on 127.0.0.1)."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.client = httpx.Client(timeout=30)

    def close(self) -> None:
        self.client.close()

    def url(self, path: str) -> str:
        return urljoin(self.site.url, path)

    def get(self, path: str, *, html: bool = False, **kwargs: Any) -> httpx.Response:
        return self.client.get(self.url(path), headers=HTML if html else JSON, **kwargs)

    def post(self, path: str, *, html: bool = False, **kwargs: Any) -> httpx.Response:
        headers = {**(HTML if html else JSON), "x-csrf-token": self.csrf()}
        return self.client.post(self.url(path), headers=headers, **kwargs)

    def csrf(self) -> str:
        return str(self.get("/csrf").json()["csrf"])

    def me(self) -> dict[str, Any]:
        response = self.get("/")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def session_cookie(self) -> str | None:
        return self.client.cookies.get("session")

    def start_login(self, target: str = "/") -> str:
        """GET the login path; the provider's authorization URL it redirects to."""
        response = self.get(f"/oidc/login?next={target}", html=True)
        assert response.status_code == 303, response.text
        return str(response.headers["location"])

    def log_in(self, user: str, target: str = "/") -> httpx.Response:
        """The whole login: the app, the provider's form, the callback; the callback's answer."""
        back = self.site.provider.login(self.client, self.start_login(target), user)
        return self.client.get(back, headers=HTML)

    def follow(self, response: httpx.Response, *, html: bool = True) -> httpx.Response:
        """Follow an answer's redirects through the app and the provider (a browser would),
        stopping at the first page that is not a redirect."""
        for _ in range(10):
            if not response.is_redirect:
                return response
            target = urljoin(str(response.url), response.headers["location"])
            response = self.client.get(target, headers=HTML if html else JSON)
        raise AssertionError("more than 10 redirects")

    def wait_until_expired(self, expires_at: float) -> None:
        """Wait (no assertion on time) until the access token is due for a refresh."""
        due = expires_at - self.site.settings.refresh_skew
        while time.time() < due + 0.05:
            time.sleep(min(0.2, max(0.01, due + 0.05 - time.time())))


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")
