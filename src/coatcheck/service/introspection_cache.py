"""The service's optional positive cache of introspections (setting ``introspection_cache``,
off by default; docs/service.md, "Introspection cache").

A hit answers ``POST /v1/sessions/introspect`` without a store round trip, which is most of an
introspection's cost (docs/performance.md). The cache is the client's own
:class:`~coatcheck.client.cache.ClientCache` (keyed by the token's SHA-256, active answers
only, each kept until its max age or the session's ``expires_at``, dropped by public id or
digest prefix), kept honest the same way:

* a follower task (:meth:`IntrospectionCache.start`, run by the application's lifespan) reads
  the store's revocation event log from its newest event on, and drops what each event names;
  an unreadable event or a gap in the ids flushes the cache; while the store is unavailable
  (and until the follower is back) the cache is bypassed and empty;
* a revocation this process makes (:mod:`coatcheck.service.actions` publishes every one)
  drops its entries before the event is even written (:class:`LocallyDroppingEvents`);
* a hit is served only where the store would not have written: a session asked with
  ``touch`` whose last write is older than the policy's touch interval, or an API token whose
  last-used time is due (or unknown), goes to the store, and its answer replaces the entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Final

from ..client.cache import ClientCache
from ..client.models import Introspection
from ..core.errors import StoreUnavailable
from ..core.records import parse_public_id
from .data.base import ServiceData
from .events import EventBatch, RevocationEvents, check_digest_prefix

log = logging.getLogger("coatcheck.service")

MAX_ENTRIES: Final = 10_000
"""Entries kept at most; the oldest is dropped to make room."""
FOLLOW_WAIT: Final = 5.0
"""Seconds one wait for events may last; an idle follower then checks that the event log was
not emptied under it (a store wiped or replaced)."""
RETRY: Final = (0.5, 10.0)
"""Seconds before the follower tries again after a failure: first, and at most (doubling)."""


class LocallyDroppingEvents(RevocationEvents):
    """:class:`RevocationEvents` that first drops what an event names from this process's
    cache, so a revocation made here is never answered from the cache afterwards."""

    def __init__(self, data: ServiceData, cache: ClientCache) -> None:
        super().__init__(data)
        self.cache = cache

    async def publish(
        self,
        public_id: str,
        digest_prefix: str | bytes | None = None,
        *,
        now: float | None = None,
    ) -> int:
        prefix = check_digest_prefix(digest_prefix)
        self.cache.drop(public_id=parse_public_id(public_id).hex(), prefix=prefix)
        return await super().publish(public_id, prefix, now=now)


class IntrospectionCache:
    """The cache, the rules for serving from it, and the follower that keeps it honest.

    ``session_touch`` / ``token_touch``: the policy's and the API tokens' touch intervals
    (a cached answer is not served where the store would have written)."""

    def __init__(
        self,
        cache: ClientCache,
        events: RevocationEvents,
        *,
        session_touch: float,
        token_touch: float,
    ) -> None:
        self.cache = cache
        self.events = events
        self.session_touch = session_touch
        self.token_touch = token_touch
        self.last_id: int | None = None
        """The newest event id the follower has applied (None until it first reads one)."""
        self.connections = 0
        """How many times the follower went live (read where the log ends)."""
        self._task: asyncio.Task[None] | None = None
        self._encoded: dict[bytes, tuple[Introspection, bytes]] = {}

    def __repr__(self) -> str:
        return f"<IntrospectionCache {self.cache!r} last_id={self.last_id}>"

    # -- serving ---------------------------------------------------------------------------

    def lookup(self, key: bytes, client_ip: str | None, *, touch: bool) -> Introspection | None:
        """The cached answer for this token digest, or None: none kept, the cache bypassed,
        or the store would write on this call (a touch is due)."""
        value = self.cache.get(key, client_ip)
        if value is None:
            return None
        last = value.last_seen_at
        if value.is_api_token:
            due = last is None or self.cache.clock() - last >= self.token_touch
        else:
            due = touch and (last is None or self.cache.clock() - last >= self.session_touch)
        return None if due else value

    def encoded(
        self, key: bytes, value: Introspection, encode: Callable[[Introspection], bytes]
    ) -> bytes:
        """``encode(value)`` for the entry :meth:`lookup` just returned under ``key``, made once
        per entry: kept beside it for as long as the cache hands out that very entry (a
        replaced or dropped entry is a new object, so its old bytes are never used)."""
        seen = self._encoded.get(key)
        if seen is not None and seen[0] is value:
            return seen[1]
        data = encode(value)
        if len(self._encoded) >= MAX_ENTRIES:
            self._encoded.clear()
        self._encoded[key] = (value, data)
        return data

    # -- following the event log -----------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        """Start the follower on the running loop (the cache serves once it has read where
        the log ends); later calls do nothing."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self.follow(), name="coatcheck-introspection-cache"
            )

    async def stop(self) -> None:
        """Stop the follower; the cache is bypassed and empty afterwards."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.cache.disconnected()
        self._encoded.clear()

    async def follow(self) -> None:
        """Follow the log for ever (until cancelled), bypassing the cache whenever it cannot."""
        delay, warned = RETRY[0], False
        while True:
            connections = self.connections
            try:
                await self._follow()
            except StoreUnavailable as exc:
                level = logging.DEBUG if warned else logging.WARNING
                log.log(level, "introspection cache bypassed: store unavailable (%s)", exc)
                warned = True
            except Exception:
                log.exception("introspection cache bypassed: its event follower failed")
            finally:
                self.cache.disconnected()
            if self.connections != connections:  # it was following: start the backoff afresh
                delay, warned = RETRY[0], False
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY[1])

    async def _follow(self) -> None:
        last = await self.events.newest_id() or 0
        self.cache.connected()
        self.last_id = last
        self.connections += 1
        while True:
            batch = await self.events.wait(last, FOLLOW_WAIT)
            if batch.last_id == last:
                newest = await self.events.newest_id() or 0
                if newest < last:  # the log was emptied: its ids start again below ours
                    self.cache.flush()
                    last = self.last_id = newest
                continue
            self.apply(batch, last)
            last = self.last_id = batch.last_id

    def apply(self, batch: EventBatch, last: int) -> None:
        """Drop what each event names; flush when something may have been missed (an
        unreadable event, or ids that skip past ``last + 1``)."""
        for event in batch.events:
            self.cache.drop(public_id=event.public_id, prefix=event.digest_prefix)
        if batch.unreadable or (batch.events and batch.events[0].id > last + 1):
            self.cache.flush()
