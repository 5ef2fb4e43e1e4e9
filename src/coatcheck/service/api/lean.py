"""A FastAPI route served without FastAPI's per-request machinery (FastAPI's documented
"custom APIRoute class": :meth:`APIRoute.get_route_handler`).

The route is declared like any other (``response_model``, ``responses``, ``openapi_extra``),
so ``/openapi.json`` describes it exactly as before; but its endpoint is called with the
request alone: no dependency solving, no body parsing, no response-model validation. The
endpoint checks the key, reads the body and answers itself. The introspection routes, most
of the service's traffic, are served so (docs/performance.md, "Session service:
introspection throughput").
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

LeanEndpoint = Callable[[Request], Coroutine[Any, Any, Response]]


class LeanRoute(APIRoute):
    """An :class:`APIRoute` whose endpoint is ``async def endpoint(request) -> Response``,
    called as it is: it must take nothing but the request and have no dependencies (of its
    own or of its router), because none would run."""

    def get_route_handler(self) -> LeanEndpoint:
        endpoint = self.endpoint
        if (
            self.dependencies
            or not inspect.iscoroutinefunction(endpoint)
            or list(inspect.signature(endpoint).parameters) != ["request"]
        ):
            raise TypeError(
                f"{self.path}: a LeanRoute's endpoint is `async def f(request) -> Response` "
                "with no dependencies"
            )
        handler: LeanEndpoint = endpoint
        return handler
