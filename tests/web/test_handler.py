"""The shared handler through bare ASGI and WSGI apps (no framework in between)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from coatcheck import AsyncSessionManager, SessionManager, open_async_store, open_store
from coatcheck.web import asgi, wsgi
from coatcheck.web.settings import WebSettings

HTTPS = "https://testserver"


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    session = environ[wsgi.ENVIRON_KEY]
    path = environ["PATH_INFO"]
    if path == "/login":
        session.login("alice")
    elif path == "/logout":
        session.logout()
    elif path == "/logout-then-flash":
        session.logout()
        session.flash("bye")
    elif path == "/flashes":
        body = json.dumps({"user": session.user_id, "flashes": session.pop_flashes()}).encode()
        start_response("200 OK", [("content-type", "application/json")])
        return [body]
    start_response("200 OK", [("content-type", "text/plain")])
    return [b"ok"]


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    session = await scope[asgi.SCOPE_KEY].load()
    path = scope["path"]
    body = b"ok"
    if path == "/login":
        await session.login("alice")
    elif path == "/logout":
        await session.logout()
    elif path == "/logout-then-flash":
        await session.logout()
        session.flash("bye")
    elif path == "/flashes":
        body = json.dumps({"user": session.user_id, "flashes": session.pop_flashes()}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def client(kind: str, store_url: str, *, clear_site_data: bool = False) -> httpx.Client:
    settings = WebSettings(csrf=False, clear_site_data=clear_site_data)
    if kind == "wsgi":
        app = wsgi.SessionMiddleware(wsgi_app, SessionManager(open_store(store_url)), settings)
        return httpx.Client(transport=httpx.WSGITransport(app=app), base_url=HTTPS)
    manager = AsyncSessionManager(open_async_store(store_url))
    return TestClient(asgi.SessionMiddleware(asgi_app, manager, settings), base_url=HTTPS)


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
@pytest.mark.parametrize("clear_site_data", [False, True])
def test_logout_expires_the_cookie_and_clears_site_data_only_when_asked(
    kind: str, clear_site_data: bool
) -> None:
    """``Clear-Site-Data: "cookies"`` reaches every cookie of the registrable domain, so it is
    sent only with ``clear_site_data``; the expired cookie and ``no-store`` always."""
    c = client(kind, "memory://", clear_site_data=clear_site_data)
    c.post("/login", headers={"sec-fetch-site": "same-origin"})
    response = c.post("/logout", headers={"sec-fetch-site": "same-origin"})
    (expired,) = response.headers.get_list("set-cookie")
    assert expired.startswith("__Host-session=;") and "Max-Age=0" in expired
    assert response.headers["cache-control"] == "no-store"
    assert response.headers.get("clear-site-data") == ('"cookies"' if clear_site_data else None)


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_writes_after_logout_land_in_a_fresh_session(kind: str) -> None:
    c = client(kind, "memory://", clear_site_data=True)
    c.post("/login", headers={"sec-fetch-site": "same-origin"})
    old = c.cookies["__Host-session"]
    response = c.post("/logout-then-flash", headers={"sec-fetch-site": "same-origin"})
    new = c.cookies["__Host-session"]
    assert new != old
    assert "clear-site-data" not in response.headers
    flashes = c.get("/flashes").json()
    assert flashes == {"user": None, "flashes": [["info", "bye"]]}


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_store_down_during_login_is_a_503(kind: str) -> None:
    c = client(kind, "postgresql://postgres@127.0.0.1:1/test?timeout=1")
    response = c.post("/login", headers={"accept": "application/json"})
    assert response.status_code == 503
    assert response.json()["error"] == "session_store_unavailable"
    assert "set-cookie" not in response.headers
