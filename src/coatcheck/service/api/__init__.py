"""The service's JSON API (``/v1``), ``/healthz``, ``/metrics`` and ``/openapi.json`` as one
FastAPI application; :func:`coatcheck.service.app.create_app` adds the pages around it."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from ..context import ServiceContext
from . import health, sessions, stream, tokens
from .fast_path import FastPath
from .openapi import service_openapi
from .problems import install_problem_handlers
from .remembered import RememberedKeys
from .version import SERVICE_VERSION

API_PREFIXES = ("/v1/", "/healthz", "/metrics", "/openapi.json")
"""Paths the API answers (everything else goes to the pages)."""


class ServiceApi(FastAPI):
    """The API application; ``state.context`` is its :class:`ServiceContext`,
    ``state.remembered_keys`` the :class:`RememberedKeys` its calls' service keys are checked
    with. ``fast_path`` (set by ``create_app``): the :class:`FastPath` that answers what it
    serves before FastAPI's middleware stack and router; None: FastAPI answers everything."""

    fast_path: FastPath | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fast = self.fast_path
        if fast is not None and fast.serves(scope):
            await fast(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    def openapi(self) -> dict[str, Any]:
        return service_openapi(self)


def api_app(
    ctx: ServiceContext,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
) -> ServiceApi:
    """Every API route over ``ctx``, with the problem handlers; no interactive docs pages (they
    would load scripts from a CDN): the document is at ``/openapi.json``."""
    app = ServiceApi(
        title="coatcheck session service",
        version=SERVICE_VERSION,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=lifespan,
    )
    app.state.context = ctx
    app.state.remembered_keys = RememberedKeys(ctx.service_keys)
    install_problem_handlers(app)
    # The introspection routes first: they take most of the traffic, and routes are matched
    # in order (FastAPI spends 1-2 µs on each route it passes over).
    for router in (
        sessions.introspection,
        sessions.admin,
        tokens.router,
        stream.router,
        health.router,
    ):
        app.include_router(router)
    return app


def is_api_path(path: str) -> bool:
    """Does the API answer ``path`` (including its 404s and 405s)?"""
    return path == "/v1" or path.startswith(API_PREFIXES)


__all__ = ["API_PREFIXES", "ServiceApi", "api_app", "is_api_path"]
