"""Remember me in the web layer: ``login(..., remember=True)`` gives a persistent cookie whose
``Max-Age`` is the remember lifetime, and the session the policy's longer limits; in server
mode (Flask, FastAPI, Django) and sealed mode (where the flag travels in the sealed payload)."""

from __future__ import annotations

import re
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
    FakeClock,
    Policy,
    SessionManager,
    open_async_store,
    open_store,
)
from coatcheck.cookies import CookieSettings
from coatcheck.sealed import SealedSessionManager, generate_key
from coatcheck.web import flask as cc_flask
from coatcheck.web import starlette as cc_starlette
from coatcheck.web.settings import WebSettings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

HTTPS = "https://testserver"
HOUR = 3600
DAY = 24 * HOUR
POLICY = Policy(remember_absolute_lifetime=30 * DAY, remember_idle_timeout=7 * DAY)
SETTINGS = WebSettings(csrf=False)


def max_age(response: httpx.Response) -> int | None:
    match = re.search(r"Max-Age=(\d+)", response.headers.get("set-cookie", ""))
    return int(match.group(1)) if match else None


def flask_app(manager: Any) -> Callable[[], httpx.Client]:
    app = flask.Flask(__name__)
    app.config["TESTING"] = True
    cc_flask.CoatCheck(app, manager=manager, settings=SETTINGS)

    @app.post("/login/<user>")
    def log_in(user: str) -> str:
        cc_flask.login(user, remember=flask.request.args.get("remember") == "1")
        return "in"

    @app.post("/rotate")
    def rotate() -> str:
        cc_flask.current_session().rotate()
        return "rotated"

    @app.get("/me")
    def me() -> dict[str, Any]:
        session = cc_flask.current_session()
        return {"user": session.user_id, "why": session.expired_reason}

    return lambda: httpx.Client(transport=httpx.WSGITransport(app=app), base_url=HTTPS)


def fastapi_app(manager: Any) -> Callable[[], httpx.Client]:
    app = FastAPI()
    cc_starlette.add_sessions(app, manager=manager, settings=SETTINGS)

    @app.post("/login/{user}")
    async def log_in(user: str, session: cc_starlette.Session, remember: str = "") -> str:
        await session.login(user, remember=remember == "1")
        return "in"

    @app.post("/rotate")
    async def rotate(session: cc_starlette.Session) -> str:
        await session.rotate()
        return "rotated"

    @app.get("/me")
    async def me(session: cc_starlette.Session) -> dict[str, Any]:
        return {"user": session.user_id, "why": session.expired_reason}

    return lambda: TestClient(app, base_url=HTTPS)


def flask_server(clock: FakeClock, policy: Policy) -> Callable[[], httpx.Client]:
    return flask_app(SessionManager(open_store("memory://"), policy, clock=clock))


def fastapi_server(clock: FakeClock, policy: Policy) -> Callable[[], httpx.Client]:
    return fastapi_app(AsyncSessionManager(open_async_store("memory://"), policy, clock=clock))


def flask_sealed(clock: FakeClock, policy: Policy, cache: int = 1024) -> Callable[[], httpx.Client]:
    store = open_store("memory://")
    keys = [generate_key()]
    manager = SealedSessionManager(keys, policy, store=store, clock=clock, opened_cache=cache)
    return flask_app(manager)


def flask_sealed_uncached(clock: FakeClock, policy: Policy) -> Callable[[], httpx.Client]:
    """Every cookie decrypted: the flag must come from the sealed payload itself."""
    return flask_sealed(clock, policy, cache=0)


SITES = {
    "flask": flask_server,
    "fastapi": fastapi_server,
    "flask-sealed": flask_sealed,
    "flask-sealed-uncached": flask_sealed_uncached,
}


@pytest.fixture(params=sorted(SITES))
def browser(request: pytest.FixtureRequest, clock: FakeClock) -> Callable[[], httpx.Client]:
    return SITES[request.param](clock, POLICY)


def test_a_remembered_login_gets_a_persistent_cookie_and_the_longer_limits(
    browser: Callable[[], httpx.Client], clock: FakeClock
) -> None:
    remembered, plain = browser(), browser()
    response = remembered.post("/login/alice?remember=1")
    assert max_age(response) == 30 * DAY, "persistent although the settings are not"
    assert max_age(plain.post("/login/bob")) is None, "the settings' browser-session cookie"

    clock.advance(2 * HOUR)  # past the normal idle timeout (30 min)
    assert remembered.get("/me").json()["user"] == "alice"
    assert plain.get("/me").json() == {"user": None, "why": "expired_idle"}

    clock.advance(6 * DAY)
    rotated = remembered.post("/rotate")
    assert max_age(rotated) == 30 * DAY - 6 * DAY - 2 * HOUR, "the flag survives rotation"
    clock.advance(7 * DAY + 1)  # past the remember idle timeout
    assert remembered.get("/me").json() == {"user": None, "why": "expired_idle"}


def test_the_remember_lifetime_still_ends_a_busy_session(
    browser: Callable[[], httpx.Client], clock: FakeClock
) -> None:
    remembered = browser()
    remembered.post("/login/alice?remember=1")
    for days in (6, 6, 6, 6, 5):  # 29 days, never idle for 7
        clock.advance(days * DAY)
        assert remembered.get("/me").json()["user"] == "alice"
    clock.advance(1 * DAY)
    assert remembered.get("/me").json() == {"user": None, "why": "expired_absolute"}


@pytest.mark.parametrize("site", sorted(SITES))
def test_remember_needs_the_policy_to_allow_it(site: str, clock: FakeClock) -> None:
    client = SITES[site](clock, Policy())()
    with pytest.raises(ConfigError, match="remember"):
        client.post("/login/alice?remember=1")


def test_a_logged_out_remembered_sealed_cookie_stays_refused_for_its_whole_lifetime(
    clock: FakeClock,
) -> None:
    """Its ended entry in the user's revocation record lasts the remember lifetime, not the
    normal one: pruned after 12 hours, a copy of the cookie would open again."""
    manager = SealedSessionManager([generate_key()], POLICY, store=open_store("memory://"))
    manager.clock = clock
    client = flask_app(manager)
    remembered = client()
    remembered.post("/login/alice?remember=1")
    copy = dict(remembered.cookies)
    remembered.post("/login/alice?remember=1")  # logged in again: the copy is ended
    clock.advance(13 * HOUR)
    other = client()
    other.post("/login/alice")
    other.post("/login/alice")  # a write to the revocation record, which prunes dead entries
    thief = client()
    thief.cookies.update(copy)
    assert thief.get("/me").json()["user"] is None


def test_policy_keys_in_flask_config() -> None:
    app = flask.Flask(__name__)
    app.config.update(
        COATCHECK_REMEMBER_ABSOLUTE_LIFETIME="30d", COATCHECK_REMEMBER_IDLE_TIMEOUT=""
    )
    policy = cc_flask.policy_from_config(app)
    assert policy.remember_enabled and policy.limits(True) == (30 * DAY, policy.idle_timeout)
    assert not cc_flask.policy_from_config(flask.Flask(__name__)).remember_enabled


def test_a_cookie_can_be_made_persistent_for_one_response() -> None:
    session_cookie = CookieSettings()
    assert "Max-Age" not in session_cookie.set_cookie("v", 60)
    assert "Max-Age=60" in session_cookie.set_cookie("v", 60, persistent=True)
    lasting = CookieSettings(persistent=True)
    assert "Max-Age" not in lasting.set_cookie("v", 60, persistent=False)
