"""In-process store for tests and single-process experiments (``memory://``).

Values are kept as JSON text, exactly as a server store would hold them, so a test on memory
catches the same "not JSON" and aliasing mistakes as production. Nothing survives a restart.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from typing import Any

from ..core.apitokens import API_TOKEN_KEY
from ..core.errors import SessionConflict, SessionGone, SessionLimitReached
from ..core.policy import WritePlan, choose_evictions
from ..core.records import (
    Patch,
    Revocation,
    SessionRecord,
    Tombstone,
    UserLimit,
    decode_value,
    encode_value,
    public_id_bytes,
)
from ..core.tokens import SessionKey, TokenCodec, new_token_key
from .base import DEFAULT_PURGE_BATCH
from .markers import check_marker, check_name


class _Stored:
    """One session: its record (without data) and its data as JSON, one ``"key":value`` member
    per key, so a patch replaces members and a load decodes one document (cached until the next
    write) instead of every value on its own."""

    __slots__ = ("document", "members", "record")

    def __init__(self, record: SessionRecord, members: dict[str, str]) -> None:
        self.record = record
        self.members = members
        self.document: str | None = None

    def apply(self, patch: Patch) -> None:
        for key in patch.delete:
            self.members.pop(key, None)
        for key, text in patch.set.items():
            self.members[key] = _member(key, text)
        self.document = None

    def data(self) -> dict[str, Any]:
        if self.document is None:
            self.document = "{" + ",".join(self.members.values()) + "}"
        data: dict[str, Any] = decode_value(self.document)
        return data

    def is_api_token(self) -> bool:
        """:func:`~coatcheck.core.apitokens.is_api_token` of the stored record."""
        return self.record.kind == "api" and isinstance(self.data().get(API_TOKEN_KEY), dict)


def _member(key: str, text: str) -> str:
    return json.dumps(key, ensure_ascii=False) + ":" + text


class MemoryStore:
    """A dict behind a lock; one instance is one isolated store."""

    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._rows: dict[bytes, _Stored] = {}
        self._tombstones: dict[bytes, Tombstone] = {}
        self._markers: dict[str, tuple[str, float]] = {}  # name -> (value, expires at)
        self._lock = threading.Lock()
        self._token_key = new_token_key()  # this store object is the whole store

    def migrate(self) -> None:
        return None

    def load(self, key: SessionKey, *, data: bool = True) -> SessionRecord | None:
        with self._lock:
            row = self._rows.get(key.digest)
            return None if row is None else self._decode(row, data)

    def load_many(
        self, keys: Sequence[SessionKey], *, data: bool = True
    ) -> list[SessionRecord | None]:
        with self._lock:
            rows = [self._rows.get(key.digest) for key in keys]
            return [None if row is None else self._decode(row, data) for row in rows]

    def insert(
        self,
        record: SessionRecord,
        *,
        replaces: SessionKey | None = None,
        limit: UserLimit | None = None,
    ) -> list[bytes]:
        members = {k: _member(k, encode_value(k, v)) for k, v in record.data.items()}
        with self._lock:
            if replaces is not None and replaces.digest not in self._rows:
                raise SessionGone("the session being replaced no longer exists")
            evicted: list[bytes] = []
            if record.kind == "browser" and record.user_id is not None:
                others = [
                    r.record
                    for d, r in self._rows.items()
                    if r.record.user_id == record.user_id
                    and (replaces is None or d != replaces.digest)
                ]
                victims = choose_evictions(others, limit, record.last_seen_at)
                if victims is None:
                    raise SessionLimitReached(
                        f"user {record.user_id!r} already has {limit.max_sessions if limit else 0}"
                        " browser session(s)"
                    )
                evicted = [v.key.digest for v in victims]
            if replaces is not None:
                del self._rows[replaces.digest]
            eviction = Revocation("limit_eviction", record.last_seen_at)
            for digest in evicted:
                self._bury(digest, eviction)
            self._rows[record.key.digest] = _Stored(record.with_data({}), members)
            return evicted

    def update(
        self, key: SessionKey, plan: WritePlan, *, expected_version: int | None = None
    ) -> int:
        with self._lock:
            row = self._rows.get(key.digest)
            if row is None:
                raise SessionGone("the session no longer exists")
            if expected_version is not None and row.record.version != expected_version:
                raise SessionConflict(
                    f"session changed concurrently (version {row.record.version}, "
                    f"expected {expected_version})"
                )
            row.apply(plan.patch)
            row.record.last_seen_at = plan.last_seen_at
            row.record.expires_at = plan.expires_at
            row.record.version += 1
            return row.record.version

    def delete(self, key: SessionKey, *, revoked: Revocation | None = None) -> bool:
        with self._lock:
            return self._bury(key.digest, revoked)

    def delete_by_public_id(
        self,
        public_id: bytes,
        *,
        user_id: str | None = None,
        revoked: Revocation | None = None,
        api_token: bool | None = None,
    ) -> SessionKey | None:
        with self._lock:
            for row in self._rows.values():
                key = row.record.key
                if (
                    public_id_bytes(key) == public_id
                    and (user_id is None or row.record.user_id == user_id)
                    and (api_token is None or row.is_api_token() == api_token)
                ):
                    self._bury(key.digest, revoked)
                    return key
        return None

    def delete_user(
        self,
        user_id: str,
        *,
        keep: SessionKey | None = None,
        revoked: Revocation | None = None,
    ) -> int:
        with self._lock:
            doomed = [
                d
                for d, r in self._rows.items()
                if r.record.user_id == user_id and (keep is None or d != keep.digest)
            ]
            for d in doomed:
                self._bury(d, revoked)
            return len(doomed)

    def tombstone(self, key: SessionKey) -> Tombstone | None:
        with self._lock:
            return self._tombstones.get(key.digest)

    def _bury(self, digest: bytes, revoked: Revocation | None) -> bool:
        """Delete a session (caller holds the lock), leaving a tombstone if ``revoked``."""
        row = self._rows.pop(digest, None)
        if row is None:
            return False
        if revoked is not None:
            self._tombstones[digest] = Tombstone(revoked.reason, revoked.at, row.record.expires_at)
        return True

    def delete_all(self) -> int:
        with self._lock:
            count = len(self._rows)
            self._rows.clear()
            self._markers.clear()
            return count

    def list_user(self, user_id: str, now: float) -> list[SessionRecord]:
        with self._lock:
            rows = [
                self._decode(r)
                for r in self._rows.values()
                if r.record.user_id == user_id and r.record.expires_at > now
            ]
        return sorted(rows, key=lambda r: (r.created_at, r.key.digest))

    def purge_expired(self, now: float, *, batch_size: int = DEFAULT_PURGE_BATCH) -> int:
        total = 0
        while True:
            with self._lock:
                batch = [d for d, r in self._rows.items() if r.record.expires_at <= now]
                batch = batch[:batch_size]
                for d in batch:
                    del self._rows[d]
                for d in [d for d, t in self._tombstones.items() if t.expires_at <= now]:
                    del self._tombstones[d]
                for name in [n for n, (_, exp) in self._markers.items() if exp <= now]:
                    del self._markers[name]
            total += len(batch)
            if len(batch) < batch_size:
                return total

    def count_active(self, since: float, now: float) -> int:
        with self._lock:
            return sum(
                1
                for r in self._rows.values()
                if r.record.last_seen_at >= since and r.record.expires_at > now
            )

    def put_marker(
        self, name: str, value: str, ttl: float, *, only_if_absent: bool = False
    ) -> bool:
        ttl = check_marker(name, value, ttl)
        now = time.time()
        with self._lock:
            held = self._markers.get(name)
            if only_if_absent and held is not None and held[1] > now:
                return False
            self._markers[name] = (value, now + ttl)
            return True

    def get_marker(self, name: str) -> str | None:
        check_name(name)
        with self._lock:
            held = self._markers.get(name)
        return held[0] if held is not None and held[1] > time.time() else None

    def delete_marker(self, name: str) -> bool:
        check_name(name)
        with self._lock:
            held = self._markers.pop(name, None)
        return held is not None and held[1] > time.time()

    def token_key(self) -> bytes:
        return self._token_key

    def use_tokens(self, tokens: TokenCodec) -> None:
        return None  # records are found by digest alone

    def close(self) -> None:
        return None

    @staticmethod
    def _decode(row: _Stored, data: bool = True) -> SessionRecord:
        return row.record.with_data(row.data() if data else {})
