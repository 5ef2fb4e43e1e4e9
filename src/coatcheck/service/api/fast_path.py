"""The introspection fast path: ``POST`` on the paths of the :class:`~.lean.LeanRoute` routes
(``/v1/sessions/introspect`` and ``/v1/sessions/refresh``) answered straight from ASGI, in
front of FastAPI's middleware stack and router.

Most of the service's traffic is introspection; once the introspection cache answers it from
memory, what a call costs is mostly the framework around the endpoint (FastAPI's error and
exception middleware, the router's matching, the request/response wrapper with its exit
stacks: docs/performance.md, "The introspection fast path"). The fast path calls the very
endpoint function the :class:`LeanRoute` calls, inside the same :class:`~.limits.BodyLimit`,
and turns an exception into the answer the application's own exception handlers give it (the
same handlers, looked up as Starlette looks them up; the last resort, a 500 problem, is sent
and the exception raised again for the server to log, as Starlette's ``ServerErrorMiddleware``
does). The routes stay declared on the FastAPI application, so ``/openapi.json`` is unchanged
and a request that reaches them another way is answered the same.

Everything else (other paths and methods, a trailing slash, websockets, the lifespan, a
request under a ``root_path``) goes to the FastAPI application unchanged. What the fast path
does not do: FastAPI's native OpenTelemetry telemetry (on only when an OpenTelemetry provider
is configured in the process) does not see these calls; the service's own Prometheus metrics
count them as before.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute
from starlette.types import ExceptionHandler, Receive, Scope, Send

from ..metrics import ServiceMetrics
from .lean import LeanEndpoint, LeanRoute
from .limits import BodyLimit

SERVER_ERROR_KEYS = (500, Exception)
"""Handler keys FastAPI gives its outermost ``ServerErrorMiddleware`` (the last resort)."""


def lean_endpoints(routes: Iterable[BaseRoute]) -> dict[str, LeanEndpoint]:
    """The endpoint of each ``POST``-only :class:`LeanRoute` without path parameters, by path
    (the first route of a path wins, as in the router)."""
    found: dict[str, LeanEndpoint] = {}
    for route in routes:
        if isinstance(route, LeanRoute) and route.methods == {"POST"} and "{" not in route.path:
            found.setdefault(route.path, route.get_route_handler())
    return found


class FastPath:
    """Serves what :meth:`serves` accepts for ``app`` (a request it does not accept must go to
    ``app`` itself): the lean ``routes``, which ``app`` includes as they are (no prefix added);
    ``limit`` and ``metrics`` are those of the application's own :class:`BodyLimit`."""

    def __init__(
        self,
        app: FastAPI,
        routes: Iterable[BaseRoute],
        *,
        limit: int,
        metrics: ServiceMetrics,
    ) -> None:
        self.app = app
        self.endpoints = lean_endpoints(routes)
        self._limited = BodyLimit(self._answer, limit=limit, metrics=metrics)

    def serves(self, scope: Scope) -> bool:
        """An HTTP ``POST`` on one of the paths, with no ``root_path`` to strip first."""
        return (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] in self.endpoints
            and not scope.get("root_path")
            and not self.app.root_path
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = self.app  # what Starlette sets: the endpoint finds its context there
        await self._limited(scope, receive, send)

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        try:
            response = await self.endpoints[scope["path"]](request)
        except Exception as exc:
            await self._refuse(request, exc, send)
            return
        await response(scope, receive, send)

    async def _refuse(self, request: Request, exc: Exception, send: Send) -> None:
        """The application's answer to ``exc``: its handler's response; with none but the last
        resort's, that response and ``exc`` raised again (the server logs it)."""
        handlers: Mapping[Any, ExceptionHandler] = self.app.exception_handlers
        handler = _handler_of(handlers, exc)
        last_resort = handler is None
        if handler is None:
            handler = _last_resort(handlers)
        response = await _called(handler, request, exc) if handler else _plain_500()
        if response is not None:
            await response(request.scope, request.receive, send)
        if last_resort:
            raise exc
        exc.__traceback__ = None  # as Starlette: a reused exception gathers no tracebacks


def _handler_of(
    handlers: Mapping[Any, ExceptionHandler], exc: Exception
) -> ExceptionHandler | None:
    """Starlette's look-up in the handlers its ``ExceptionMiddleware`` holds (all but the last
    resort's): the status code of an HTTPException first, then the exception's classes."""
    if isinstance(exc, HTTPException) and exc.status_code not in SERVER_ERROR_KEYS:
        handler = handlers.get(exc.status_code)
        if handler is not None:
            return handler
    for cls in type(exc).__mro__:
        if cls not in SERVER_ERROR_KEYS and cls in handlers:
            return handlers[cls]
    return None


def _last_resort(handlers: Mapping[Any, ExceptionHandler]) -> ExceptionHandler | None:
    """The handler FastAPI gives ``ServerErrorMiddleware``: the last one of 500 and Exception."""
    found = None
    for key, handler in handlers.items():
        if key in SERVER_ERROR_KEYS:
            found = handler
    return found


async def _called(handler: ExceptionHandler, request: Request, exc: Exception) -> Response | None:
    """The handler's response (the API's handlers are coroutines; a plain function's answer
    is taken as it is, on the event loop)."""
    call = cast("Callable[[Request, Exception], Any]", handler)  # the HTTP kind of handler
    result = call(request, exc)
    if inspect.isawaitable(result):
        result = await result
    return cast("Response | None", result)


def _plain_500() -> Response:
    """Starlette's own answer when an application has no last-resort handler."""
    return PlainTextResponse("Internal Server Error", status_code=500)
