"""The async face of a synchronous store (memory, SQLite): one implementation, two APIs.

SQLite has no asynchronous driver in the standard library, so its async store runs the very
same synchronous code on a small thread pool instead of blocking the event loop. The memory
store needs no thread and is called inline.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from .._sync.stores.base import Store
from ..core.policy import WritePlan
from ..core.records import Revocation, SessionRecord, Tombstone, UserLimit
from ..core.tokens import SessionKey, TokenCodec
from . import forks
from .base import DEFAULT_PURGE_BATCH

T = TypeVar("T")


class AsyncOverSync:
    """Adapts a synchronous :class:`Store` to :class:`AsyncStore`."""

    def __init__(self, store: Store, *, threads: int | None = 4) -> None:
        self.sync = store
        self.url = store.url
        self._threads = threads
        self._pool = self._new_pool()
        forks.forget_in_child(self)

    def _new_pool(self) -> ThreadPoolExecutor | None:
        if not self._threads:
            return None
        return ThreadPoolExecutor(self._threads, thread_name_prefix="coatcheck-store")

    def forget_inherited(self) -> None:
        """In a forked child: the parent's worker threads do not exist here, and an executor
        that believes it has them would never run a call; start a pool of its own (unless the
        store was closed: then it has none)."""
        if self._pool is not None:
            forks.keep(self._pool)
            self._pool = self._new_pool()

    async def _run(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        if self._pool is None:
            return fn(*args, **kwargs)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    async def migrate(self) -> None:
        await self._run(self.sync.migrate)

    # load and update run on every request: called inline, without _run's extra coroutine,
    # when there are no threads (memory).
    async def load(self, key: SessionKey, *, data: bool = True) -> SessionRecord | None:
        if self._pool is None:
            return self.sync.load(key, data=data)
        return await self._run(self.sync.load, key, data=data)

    async def load_many(
        self, keys: Sequence[SessionKey], *, data: bool = True
    ) -> list[SessionRecord | None]:
        if self._pool is None:
            return self.sync.load_many(keys, data=data)
        return await self._run(self.sync.load_many, keys, data=data)

    async def insert(
        self,
        record: SessionRecord,
        *,
        replaces: SessionKey | None = None,
        limit: UserLimit | None = None,
    ) -> list[bytes]:
        return await self._run(self.sync.insert, record, replaces=replaces, limit=limit)

    async def update(
        self, key: SessionKey, plan: WritePlan, *, expected_version: int | None = None
    ) -> int:
        if self._pool is None:
            return self.sync.update(key, plan, expected_version=expected_version)
        return await self._run(self.sync.update, key, plan, expected_version=expected_version)

    async def delete(self, key: SessionKey, *, revoked: Revocation | None = None) -> bool:
        return await self._run(self.sync.delete, key, revoked=revoked)

    async def delete_by_public_id(
        self,
        public_id: bytes,
        *,
        user_id: str | None = None,
        revoked: Revocation | None = None,
        api_token: bool | None = None,
    ) -> SessionKey | None:
        return await self._run(
            self.sync.delete_by_public_id,
            public_id,
            user_id=user_id,
            revoked=revoked,
            api_token=api_token,
        )

    async def delete_user(
        self,
        user_id: str,
        *,
        keep: SessionKey | None = None,
        revoked: Revocation | None = None,
    ) -> int:
        return await self._run(self.sync.delete_user, user_id, keep=keep, revoked=revoked)

    async def tombstone(self, key: SessionKey) -> Tombstone | None:
        return await self._run(self.sync.tombstone, key)

    async def delete_all(self) -> int:
        return await self._run(self.sync.delete_all)

    async def list_user(self, user_id: str, now: float) -> list[SessionRecord]:
        return await self._run(self.sync.list_user, user_id, now)

    async def purge_expired(self, now: float, *, batch_size: int = DEFAULT_PURGE_BATCH) -> int:
        return await self._run(self.sync.purge_expired, now, batch_size=batch_size)

    async def count_active(self, since: float, now: float) -> int:
        return await self._run(self.sync.count_active, since, now)

    async def put_marker(
        self, name: str, value: str, ttl: float, *, only_if_absent: bool = False
    ) -> bool:
        return await self._run(
            self.sync.put_marker, name, value, ttl, only_if_absent=only_if_absent
        )

    async def get_marker(self, name: str) -> str | None:
        return await self._run(self.sync.get_marker, name)

    async def delete_marker(self, name: str) -> bool:
        return await self._run(self.sync.delete_marker, name)

    async def token_key(self) -> bytes:
        return await self._run(self.sync.token_key)

    def use_tokens(self, tokens: TokenCodec) -> None:
        self.sync.use_tokens(tokens)

    async def close(self) -> None:
        """Close the store and its threads; safe to call more than once."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        self.sync.close()
