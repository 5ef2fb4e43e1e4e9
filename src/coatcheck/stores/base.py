"""The one contract every store keeps, in a synchronous and an asynchronous form.

Rules every implementation follows (the conformance suite in ``tests/stores`` checks them):

* Records are keyed by ``SessionKey.digest`` (SHA-256 of the token); the token never arrives.
* ``load`` returns what is stored, expired or not: the policy, not the store, decides liveness.
  ``load_many`` does the same for several keys in one round trip (one per cluster node),
  answering position by position (``None`` where nothing is stored; a repeated key gets its
  own record object each time).
* Every write is conditional on the record still existing. ``update`` of a missing record
  raises :class:`SessionGone` and writes nothing: a slow request cannot resurrect a session
  that was logged out, revoked, rotated or purged. With ``expected_version`` it also raises
  :class:`SessionConflict` when another write came first.
* ``update`` applies a :class:`Patch` atomically against the current data and bumps
  ``version`` by one, so concurrent requests that change different keys both keep them.
* Every session has a public id (``public_id_bytes(key)``: its cluster slot and a hash of its
  digest), which ``delete_by_public_id`` looks up by an index (SQL) or a key kept with the
  session (Redis): listings show it, and nothing can be derived from it.
* A delete given a :class:`Revocation` (``delete``, ``delete_by_public_id``, ``delete_user``)
  leaves a :class:`Tombstone` per deleted session in the same atomic step: its reason and time,
  kept until the session's own ``expires_at``; a session evicted by the per-user limit leaves one
  with reason ``limit_eviction``. Nothing is written for a session that was already gone, and
  no tombstone ever brings a session back or stands in the way of a write. ``tombstone`` reads
  one as stored (expired or not, as ``load``); ``purge_expired`` deletes expired ones too;
  ``delete_all`` leaves them. Rotation (``insert`` with ``replaces``) leaves none.
* ``insert`` with ``replaces`` is rotation: in one atomic step the old record must exist (else
  :class:`SessionGone`) and is deleted, the new one is inserted, and the per-user limit is
  enforced for browser sessions (oldest evicted, or :class:`SessionLimitReached` with nothing
  changed). It returns the digests of evicted sessions.
* ``token_key`` is the store's own token key (docs/security.md, "The token key"): created
  once, atomically, never deleted by the store (not even by ``delete_all``).
* Server failures surface as :class:`StoreUnavailable`, never as a driver exception, and the
  store recovers by itself once the server is back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..core.policy import WritePlan
from ..core.records import Revocation, SessionRecord, Tombstone, UserLimit
from ..core.tokens import SessionKey, TokenCodec

DEFAULT_PURGE_BATCH = 1000


class Store(Protocol):
    """Synchronous store (WSGI apps, the CLI, scripts)."""

    url: str

    def migrate(self) -> None:
        """Create tables and indexes if missing (idempotent; also done on first use)."""

    def load(self, key: SessionKey) -> SessionRecord | None: ...

    def load_many(self, keys: Sequence[SessionKey]) -> list[SessionRecord | None]:
        """``load`` for each key, in one round trip; the answers in the order of ``keys``."""

    def insert(
        self,
        record: SessionRecord,
        *,
        replaces: SessionKey | None = None,
        limit: UserLimit | None = None,
    ) -> list[bytes]: ...

    def update(
        self, key: SessionKey, plan: WritePlan, *, expected_version: int | None = None
    ) -> int: ...

    def delete(self, key: SessionKey, *, revoked: Revocation | None = None) -> bool: ...

    def delete_by_public_id(
        self,
        public_id: bytes,
        *,
        user_id: str | None = None,
        revoked: Revocation | None = None,
    ) -> SessionKey | None:
        """Delete the session with this public id (:func:`~coatcheck.core.records.public_id_bytes`),
        with ``user_id`` only if it is that user's; its key, or None if nothing was deleted."""

    def delete_user(
        self,
        user_id: str,
        *,
        keep: SessionKey | None = None,
        revoked: Revocation | None = None,
    ) -> int: ...

    def tombstone(self, key: SessionKey) -> Tombstone | None:
        """The tombstone a revoked session left, as stored (the caller judges its expiry)."""

    def delete_all(self) -> int: ...

    def list_user(self, user_id: str, now: float) -> list[SessionRecord]:
        """The user's unexpired sessions, oldest first."""

    def purge_expired(self, now: float, *, batch_size: int = DEFAULT_PURGE_BATCH) -> int:
        """Delete expired records in batches of at most ``batch_size``; returns how many."""

    def count_active(self, since: float, now: float) -> int:
        """Unexpired sessions whose last write is at or after ``since``."""

    def token_key(self) -> bytes:
        """The store's own token key: generated and stored atomically on first use (or
        ``migrate``), so every process on one store agrees on it with no configuration."""

    def use_tokens(self, tokens: TokenCodec) -> None:
        """The codec a manager resolved; a store that names keys by user shard (Redis) derives
        them with it, and refuses a second codec with another key."""

    def close(self) -> None: ...


class AsyncStore(Protocol):
    """Asynchronous store (ASGI apps); the same contract, awaited."""

    url: str

    async def migrate(self) -> None: ...

    async def load(self, key: SessionKey) -> SessionRecord | None: ...

    async def load_many(self, keys: Sequence[SessionKey]) -> list[SessionRecord | None]: ...

    async def insert(
        self,
        record: SessionRecord,
        *,
        replaces: SessionKey | None = None,
        limit: UserLimit | None = None,
    ) -> list[bytes]: ...

    async def update(
        self, key: SessionKey, plan: WritePlan, *, expected_version: int | None = None
    ) -> int: ...

    async def delete(self, key: SessionKey, *, revoked: Revocation | None = None) -> bool: ...

    async def delete_by_public_id(
        self,
        public_id: bytes,
        *,
        user_id: str | None = None,
        revoked: Revocation | None = None,
    ) -> SessionKey | None: ...

    async def delete_user(
        self,
        user_id: str,
        *,
        keep: SessionKey | None = None,
        revoked: Revocation | None = None,
    ) -> int: ...

    async def tombstone(self, key: SessionKey) -> Tombstone | None: ...

    async def delete_all(self) -> int: ...

    async def list_user(self, user_id: str, now: float) -> list[SessionRecord]: ...

    async def purge_expired(self, now: float, *, batch_size: int = DEFAULT_PURGE_BATCH) -> int: ...

    async def count_active(self, since: float, now: float) -> int: ...

    async def token_key(self) -> bytes: ...

    def use_tokens(self, tokens: TokenCodec) -> None: ...

    async def close(self) -> None: ...
