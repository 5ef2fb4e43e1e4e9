"""Shared pieces of the testing-support tests (a plain module, not a conftest, so that the
suite's root ``conftest`` stays the only module of that name).

Small real apps: Starlette behind the ASGI session middleware, Flask behind the WSGI one. Each
shows who is logged in at ``/me`` (and under the app's cookie path) and logs out at ``/logout``.
``clean_guard_env`` (autouse where imported) clears the variables the guard reads, so a
developer's shell cannot change the outcome. The managers and clock are the plugin's own
fixtures (``coatcheck_memory_manager`` ...): the suite uses what it ships."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from flask import Flask, request
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from coatcheck import AsyncSessionManager, SessionManager
from coatcheck.testing.guard import ENABLE_VAR, OTHER_ENV_VARS, OWN_ENV_VAR
from coatcheck.web import asgi, wsgi
from coatcheck.web.settings import WebSettings

with warnings.catch_warnings():
    # Starlette 1.x would rather use httpx2; the httpx of the dev dependencies works the same.
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

GUARD_VARS = (ENABLE_VAR, OWN_ENV_VAR, *OTHER_ENV_VARS)
SECURE = WebSettings.build()


__all__ = ["SECURE", "TestClient", "clean_guard_env", "flask_app", "starlette_app"]


@pytest.fixture(autouse=True)
def clean_guard_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in GUARD_VARS:
        monkeypatch.delenv(name, raising=False)


def starlette_app(manager: AsyncSessionManager, settings: WebSettings = SECURE) -> Any:
    """A Starlette app wrapped in coatcheck's pure ASGI session middleware."""
    prefix = settings.cookie.path.rstrip("/")

    async def me(req: Request) -> JSONResponse:
        state = await req.scope[asgi.SCOPE_KEY].load()
        return JSONResponse(
            {"user": state.user_id, "cart": state.get("cart"), "why": state.expired_reason}
        )

    async def logout(req: Request) -> JSONResponse:
        state = await req.scope[asgi.SCOPE_KEY].load()
        await state.logout()
        return JSONResponse({"ok": True})

    app = Starlette(
        routes=[
            Route(f"{prefix}/me", me),
            Route("/me", me),
            Route(f"{prefix}/logout", logout),  # GET only because this is a test app
        ]
    )
    return asgi.SessionMiddleware(app, manager, settings)


def flask_app(manager: SessionManager, settings: WebSettings = SECURE) -> Flask:
    """A Flask app whose WSGI app is wrapped in coatcheck's WSGI session middleware."""
    app = Flask(__name__)

    @app.get("/me")
    def me() -> dict[str, Any]:
        state = request.environ[wsgi.ENVIRON_KEY]
        return {"user": state.user_id, "cart": state.get("cart"), "why": state.expired_reason}

    @app.get("/logout")
    def logout() -> dict[str, Any]:
        request.environ[wsgi.ENVIRON_KEY].logout()
        return {"ok": True}

    app.wsgi_app = wsgi.SessionMiddleware(app.wsgi_app, manager, settings)  # type: ignore[method-assign]
    return app
