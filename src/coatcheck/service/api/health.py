"""``/healthz`` for load balancers and ``/metrics`` for Prometheus: no service key (they reveal
no session, token or user), for the internal network."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ..metrics import CONTENT_TYPE
from .models import Health
from .replies import problems, reply
from .state import context_of

router = APIRouter(tags=["operations"])


@router.get(
    "/healthz",
    response_model=Health,
    responses=problems("store-unavailable"),
    summary="Are the session store and the service data reachable? (one round trip each)",
)
async def healthz(request: Request) -> JSONResponse:
    await context_of(request).ping()
    return reply({"status": "ok"})


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    summary="Prometheus metrics, text format",
)
async def metrics(request: Request) -> Response:
    return Response(
        context_of(request).metrics.render(),
        media_type=CONTENT_TYPE,
        headers={"cache-control": "no-store"},
    )
