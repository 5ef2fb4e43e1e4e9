"""The store contract's methods (the rules every store keeps: :mod:`coatcheck.stores.base`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ...core.policy import WritePlan
from ...core.records import Revocation, SessionRecord, Tombstone, UserLimit
from ...core.tokens import SessionKey, TokenCodec
from ...stores.base import DEFAULT_PURGE_BATCH


class AsyncStore(Protocol):
    """A store, as the session managers call it (the rules: :mod:`coatcheck.stores.base`)."""

    url: str

    async def migrate(self) -> None:
        """Create tables and indexes if missing (idempotent; also done on first use)."""

    async def load(self, key: SessionKey, *, data: bool = True) -> SessionRecord | None:
        """The record as stored, or None; ``data=False``: with empty ``data`` (the facts
        alone, read and decoded for less: what an introspection needs)."""

    async def load_many(
        self, keys: Sequence[SessionKey], *, data: bool = True
    ) -> list[SessionRecord | None]:
        """``load`` for each key, in one round trip; the answers in the order of ``keys``."""

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
        api_token: bool | None = None,
    ) -> SessionKey | None:
        """Delete the session with this public id (:func:`~coatcheck.core.records.public_id_bytes`),
        with ``user_id`` only if it is that user's, with ``api_token`` True only if it is an
        API token and False only if it is not (:func:`~coatcheck.core.apitokens.is_api_token`,
        checked in the same atomic step as the delete); its key, or None if nothing was
        deleted."""

    async def delete_user(
        self,
        user_id: str,
        *,
        keep: SessionKey | None = None,
        revoked: Revocation | None = None,
    ) -> int: ...

    async def tombstone(self, key: SessionKey) -> Tombstone | None:
        """The tombstone a revoked session left, as stored (the caller judges its expiry)."""

    async def delete_all(self) -> int: ...

    async def list_user(self, user_id: str, now: float) -> list[SessionRecord]:
        """The user's unexpired sessions, oldest first."""

    async def purge_expired(self, now: float, *, batch_size: int = DEFAULT_PURGE_BATCH) -> int:
        """Delete expired records in batches of at most ``batch_size``; returns how many."""

    async def count_active(self, since: float, now: float) -> int:
        """Unexpired sessions whose last write is at or after ``since``."""

    async def put_marker(
        self, name: str, value: str, ttl: float, *, only_if_absent: bool = False
    ) -> bool:
        """Keep ``value`` under ``name`` for ``ttl`` seconds (limits:
        :mod:`coatcheck.stores.markers`); with ``only_if_absent``, only if no live marker has
        that name, decided atomically across processes. Whether it was written."""

    async def get_marker(self, name: str) -> str | None:
        """The live marker's value; None when there is none or it has expired."""

    async def delete_marker(self, name: str) -> bool:
        """Delete the marker; whether a live one was there."""

    async def token_key(self) -> bytes:
        """The store's own token key: generated and stored atomically on first use (or
        ``migrate``), so every process on one store agrees on it with no configuration."""

    def use_tokens(self, tokens: TokenCodec) -> None:
        """The codec a manager resolved; a store that names keys by user shard (Redis) derives
        them with it, and refuses a second codec with another key."""

    async def close(self) -> None: ...
