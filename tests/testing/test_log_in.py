"""One-line login of real test clients against real apps behind coatcheck's middleware."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from coatcheck_testing_support import (  # noqa: F401 (clean_guard_env is autouse)
    TestClient,
    clean_guard_env,
    flask_app,
    starlette_app,
)

from coatcheck import AsyncSessionManager, ConfigError, FakeClock, SessionManager
from coatcheck.cookies import CookieSettings, development
from coatcheck.sealed import SealedSessionManager, generate_key
from coatcheck.testing import (
    TestingNotAllowed,
    alog_in,
    alog_out,
    alogin_token,
    log_in,
    log_out,
    login_token,
)
from coatcheck.web.settings import WebSettings

SECURE_BASE = "https://testserver"


def user_of(client: Any, path: str = "/me") -> Any:
    response = client.get(path)
    assert response.status_code == 200, response.text
    body = response.json
    return (body if isinstance(body, dict) else body())["user"]  # werkzeug: property; httpx: method


# -- the token itself ------------------------------------------------------------------------


def test_login_token_is_a_real_logged_in_session(
    coatcheck_memory_manager: SessionManager, coatcheck_clock: FakeClock
) -> None:
    token = login_token(coatcheck_memory_manager, "alice", data={"cart": [1, 2]})
    session = coatcheck_memory_manager.load(token)
    assert session.user_id == "alice"
    assert session.authenticated_at == coatcheck_clock()
    assert session["cart"] == [1, 2]
    assert session.kind == "browser"
    assert (
        coatcheck_memory_manager.load(login_token(coatcheck_memory_manager, "bot", kind="api")).kind
        == "api"
    )


def test_alogin_token(coatcheck_async_memory_manager: AsyncSessionManager) -> None:
    async def scenario() -> None:
        token = await alogin_token(coatcheck_async_memory_manager, "alice")
        assert (await coatcheck_async_memory_manager.load(token)).user_id == "alice"

    asyncio.run(scenario())


def test_login_token_refuses_the_wrong_kind_of_manager(
    coatcheck_memory_manager: SessionManager, coatcheck_async_memory_manager: AsyncSessionManager
) -> None:
    with pytest.raises(TypeError, match="alogin_token"):
        login_token(coatcheck_async_memory_manager, "alice")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="login_token"):
        asyncio.run(alogin_token(coatcheck_memory_manager, "alice"))  # type: ignore[arg-type]


def test_helpers_refuse_in_a_declared_production(
    monkeypatch: pytest.MonkeyPatch, coatcheck_memory_manager: SessionManager
) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    with pytest.raises(TestingNotAllowed, match="APP_ENV is 'production'"):
        login_token(coatcheck_memory_manager, "alice")
    with pytest.raises(TestingNotAllowed):
        log_in(flask_app(coatcheck_memory_manager).test_client(), coatcheck_memory_manager, "alice")


# -- Starlette / httpx -----------------------------------------------------------------------


def test_starlette_test_client(coatcheck_async_memory_manager: AsyncSessionManager) -> None:
    client = TestClient(starlette_app(coatcheck_async_memory_manager), base_url=SECURE_BASE)
    assert user_of(client) is None
    token = log_in(client, coatcheck_async_memory_manager, "alice")
    assert user_of(client) == "alice"
    assert client.cookies.get("__Host-session") == token


def test_starlette_test_client_inside_with_uses_its_loop(
    coatcheck_async_memory_manager: AsyncSessionManager,
) -> None:
    with TestClient(starlette_app(coatcheck_async_memory_manager), base_url=SECURE_BASE) as client:
        assert client.portal is not None
        log_in(client, coatcheck_async_memory_manager, "alice", data={"cart": ["hat"]})
        assert client.get("/me").json() == {"user": "alice", "cart": ["hat"], "why": None}


def test_app_logout_replaces_the_test_cookie_instead_of_doubling_it(
    coatcheck_async_memory_manager: AsyncSessionManager,
) -> None:
    client = TestClient(starlette_app(coatcheck_async_memory_manager), base_url=SECURE_BASE)
    log_in(client, coatcheck_async_memory_manager, "alice")
    assert client.get("/logout").status_code == 200
    assert [c.name for c in client.cookies.jar] == []  # the app's expiry removed our cookie
    assert user_of(client) is None


def test_log_out_drops_the_cookie_and_ends_the_session(
    coatcheck_async_memory_manager: AsyncSessionManager,
) -> None:
    app = starlette_app(coatcheck_async_memory_manager)
    client = TestClient(app, base_url=SECURE_BASE)
    token = log_in(client, coatcheck_async_memory_manager, "alice")
    log_out(client, coatcheck_async_memory_manager)
    assert user_of(client) is None
    replay = TestClient(app, base_url=SECURE_BASE)
    replay.cookies.set("__Host-session", token)
    assert replay.get("/me").json() == {"user": None, "cart": None, "why": "unknown"}


def test_log_out_without_manager_only_drops_the_cookie(
    coatcheck_async_memory_manager: AsyncSessionManager,
) -> None:
    app = starlette_app(coatcheck_async_memory_manager)
    client = TestClient(app, base_url=SECURE_BASE)
    token = log_in(client, coatcheck_async_memory_manager, "alice")
    log_out(client)
    assert user_of(client) is None
    replay = TestClient(app, base_url=SECURE_BASE)
    replay.cookies.set("__Host-session", token)
    assert user_of(replay) == "alice"


def test_secure_cookie_over_http_is_a_clear_error(
    coatcheck_async_memory_manager: AsyncSessionManager,
) -> None:
    client = TestClient(starlette_app(coatcheck_async_memory_manager))  # http://testserver
    with pytest.raises(ConfigError, match="https") as caught:
        log_in(client, coatcheck_async_memory_manager, "alice")
    assert "development()" in str(caught.value)


def test_development_cookies_over_loopback_http(
    coatcheck_async_memory_manager: AsyncSessionManager,
) -> None:
    settings = WebSettings.build(cookie=development())
    client = TestClient(
        starlette_app(coatcheck_async_memory_manager, settings), base_url="http://127.0.0.1"
    )
    log_in(client, coatcheck_async_memory_manager, "alice", cookie=settings.cookie)
    assert user_of(client) == "alice"
    assert client.cookies.get("session")


def test_cookie_name_and_path_are_the_apps(
    coatcheck_async_memory_manager: AsyncSessionManager,
) -> None:
    cookie = CookieSettings(name="__Secure-shop", path="/shop")
    client = TestClient(
        starlette_app(coatcheck_async_memory_manager, WebSettings.build(cookie=cookie)),
        base_url=SECURE_BASE,
    )
    log_in(client, coatcheck_async_memory_manager, "alice", cookie=cookie)
    assert user_of(client, "/shop/me") == "alice"
    assert user_of(client, "/me") is None  # the jar keeps the cookie to its path


def test_cookie_for_another_domain_is_a_clear_error(
    coatcheck_async_memory_manager: AsyncSessionManager,
) -> None:
    cookie = CookieSettings(name="__Secure-s", domain="example.com")
    client = TestClient(starlette_app(coatcheck_async_memory_manager), base_url=SECURE_BASE)
    with pytest.raises(ConfigError, match="refused the __Secure-s cookie"):
        log_in(client, coatcheck_async_memory_manager, "alice", cookie=cookie)


def test_expiry_by_the_injected_clock(
    coatcheck_async_memory_manager: AsyncSessionManager,
    coatcheck_clock: FakeClock,
) -> None:
    client = TestClient(starlette_app(coatcheck_async_memory_manager), base_url=SECURE_BASE)
    log_in(client, coatcheck_async_memory_manager, "alice")
    coatcheck_clock.advance(coatcheck_async_memory_manager.policy.idle_timeout + 1)
    assert client.get("/me").json()["why"] == "expired_idle"


@pytest.mark.anyio
async def test_async_client_and_alog_in(
    coatcheck_async_memory_manager: AsyncSessionManager,
) -> None:
    transport = httpx.ASGITransport(app=starlette_app(coatcheck_async_memory_manager))
    async with httpx.AsyncClient(transport=transport, base_url=SECURE_BASE) as client:
        await alog_in(client, coatcheck_async_memory_manager, "alice")
        assert (await client.get("/me")).json()["user"] == "alice"
        with pytest.raises(RuntimeError, match="alog_in"):
            log_in(
                client, coatcheck_async_memory_manager, "bob"
            )  # cannot block inside the running loop
        await alog_out(client, coatcheck_async_memory_manager)
        assert (await client.get("/me")).json() == {"user": None, "cart": None, "why": None}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_unknown_client_is_a_type_error(coatcheck_memory_manager: SessionManager) -> None:
    with pytest.raises(TypeError, match="cannot log in a object"):
        log_in(object(), coatcheck_memory_manager, "alice")


def test_client_without_a_base_url_needs_one(
    coatcheck_async_memory_manager: AsyncSessionManager,
) -> None:
    client = httpx.Client()
    with pytest.raises(ConfigError, match="base_url"):
        log_in(client, coatcheck_async_memory_manager, "alice")
    log_in(client, coatcheck_async_memory_manager, "alice", base_url=SECURE_BASE)
    assert client.cookies.get("__Host-session")


# -- Flask / werkzeug ------------------------------------------------------------------------


def test_flask_test_client(coatcheck_memory_manager: SessionManager) -> None:
    client = flask_app(coatcheck_memory_manager).test_client()
    assert user_of(client) is None
    log_in(client, coatcheck_memory_manager, "bob", data={"cart": ["hat"]})
    assert client.get("/me").json == {"user": "bob", "cart": ["hat"], "why": None}


def test_flask_app_logout_and_log_out(coatcheck_memory_manager: SessionManager) -> None:
    client = flask_app(coatcheck_memory_manager).test_client()
    log_in(client, coatcheck_memory_manager, "bob")
    client.get("/logout")
    assert client.get_cookie("__Host-session") is None  # replaced by the app's expiry
    assert user_of(client) is None
    token = log_in(client, coatcheck_memory_manager, "bob")
    log_out(client, coatcheck_memory_manager)
    assert client.get_cookie("__Host-session") is None
    assert coatcheck_memory_manager.load(token).is_new  # ended server-side


def test_flask_server_name_is_the_cookie_host(coatcheck_memory_manager: SessionManager) -> None:
    app = flask_app(coatcheck_memory_manager)
    app.config["SERVER_NAME"] = "shop.example:8443"
    client = app.test_client()
    log_in(client, coatcheck_memory_manager, "bob")
    assert client.get_cookie("__Host-session", domain="shop.example") is not None
    assert user_of(client) == "bob"


def test_flask_with_an_async_manager_is_not_mixed_up(
    coatcheck_async_memory_manager: AsyncSessionManager, coatcheck_memory_manager: SessionManager
) -> None:
    """log_in picks the manager's API by its shape, whatever the client."""
    client = flask_app(coatcheck_memory_manager).test_client()
    token = log_in(client, coatcheck_async_memory_manager, "carol")
    assert asyncio.run(coatcheck_async_memory_manager.load(token)).user_id == "carol"


# -- Django (cookie jar level; the end-to-end Django run is in test_plugin.py) ---------------


def test_django_client_cookie_jar(coatcheck_memory_manager: SessionManager) -> None:
    """Django's Client keeps cookies in a SimpleCookie and sends all of them with every
    request: log_in sets the morsel the app's cookie settings name, log_out removes it.
    (Building a Client needs no Django settings, so nothing global is configured here.)"""
    from django.test import Client

    client = Client()
    cookie = CookieSettings(name="__Secure-app", path="/app", same_site="Strict")
    token = log_in(client, coatcheck_memory_manager, "dora", cookie=cookie)
    morsel = client.cookies["__Secure-app"]
    assert (morsel.value, morsel["path"], morsel["secure"], morsel["samesite"]) == (
        token,
        "/app",
        True,
        "Strict",
    )
    assert coatcheck_memory_manager.load(morsel.value).user_id == "dora"
    log_out(client, coatcheck_memory_manager, cookie=cookie)
    assert "__Secure-app" not in client.cookies
    assert coatcheck_memory_manager.load(token).is_new


# -- sealed cookie mode ----------------------------------------------------------------------


def test_sealed_cookie_mode_needs_no_other_helper() -> None:
    """In sealed mode the string the manager's login returns is the cookie value itself, so
    log_in works unchanged."""
    cookie = CookieSettings()
    manager = SealedSessionManager([generate_key()], cookie=cookie)
    client = flask_app(manager, WebSettings.build(cookie=cookie)).test_client()
    log_in(client, manager, "alice", cookie=cookie, data={"cart": ["hat"]})
    assert client.get("/me").json == {"user": "alice", "cart": ["hat"], "why": None}
    log_out(client, manager, cookie=cookie)
    assert user_of(client) is None
