"""Experiments of benchmarks/service.py ``--experiments``: what an introspection would cost
with the changes docs/performance.md proposes, measured on the same server, the same
service context (same store connections) and the same middleware as the real route.

``POST /v1/bench/introspect-lean``: a plain Starlette endpoint, no FastAPI dependencies. It reads
the same Authorization header, validates the body with the API's own ``Introspect`` model
(``model_validate_json`` on the raw bytes), makes the session lookup through
``ctx.sessions.inspect`` (one store round trip) and answers the same JSON. The service key is
checked through :class:`CachedServiceKeys` (a live key is remembered for ``KEY_MAX_AGE``
seconds). ``POST /v1/bench/introspect-lean-key``: the same endpoint with the key checked in the
store on every call, as the service does: the pair splits the gain between the two changes.

Only sessions (``cc2_`` tokens) are answered; it is a measuring device, not a second API.
"""

from __future__ import annotations

import json
import time
from typing import Any, Final

KEY_MAX_AGE: Final = 5.0  # seconds a revoked service key may still be accepted by a process
KEY_CACHE_SIZE: Final = 1024  # distinct live keys remembered; the whole cache is dropped past it
LEAN_PATH: Final = "/v1/bench/introspect-lean"
LEAN_KEY_PATH: Final = "/v1/bench/introspect-lean-key"
JSON: Final = "application/json"
PROBLEM: Final = "application/problem+json"
NO_STORE: Final = {"cache-control": "no-store"}
INACTIVE: Final = b'{"active":false}'
UNAUTHORIZED: Final = json.dumps(
    {"type": "urn:coatcheck:problem:unauthorized", "title": "Unauthorized", "status": 401}
).encode()


class CachedServiceKeys:
    """``ServiceKeys.authenticate`` remembered in this process: a live key for ``max_age``
    seconds after the store confirmed it (so revoking a key takes effect in every process
    within ``max_age``). Unknown, malformed and revoked keys are not remembered: each costs a
    store look-up, as now. Entries are found by the key's SHA-256, the store's own name for it."""

    def __init__(self, keys: Any, max_age: float = KEY_MAX_AGE, size: int = KEY_CACHE_SIZE) -> None:
        self.keys = keys
        self.max_age = max_age
        self.size = size
        self._live: dict[str, tuple[Any, float]] = {}

    async def authenticate(self, key: object) -> Any:
        from coatcheck.service.keys import digest_of, looks_like_service_key

        if not isinstance(key, str) or not looks_like_service_key(key):
            return None
        digest = digest_of(key)
        now = time.monotonic()
        seen = self._live.get(digest)
        if seen is not None and seen[1] > now:
            return seen[0]
        info = await self.keys.authenticate(key)
        if info is None:
            self._live.pop(digest, None)
            return None
        if len(self._live) >= self.size:
            self._live.clear()
        self._live[digest] = (info, now + self.max_age)
        return info


def encode(content: dict[str, Any]) -> bytes:
    """JSON as Starlette's JSONResponse writes it (so both routes send the same bytes)."""
    return json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def lean_routes(context_of: Any) -> list[Any]:
    """The two experiment routes; ``context_of(request)`` gives the app's ServiceContext."""
    from pydantic import ValidationError
    from starlette.responses import Response
    from starlette.routing import Route

    from coatcheck.service.api.models import Introspect

    cached: dict[int, CachedServiceKeys] = {}

    def endpoint(cache_key: bool) -> Any:
        async def introspect(request: Any) -> Any:
            ctx = context_of(request)
            scheme, _, key = request.headers.get("authorization", "").partition(" ")
            keys = ctx.service_keys
            if cache_key:
                keys = cached.get(id(ctx)) or cached.setdefault(id(ctx), CachedServiceKeys(keys))
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
    ]
