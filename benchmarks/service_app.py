"""The app that benchmarks/service.py runs under uvicorn: coatcheck's session service as
``coatcheck serve`` builds it, plus three floors that touch no store: ``GET /v1/bench/floor``,
``POST /v1/bench/floor-post`` and ``GET /v1/bench/raw-floor``.

    python -m uvicorn --factory service_app:app --app-dir benchmarks ...

The settings come from the ``COATCHECK_*`` environment, as for ``coatcheck serve``. The floor
route goes into the same app object, in front of its other routes, so a floor request crosses
the same server, the same middleware and the same router as an introspection, and then returns
a tiny JSON answer: what is left when the store, the service-key check and the request model
are taken away. It lives under ``/v1/`` because the service sends every other path to its
pages, past the API's router.

The GET floor has no body. ``POST /v1/bench/floor-post`` receives the same requests as an
introspection (the same ``{"token": ...}`` body, ``Content-Type`` and ``Authorization``
headers) and reads the whole body before it answers, but checks nothing: no key, no content
type, no parsing. Beside the GET floor it shows what the server and the ASGI layers charge
for a POST with a body (the request's ``http.request`` message, the body's bytes, the larger
request), which every introspection pays and the GET floor does not.

``GET /v1/bench/raw-floor`` is answered by :class:`RawFloor`, a raw ASGI callable put in front
of the whole application, at the level where the service's own fast path sits (the first code
uvicorn calls; ``coatcheck.service.api.fast_path``): no middleware, no router, no request or
response object, the GET floor's exact answer written as two ASGI messages. The cost of
"nothing" on this server: what uvicorn, httptools, the event loop and the kernel charge.
"""

from __future__ import annotations

import os
from typing import Any

FLOOR_PATH = "/v1/bench/floor"
FLOOR_POST_PATH = "/v1/bench/floor-post"
RAW_FLOOR_PATH = "/v1/bench/raw-floor"


async def floor(request: Any) -> Any:
    """The floor: no store, no key check, a JSON body of the same kind as an answer."""
    from starlette.responses import JSONResponse

    return JSONResponse({"ok": True})


async def floor_post(request: Any) -> Any:
    """The POST floor: the whole body read (and dropped), then the GET floor's answer."""
    from starlette.responses import JSONResponse

    await request.body()
    return JSONResponse({"ok": True})


def add_floor(application: Any) -> Any:
    """``application`` with the two floor routes first among its routes (Starlette's public
    ``router.routes`` list); an app without a Starlette router cannot take it."""
    from starlette.routing import Route

    router = getattr(application, "router", None)
    if router is None or not isinstance(getattr(router, "routes", None), list):
        raise RuntimeError(
            f"create_app() returned {type(application).__name__}, which has no Starlette "
            "router: the floor route cannot go into the same app"
        )
    router.routes[0:0] = [
        Route(FLOOR_PATH, floor, methods=["GET"]),
        Route(FLOOR_POST_PATH, floor_post, methods=["POST"]),
    ]
    return application


class RawFloor:
    """``GET /v1/bench/raw-floor`` answered in front of ``app`` (the service), everything else
    passed to it. ``app``: the service, for what needs its state (benchmarks/service_inprocess.py).
    The answer is the GET floor's: the status, headers and body ``JSONResponse({"ok": True})``
    sends, made once."""

    def __init__(self, app: Any) -> None:
        from starlette.responses import JSONResponse

        self.app = app
        answer = JSONResponse({"ok": True})
        self.start = {"type": "http.response.start", "status": 200, "headers": answer.raw_headers}
        self.body = {"type": "http.response.body", "body": answer.body}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == RAW_FLOOR_PATH and scope["method"] == "GET":
            await send({**self.start, "headers": list(self.start["headers"])})
            await send(self.body)
        else:
            await self.app(scope, receive, send)


def settings() -> Any:
    """The service's settings from this process's ``COATCHECK_*`` environment."""
    from coatcheck.service.settings import load_service_settings

    return load_service_settings(None, os.environ, {})


def app() -> RawFloor:
    """The service as ``coatcheck serve`` runs it, with the floor routes added (and, with
    ``CCBENCH_EXPERIMENTS=1``, the routes of benchmarks/service_lean.py), behind the raw floor
    (the service itself is its ``app``)."""
    from coatcheck.service.app import create_app

    application = add_floor(create_app(settings()))
    if os.environ.get("CCBENCH_EXPERIMENTS") == "1":
        from service_lean import lean_routes

        from coatcheck.service.api.state import context_of

        application.router.routes[2:2] = lean_routes(context_of)
    try:
        from coatcheck.service import heap
    except ImportError:  # --compare-src with code from before `coatcheck serve` settled it
        pass
    else:
        heap.settle()  # as `coatcheck serve` does before it starts uvicorn
    return RawFloor(application)
