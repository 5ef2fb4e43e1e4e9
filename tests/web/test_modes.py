"""One setting switches between server-side sessions and sealed cookies; the app is unchanged."""

from __future__ import annotations

import flask
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from coatcheck import ConfigError, SessionManager
from coatcheck.sealed import SealedSessionManager, generate_key
from coatcheck.web.backend import build_async_backend, build_backend
from coatcheck.web.flask import CoatCheck, current_session
from coatcheck.web.settings import WebSettings
from coatcheck.web.starlette import add_sessions, get_session

COOKIE = "__Host-session"


def starlette_app() -> Starlette:
    async def login(request: Request) -> JSONResponse:
        session = await get_session(request)
        await session.login("alice")
        session["theme"] = "dark"
        return JSONResponse({"ok": True})

    async def me(request: Request) -> JSONResponse:
        session = await get_session(request)
        return JSONResponse({"user": session.user_id, "theme": session.get("theme")})

    app = Starlette(routes=[Route("/login", login, methods=["POST"]), Route("/me", me)])
    add_sessions(app, settings=WebSettings(csrf=False))
    return app


@pytest.mark.parametrize(("mode", "prefix"), [("server", "cc2_"), ("sealed", "cs1.")])
def test_starlette_app_runs_unchanged_in_both_modes(
    mode: str, prefix: str, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("COATCHECK_SESSION_MODE", mode)
    monkeypatch.setenv("COATCHECK_SEALED_KEYS", generate_key())
    monkeypatch.setenv("COATCHECK_STORE_URL", f"sqlite:///{tmp_path}/s.db")
    with TestClient(starlette_app(), base_url="https://testserver") as client:
        assert client.post("/login").status_code == 200
        assert client.cookies[COOKIE].startswith(prefix)
        assert client.get("/me").json() == {"user": "alice", "theme": "dark"}


@pytest.mark.parametrize(("mode", "prefix"), [("server", "cc2_"), ("sealed", "cs1.")])
def test_flask_app_runs_unchanged_in_both_modes(mode: str, prefix: str, tmp_path: object) -> None:
    app = flask.Flask(__name__)
    app.config.update(
        COATCHECK_SESSION_MODE=mode,
        COATCHECK_SEALED_KEYS=generate_key(),
        COATCHECK_STORE_URL=f"sqlite:///{tmp_path}/s.db",
        COATCHECK_CSRF=False,
    )
    CoatCheck(app)

    @app.post("/login")
    def login() -> dict[str, bool]:
        current_session().login("alice")
        flask.session["theme"] = "dark"
        return {"ok": True}

    @app.get("/me")
    def me() -> dict[str, object]:
        return {"user": current_session().user_id, "theme": flask.session.get("theme")}

    client = app.test_client()
    assert client.post("/login", base_url="https://localhost").status_code == 200
    cookie = client.get_cookie(COOKIE, domain="localhost")
    assert cookie is not None and cookie.value.startswith(prefix)
    assert client.get("/me", base_url="https://localhost").json == {
        "user": "alice",
        "theme": "dark",
    }


def test_builders_pick_the_manager_and_refuse_unknown_modes(tmp_path: object) -> None:
    key = generate_key()
    assert isinstance(build_backend(mode="sealed", sealed_keys=key), SealedSessionManager)
    server = build_backend(mode="server", store_url="memory://")
    assert isinstance(server, SessionManager)
    with pytest.raises(ConfigError, match="'server' or 'sealed'"):
        build_backend(mode="cookie")
    with pytest.raises(ConfigError):
        build_async_backend(mode="sealed", sealed_keys="not-a-key")


def test_the_sealed_cache_size_comes_from_the_argument_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = generate_key()
    monkeypatch.delenv("COATCHECK_SEALED_CACHE", raising=False)
    assert build_backend(mode="sealed", sealed_keys=key).opened.size == 1024  # type: ignore[attr-defined]
    monkeypatch.setenv("COATCHECK_SEALED_CACHE", "0")
    assert build_backend(mode="sealed", sealed_keys=key).opened is None  # type: ignore[attr-defined]
    sealed = build_async_backend(mode="sealed", sealed_keys=key, opened_cache="16")
    assert sealed.opened.size == 16  # type: ignore[attr-defined]
    for bad in ("-1", "many", "1.5"):
        monkeypatch.setenv("COATCHECK_SEALED_CACHE", bad)
        with pytest.raises(ConfigError, match="COATCHECK_SEALED_CACHE"):
            build_backend(mode="sealed", sealed_keys=key)
