"""Experiments of benchmarks/service.py ``--experiments``: what an introspection costs with no
FastAPI route at all, with and without the remembered service key, measured on the same
server, the same service context (same store connections) and the same middleware as the
real route (docs/performance.md).

``POST /v1/bench/introspect-lean``: a plain Starlette endpoint, no FastAPI dependencies. It reads
the same Authorization header, validates the body with the API's own ``Introspect`` model
(``model_validate_json`` on the raw bytes), makes the session lookup through
``ctx.sessions.inspect`` (one store round trip) and answers the same JSON. The service key is
checked through the service's own ``RememberedKeys`` (a live key remembered for 5 s).
``POST /v1/bench/introspect-lean-key``: the same endpoint with the key looked up in the store
on every call (``ServiceKeys.authenticate``), as the service did before it remembered keys:
the pair splits the gain between the two changes.

``POST /v1/bench/introspect-lean-cached``: the service's own introspection work (its
introspection cache when the server has it on, ``COATCHECK_INTROSPECTION_CACHE``; the store
otherwise) behind the same plain Starlette endpoint: what the cache gives without FastAPI's
route machinery around it (benchmarks/service.py ``--lean-cached``).

Only sessions (``cc2_`` tokens) are answered; it is a measuring device, not a second API.
"""

from __future__ import annotations

import json
from typing import Any, Final

LEAN_PATH: Final = "/v1/bench/introspect-lean"
LEAN_KEY_PATH: Final = "/v1/bench/introspect-lean-key"
LEAN_CACHED_PATH: Final = "/v1/bench/introspect-lean-cached"
JSON: Final = "application/json"
PROBLEM: Final = "application/problem+json"
NO_STORE: Final = {"cache-control": "no-store"}
INACTIVE: Final = b'{"active":false}'
UNAUTHORIZED: Final = json.dumps(
    {"type": "urn:coatcheck:problem:unauthorized", "title": "Unauthorized", "status": 401}
).encode()


def encode(content: dict[str, Any]) -> bytes:
    """JSON as Starlette's JSONResponse writes it (so both routes send the same bytes)."""
    return json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def lean_routes(context_of: Any) -> list[Any]:
    """The two experiment routes; ``context_of(request)`` gives the app's ServiceContext."""
    from pydantic import ValidationError
    from starlette.responses import Response
    from starlette.routing import Route

    from coatcheck.service.api import sessions
    from coatcheck.service.api.models import Introspect

    async def cached(request: Any) -> Any:
        """The real route's work (key, body, cache or store, answer) without FastAPI."""
        ctx = context_of(request)
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        keys = request.app.state.remembered_keys
        if scheme.lower() != "bearer" or await keys.authenticate(key) is None:
            return Response(UNAUTHORIZED, 401, media_type=PROBLEM)
        if request.headers.get("content-type", "").partition(";")[0].strip() != JSON:
            return Response(b'{"status":415}', 415, media_type=PROBLEM)
        try:
            body = Introspect.model_validate_json(await request.body())
        except ValidationError:
            return Response(b'{"status":422}', 422, media_type=PROBLEM)
        cache = ctx.introspection_cache
        if cache is None:
            value = await sessions._introspection(ctx, body)
            answer = INACTIVE if value is None else encode(sessions._facts(value))
        else:
            answer = await sessions._cached_introspection(ctx, cache, body)
        return Response(answer, media_type=JSON, headers=NO_STORE)

    def endpoint(cache_key: bool) -> Any:
        async def introspect(request: Any) -> Any:
            ctx = context_of(request)
            scheme, _, key = request.headers.get("authorization", "").partition(" ")
            keys = request.app.state.remembered_keys if cache_key else ctx.service_keys
            if scheme.lower() != "bearer" or await keys.authenticate(key) is None:
                return Response(UNAUTHORIZED, 401, media_type=PROBLEM)
            if request.headers.get("content-type", "").partition(";")[0].strip() != JSON:
                return Response(b'{"status":415}', 415, media_type=PROBLEM)
            try:
                body = Introspect.model_validate_json(await request.body())
            except ValidationError:
                return Response(b'{"status":422}', 422, media_type=PROBLEM)
            verdict, record = await ctx.sessions.inspect(body.token, client_ip=body.client_ip)
            ctx.metrics.validations.labels(result=verdict.value).inc()  # as the service counts
            if record is None or record.user_id is None:
                return Response(INACTIVE, media_type=JSON, headers=NO_STORE)
            facts = {
                "active": True,
                "token_type": "session",
                "id": record.public_id,
                "sub": record.user_id,
                "user_id": record.user_id,
                "kind": record.kind,
                "iat": int(record.created_at),
                "exp": int(record.expires_at),
                "created_at": record.created_at,
                "expires_at": record.expires_at,
                "authenticated_at": record.authenticated_at,
                "last_seen_at": record.last_seen_at,
            }
            return Response(encode(facts), media_type=JSON, headers=NO_STORE)

        return introspect

    return [
        Route(LEAN_PATH, endpoint(True), methods=["POST"]),
        Route(LEAN_KEY_PATH, endpoint(False), methods=["POST"]),
        Route(LEAN_CACHED_PATH, cached, methods=["POST"]),
    ]
