"""A second service: a small Starlette app that trusts the session service's login through
``add_remote_sessions`` (middleware mode). Built in-process by the tests, or served by uvicorn
in a process of its own: ``uvicorn --factory remote_app:from_environment`` with
``REMOTE_SERVICE_URL`` and ``REMOTE_SERVICE_KEY`` set."""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from coatcheck.client import ClientCache
from coatcheck.client.middleware import add_remote_sessions
from coatcheck.core.session import SessionReadOnly
from coatcheck.web.starlette import csrf_token, get_session, require_login, require_scopes


async def me(request: Request) -> Response:
    session = await require_login(request)
    record = session.session.record
    return JSONResponse(
        {
            "user": session.user_id,
            "kind": session.kind,
            "scopes": list(session.scopes) if session.scopes is not None else None,
            "id": record.public_id if record is not None and not session.read_only else None,
            "csrf": None if session.read_only else csrf_token(request),
        }
    )


async def public(request: Request) -> Response:
    session = await get_session(request)
    return JSONResponse({"user": session.user_id})


async def repo(request: Request) -> Response:
    session = await require_scopes("repo:read")(request)
    return JSONResponse({"user": session.user_id, "scopes": list(session.scopes or ())})


async def write(request: Request) -> Response:
    session = await require_login(request)
    session["theme"] = "dark"
    return JSONResponse({"written": True})


async def login(request: Request) -> Response:
    session = await get_session(request)
    await session.login("mallory")
    return JSONResponse({"logged_in": True})


async def logout(request: Request) -> Response:
    session = await require_login(request)
    await session.logout()
    return JSONResponse({"logged_out": True})


async def logout_others(request: Request) -> Response:
    session = await require_login(request)
    return JSONResponse({"ended": await session.logout_other_sessions()})


async def read_only(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": "read_only", "message": str(exc)}, status_code=409)


def build_app(service_url: str, service_key: str, *, cache: ClientCache | None = None) -> Starlette:
    app = Starlette(
        routes=[
            Route("/me", me),
            Route("/public", public),
            Route("/repo", repo),
            Route("/write", write, methods=["POST"]),
            Route("/login", login, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/logout-others", logout_others, methods=["POST"]),
        ],
        exception_handlers={SessionReadOnly: read_only},
    )
    add_remote_sessions(app, service_url, service_key, cache=cache, loopback_development=True)
    return app


def from_environment() -> Starlette:
    return build_app(os.environ["REMOTE_SERVICE_URL"], os.environ["REMOTE_SERVICE_KEY"])
