"""The service's Prometheus metrics, on a registry of its own (several apps in one process, as
in tests, never share counters), and the store wrapper that times every store call."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

from .._async.stores.base import AsyncStore
from ..core.policy import WritePlan
from ..core.records import Revocation, SessionRecord, Tombstone, UserLimit
from ..core.tokens import SessionKey, TokenCodec
from ..stores.base import DEFAULT_PURGE_BATCH

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
"""The ``Content-Type`` of :meth:`ServiceMetrics.render`'s text."""

# Store calls on loopback take tens of microseconds; over a network, milliseconds.
LATENCY_BUCKETS: Final = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)

T = TypeVar("T")


class ServiceMetrics:
    """Counters and the store latency histogram of one service instance.

    ``validations{result}``: every introspection or refresh, by what the token turned out to
    be (``valid``, ``unknown``, ``revoked``, ``expired_idle``, ``expired_absolute``,
    ``ip_mismatch``, ``malformed``). ``rejections{reason}``: every API request refused, by its
    problem type (``unauthorized``, ``validation-error``, ...).
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.sessions_created = Counter(
            "coatcheck_sessions_created",
            "Sessions created through the service (API and login page)",
            registry=self.registry,
        )
        self.validations = Counter(
            "coatcheck_validations",
            "Token introspections and refreshes, by result",
            ["result"],
            registry=self.registry,
        )
        self.rejections = Counter(
            "coatcheck_rejections",
            "API requests refused, by problem type",
            ["reason"],
            registry=self.registry,
        )
        self.store_latency_seconds = Histogram(
            "coatcheck_store_latency_seconds",
            "Duration of session store calls, by store operation",
            ["operation"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        # Labelled children, bound on first use (``labels()`` per call costs a lock and a
        # tuple of label values; a series still appears only once it is first counted).
        self._results: dict[str, Counter] = {}
        self._operations: dict[str, Histogram] = {}

    def validated(self, result: str) -> None:
        """Count one introspection or refresh under ``result``."""
        child = self._results.get(result)
        if child is None:
            child = self._results[result] = self.validations.labels(result=result)
        child.inc()

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric (``CONTENT_TYPE``)."""
        return generate_latest(self.registry)

    async def timed(self, operation: str, call: Awaitable[T]) -> T:
        """Await ``call``, observing its duration (failures included) under ``operation``."""
        started = time.perf_counter()
        try:
            return await call
        finally:
            self.observe(operation, started)

    def observe(self, operation: str, started: float) -> None:
        """Count one store call under ``operation`` that began at ``perf_counter()`` value
        ``started`` and has just ended."""
        child = self._operations.get(operation)
        if child is None:
            child = self._operations[operation] = self.store_latency_seconds.labels(
                operation=operation
            )
        child.observe(time.perf_counter() - started)


EvictionHook = Callable[[Sequence[SessionKey]], Awaitable[None]]


class InstrumentedStore(AsyncStore):
    """A session store whose every call is timed, and which reports the sessions an insert
    evicted (the per-user limit) to ``on_evicted``: whoever creates a session (API, login page),
    evictions are published as revocations."""

    def __init__(
        self, store: AsyncStore, metrics: ServiceMetrics, on_evicted: EvictionHook
    ) -> None:
        self.inner = store
        self.url = store.url
        self._metrics = metrics
        self._on_evicted = on_evicted

    async def migrate(self) -> None:
        await self._metrics.timed("migrate", self.inner.migrate())

    async def load(self, key: SessionKey, *, data: bool = True) -> SessionRecord | None:
        # Timed in place, not through ``timed``: every introspection makes this call, and a
        # wrapping coroutine is one more frame to suspend and resume per look-up.
        started = time.perf_counter()
        try:
            return await self.inner.load(key, data=data)
        finally:
            self._metrics.observe("load", started)

    async def load_many(
        self, keys: Sequence[SessionKey], *, data: bool = True
    ) -> list[SessionRecord | None]:
        return await self._metrics.timed("load_many", self.inner.load_many(keys, data=data))

    async def insert(
        self,
        record: SessionRecord,
        *,
        replaces: SessionKey | None = None,
        limit: UserLimit | None = None,
    ) -> list[bytes]:
        evicted = await self._metrics.timed(
            "insert", self.inner.insert(record, replaces=replaces, limit=limit)
        )
        if evicted:  # evicted sessions are the same user's: they share the record's shard
            await self._on_evicted([SessionKey(record.key.shard, d) for d in evicted])
        return evicted

    async def update(
        self, key: SessionKey, plan: WritePlan, *, expected_version: int | None = None
    ) -> int:
        return await self._metrics.timed(
            "update", self.inner.update(key, plan, expected_version=expected_version)
        )

    async def delete(self, key: SessionKey, *, revoked: Revocation | None = None) -> bool:
        return await self._metrics.timed("delete", self.inner.delete(key, revoked=revoked))

    async def delete_by_public_id(
        self,
        public_id: bytes,
        *,
        user_id: str | None = None,
        revoked: Revocation | None = None,
        api_token: bool | None = None,
    ) -> SessionKey | None:
        return await self._metrics.timed(
            "delete_by_public_id",
            self.inner.delete_by_public_id(
                public_id, user_id=user_id, revoked=revoked, api_token=api_token
            ),
        )

    async def delete_user(
        self,
        user_id: str,
        *,
        keep: SessionKey | None = None,
        revoked: Revocation | None = None,
    ) -> int:
        return await self._metrics.timed(
            "delete_user", self.inner.delete_user(user_id, keep=keep, revoked=revoked)
        )

    async def tombstone(self, key: SessionKey) -> Tombstone | None:
        return await self._metrics.timed("tombstone", self.inner.tombstone(key))

    async def delete_all(self) -> int:
        return await self._metrics.timed("delete_all", self.inner.delete_all())

    async def list_user(self, user_id: str, now: float) -> list[SessionRecord]:
        return await self._metrics.timed("list_user", self.inner.list_user(user_id, now))

    async def purge_expired(self, now: float, *, batch_size: int = DEFAULT_PURGE_BATCH) -> int:
        return await self._metrics.timed(
            "purge_expired", self.inner.purge_expired(now, batch_size=batch_size)
        )

    async def count_active(self, since: float, now: float) -> int:
        return await self._metrics.timed("count_active", self.inner.count_active(since, now))

    async def put_marker(
        self, name: str, value: str, ttl: float, *, only_if_absent: bool = False
    ) -> bool:
        return await self._metrics.timed(
            "put_marker",
            self.inner.put_marker(name, value, ttl, only_if_absent=only_if_absent),
        )

    async def get_marker(self, name: str) -> str | None:
        return await self._metrics.timed("get_marker", self.inner.get_marker(name))

    async def delete_marker(self, name: str) -> bool:
        return await self._metrics.timed("delete_marker", self.inner.delete_marker(name))

    async def token_key(self) -> bytes:
        return await self._metrics.timed("token_key", self.inner.token_key())

    def use_tokens(self, tokens: TokenCodec) -> None:
        self.inner.use_tokens(tokens)

    async def close(self) -> None:
        await self.inner.close()
