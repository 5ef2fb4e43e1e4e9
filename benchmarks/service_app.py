"""The app that benchmarks/service.py runs under uvicorn: coatcheck's session service as
``coatcheck serve`` builds it, plus two floors that touch no store: ``GET /v1/bench/floor``
and ``POST /v1/bench/floor-post``.

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
"""

from __future__ import annotations

import os
from typing import Any

FLOOR_PATH = "/v1/bench/floor"
FLOOR_POST_PATH = "/v1/bench/floor-post"


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


def settings() -> Any:
    """The service's settings from this process's ``COATCHECK_*`` environment."""
    from coatcheck.service.settings import load_service_settings

    return load_service_settings(None, os.environ, {})


def app() -> Any:
    """The service as ``coatcheck serve`` runs it, with the floor routes added (and, with
    ``CCBENCH_EXPERIMENTS=1``, the routes of benchmarks/service_lean.py)."""
    from coatcheck.service.app import create_app

    application = add_floor(create_app(settings()))
    if os.environ.get("CCBENCH_EXPERIMENTS") == "1":
        from service_lean import lean_routes

        from coatcheck.service.api.state import context_of

        application.router.routes[2:2] = lean_routes(context_of)
    return application
