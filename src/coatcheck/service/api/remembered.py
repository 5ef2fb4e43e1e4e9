"""Service keys this process verified, remembered for a few seconds.

Every API call checks its caller's service key; asking the store each time was about a
quarter of an introspection's server time and a second store round trip beside the
session's own (docs/performance.md, "Session service: introspection throughput").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from ..keys import ServiceKeyInfo, ServiceKeys, digest_of, looks_like_service_key

KEY_MAX_AGE: Final = 5.0
"""Seconds a process accepts a key it found live without asking the store again: a key revoked
anywhere (``coatcheck service-keys revoke``) is refused by every process at most this late."""
REMEMBERED_KEYS: Final = 1024
"""Live keys remembered at most; past it, all are forgotten (and asked about again)."""


class RememberedKeys:
    """:meth:`ServiceKeys.authenticate`, each live key accepted again for ``max_age`` seconds
    without a store call. Only live keys are remembered, under the SHA-256 digest the store
    names them by; an unknown or revoked key is looked up every time."""

    def __init__(
        self,
        keys: ServiceKeys,
        *,
        max_age: float = KEY_MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.keys = keys
        self.max_age = max_age
        self._clock = clock
        self._live: dict[str, tuple[ServiceKeyInfo, float]] = {}

    async def authenticate(self, key: str) -> ServiceKeyInfo | None:
        """The live key's info, or None (malformed, unknown or revoked)."""
        if not looks_like_service_key(key):
            return None
        digest = digest_of(key)
        seen = self._live.get(digest)
        if seen is not None and self._clock() < seen[1]:
            return seen[0]
        info = await self.keys.authenticate(key)
        if info is None:
            self._live.pop(digest, None)
            return None
        if len(self._live) >= REMEMBERED_KEYS:
            self._live.clear()
        self._live[digest] = (info, self._clock() + self.max_age)
        return info
