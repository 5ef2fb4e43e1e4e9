"""``logout_session(public_id)``: a user ends one of their own sessions by the id a session
listing shows, and never anyone else's; through Flask (sync) and FastAPI (async)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import flask
import httpx
import pytest
from fastapi import FastAPI

from coatcheck import (
    AsyncSessionManager,
    ConfigError,
    SessionManager,
    open_async_store,
    open_store,
)
from coatcheck.sealed import SealedSessionManager, generate_key
from coatcheck.web import flask as cc_flask
from coatcheck.web import starlette as cc_starlette
from coatcheck.web.settings import WebSettings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

HTTPS = "https://testserver"
SETTINGS = WebSettings(csrf=False)


def flask_site(manager: Any) -> flask.Flask:
    app = flask.Flask(__name__)
    app.config["TESTING"] = True
    cc_flask.CoatCheck(app, manager=manager, settings=SETTINGS)

    @app.post("/login/<user>")
    def log_in(user: str) -> str:
        cc_flask.login(user)
        return "in"

    @app.get("/me")
    def me() -> dict[str, Any]:
        session = cc_flask.current_session()
        own = session.state.session.record
        return {"user": session.user_id, "id": own.public_id if own else None}

    @app.post("/end/<public_id>")
    def end(public_id: str) -> dict[str, bool]:
        return {"ended": cc_flask.logout_session(public_id)}

    return app


def fastapi_site(manager: Any) -> FastAPI:
    app = FastAPI()
    cc_starlette.add_sessions(app, manager=manager, settings=SETTINGS)

    @app.post("/login/{user}")
    async def log_in(user: str, session: cc_starlette.Session) -> str:
        await session.login(user)
        return "in"

    @app.get("/me")
    async def me(session: cc_starlette.Session) -> dict[str, Any]:
        own = session.session.record
        return {"user": session.user_id, "id": own.public_id if own else None}

    @app.post("/end/{public_id}")
    async def end(public_id: str, session: cc_starlette.Session) -> dict[str, bool]:
        return {"ended": await session.logout_session(public_id)}

    return app


def flask_browser(manager: Any) -> Callable[[], httpx.Client]:
    app = flask_site(manager)
    return lambda: httpx.Client(transport=httpx.WSGITransport(app=app), base_url=HTTPS)


def fastapi_browser(manager: Any) -> Callable[[], httpx.Client]:
    app = fastapi_site(manager)
    return lambda: TestClient(app, base_url=HTTPS)


SITES = {
    "flask": (lambda: SessionManager(open_store("memory://")), flask_browser),
    "fastapi": (lambda: AsyncSessionManager(open_async_store("memory://")), fastapi_browser),
}


def logged_in(browser: Callable[[], httpx.Client], user: str) -> tuple[httpx.Client, str]:
    client = browser()
    assert client.post(f"/login/{user}").status_code == 200
    me = client.get("/me").json()
    assert me["user"] == user
    return client, str(me["id"])


@pytest.mark.parametrize("kind", sorted(SITES))
def test_a_user_ends_their_own_sessions_and_never_anyone_elses(kind: str) -> None:
    make_manager, make_browser = SITES[kind]
    browser = make_browser(make_manager())
    here, here_id = logged_in(browser, "alice")
    there, there_id = logged_in(browser, "alice")
    mallory, mallory_id = logged_in(browser, "mallory")

    def end(client: httpx.Client, public_id: str) -> bool:
        response = client.post(f"/end/{public_id}")
        assert response.status_code == 200, response.text
        return bool(response.json()["ended"])

    assert not end(here, mallory_id), "another user's session: refused"
    assert mallory.get("/me").json()["user"] == "mallory"
    assert not end(mallory, here_id)
    assert here.get("/me").json()["user"] == "alice"

    for junk in ("junk", "0" * 16, "x" * 200):
        assert not end(here, junk)
    assert end(here, there_id.upper())
    assert there.get("/me").json()["user"] is None, "the other browser is logged out"
    assert not end(here, there_id), "already ended"

    response = here.post(f"/end/{here_id}")
    assert response.json() == {"ended": True}
    assert "Max-Age=0" in response.headers["set-cookie"], "its own session: a logout"
    assert here.get("/me").json()["user"] is None
    assert not end(browser(), mallory_id), "nobody logged in"
    assert mallory.get("/me").json()["user"] == "mallory"


def test_sealed_mode_refuses_other_ids_clearly_and_ends_its_own() -> None:
    browser = flask_browser(SealedSessionManager([generate_key()]))
    here, here_id = logged_in(browser, "alice")
    with pytest.raises(ConfigError, match="not available in sealed cookie mode"):
        here.post(f"/end/{'0' * 16}")
    response = here.post(f"/end/{here_id}")
    assert response.json() == {"ended": True}
    assert "Max-Age=0" in response.headers["set-cookie"]
