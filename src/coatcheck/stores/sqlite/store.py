"""The SQLite store class: sessions in one file (``sqlite:///path/to/file.db``).

WAL mode lets readers run beside one writer; ``synchronous=NORMAL`` makes a write cost a WAL
append instead of a disk flush (an application crash loses nothing; a power cut may lose the
last few touches, which for sessions only means a slightly earlier idle expiry). Each write is
one ``BEGIN IMMEDIATE`` transaction, which is what makes patches and rotation atomic.
Each thread gets its own connection (``connections.py``, shared with the service's data in
the same file); the file is created on first use, in a directory that must exist.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager

from ...core.apitokens import API_TOKEN_KEY
from ...core.errors import (
    SessionConflict,
    SessionGone,
    SessionLimitReached,
    StoreUnavailable,
)
from ...core.policy import WritePlan, choose_evictions
from ...core.records import (
    SQL_COLUMNS,
    SQL_FACT_COLUMNS,
    Revocation,
    SessionRecord,
    Tombstone,
    UserLimit,
    encode_data,
    public_id_bytes,
)
from ...core.tokens import SessionKey, TokenCodec, new_token_key, stored_token_key
from .. import forks
from ..base import DEFAULT_PURGE_BATCH
from ..markers import check_marker, check_name
from .connections import DEFAULT_BUSY_TIMEOUT_MS, ThreadConnections
from .sql import (
    INSERT,
    PUT_MARKER,
    PUT_MARKER_IF_ABSENT,
    SCHEMA,
    TOKEN_KEY_NAME,
    bury,
    upgrade,
)
from .url import path_from_url

_COLUMNS = SQL_COLUMNS
_FACT_COLUMNS = SQL_FACT_COLUMNS
_MANY_CHUNK = 500  # keys per statement in load_many (SQLite allows 999 parameters at least)


class SQLiteStore:
    """Sessions in one SQLite file; safe across threads and processes on one machine."""

    def __init__(self, url: str, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> None:
        self.url = url
        self.path = path_from_url(url)
        self._migrated = False
        self._migrate_lock = threading.Lock()
        self._connections = ThreadConnections(
            self.path, busy_timeout_ms=busy_timeout_ms, prepare=self._create_schema
        )
        self._token_key: bytes | None = None
        forks.forget_in_child(self)

    def forget_inherited(self) -> None:
        """In a forked child: SQLite forbids using a connection opened before ``fork()``
        ("All kinds of locking problems will result", sqlite.org/howtocorrupt.html). The
        inherited ones are kept, unused, and each thread of the child opens its own."""
        forks.keep(self._connections.forget_inherited())
        self._migrate_lock = threading.Lock()

    @property
    def _all(self) -> list[sqlite3.Connection]:
        """Every thread's open connection (what a forked child would inherit)."""
        return self._connections.all

    def _connect(self) -> sqlite3.Connection:
        """This thread's connection, the schema made on first use."""
        return self._connections.get()

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        if self._migrated:
            return
        with self._migrate_lock:
            if self._migrated:
                return
            try:
                conn.executescript(SCHEMA)
                upgrade(conn)
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"cannot create SQLite schema: {exc}") from exc
            self._migrated = True

    def _read(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._connections.read()

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._connections.write()

    def migrate(self) -> None:
        self._migrated = False
        self._create_schema(self._connect())
        self.token_key()

    def token_key(self) -> bytes:
        """Read once per store object; the first process to need it stores a random one
        (``INSERT OR IGNORE`` in a write transaction, then read: every process gets the
        winner's)."""
        key = self._token_key
        if key is None:
            query = "SELECT value FROM coatcheck_meta WHERE name = ?"
            with self._read() as conn:
                row = conn.execute(query, (TOKEN_KEY_NAME,)).fetchone()
            if row is None:
                with self._write() as conn:
                    conn.execute(
                        "INSERT OR IGNORE INTO coatcheck_meta (name, value) VALUES (?, ?)",
                        (TOKEN_KEY_NAME, new_token_key()),
                    )
                    row = conn.execute(query, (TOKEN_KEY_NAME,)).fetchone()
            key = stored_token_key(
                row[0],
                f"SQLite store {self.path!r}: coatcheck_meta",
                "delete that row to make a new one",
            )
            self._token_key = key
        return key

    def use_tokens(self, tokens: TokenCodec) -> None:
        return None  # records are found by digest alone

    def load(self, key: SessionKey, *, data: bool = True) -> SessionRecord | None:
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS if data else _FACT_COLUMNS} FROM coatcheck_sessions"  # noqa: S608
                " WHERE id = ?",
                (key.digest,),
            ).fetchone()
        return None if row is None else SessionRecord.from_row(row)

    def load_many(
        self, keys: Sequence[SessionKey], *, data: bool = True
    ) -> list[SessionRecord | None]:
        columns = _COLUMNS if data else _FACT_COLUMNS
        wanted = list(dict.fromkeys(key.digest for key in keys))
        rows: dict[bytes, tuple[object, ...]] = {}
        with self._read() as conn:
            # One statement per _MANY_CHUNK keys: SQLite limits bound parameters.
            for start in range(0, len(wanted), _MANY_CHUNK):
                chunk = wanted[start : start + _MANY_CHUNK]
                marks = ", ".join("?" * len(chunk))
                for row in conn.execute(
                    f"SELECT {columns} FROM coatcheck_sessions WHERE id IN ({marks})",  # noqa: S608
                    chunk,
                ):
                    rows[bytes(row[0])] = row
        found = [rows.get(key.digest) for key in keys]
        return [None if row is None else SessionRecord.from_row(row) for row in found]

    def insert(
        self,
        record: SessionRecord,
        *,
        replaces: SessionKey | None = None,
        limit: UserLimit | None = None,
    ) -> list[bytes]:
        with self._write() as conn:
            if replaces is not None:
                gone = conn.execute(
                    "DELETE FROM coatcheck_sessions WHERE id = ?", (replaces.digest,)
                ).rowcount
                if not gone:
                    raise SessionGone("the session being replaced no longer exists")
            evicted: list[bytes] = []
            if record.kind == "browser" and record.user_id is not None and limit is not None:
                others = [
                    SessionRecord.from_row(r)
                    for r in conn.execute(
                        f"SELECT {_COLUMNS} FROM coatcheck_sessions "  # noqa: S608
                        "WHERE user_id = ? AND kind = 'browser'",
                        (record.user_id,),
                    )
                ]
                victims = choose_evictions(others, limit, record.last_seen_at)
                if victims is None:
                    raise SessionLimitReached(
                        f"user {record.user_id!r} already has {limit.max_sessions} "
                        "browser session(s)"
                    )
                evicted = [v.key.digest for v in victims]
                eviction = Revocation("limit_eviction", record.last_seen_at)
                for digest in evicted:
                    bury(conn, "id = ?", (digest,), eviction)
            conn.execute(INSERT, (*record.row(), public_id_bytes(record.key)))
            return evicted

    def update(
        self, key: SessionKey, plan: WritePlan, *, expected_version: int | None = None
    ) -> int:
        with self._write() as conn:
            row = conn.execute(
                "SELECT version, data FROM coatcheck_sessions WHERE id = ?", (key.digest,)
            ).fetchone()
            if row is None:
                raise SessionGone("the session no longer exists")
            version, data = row
            if expected_version is not None and version != expected_version:
                raise SessionConflict(
                    f"session changed concurrently (version {version}, expected {expected_version})"
                )
            if plan.patch:
                data = encode_data(plan.patch.apply_to(json.loads(data)))
            conn.execute(
                "UPDATE coatcheck_sessions SET data = ?, last_seen_at = ?, expires_at = ?, "
                "version = ? WHERE id = ?",
                (data, plan.last_seen_at, plan.expires_at, version + 1, key.digest),
            )
            return int(version) + 1

    def delete(self, key: SessionKey, *, revoked: Revocation | None = None) -> bool:
        with self._write() as conn:
            return bool(bury(conn, "id = ?", (key.digest,), revoked))

    def delete_by_public_id(
        self,
        public_id: bytes,
        *,
        user_id: str | None = None,
        revoked: Revocation | None = None,
        api_token: bool | None = None,
    ) -> SessionKey | None:
        """The kind is judged in Python inside the write transaction (no JSON1 needed): nothing
        can change the row between the look and the delete."""
        with self._write() as conn:
            rows = conn.execute(
                "SELECT id, shard, kind, data FROM coatcheck_sessions "
                "WHERE public_id = ? AND (? IS NULL OR user_id = ?)",
                (public_id, user_id, user_id),
            ).fetchall()
            for digest, shard, kind, data in rows:
                if api_token is None or _is_api_token(kind, data) == api_token:
                    bury(conn, "id = ?", (digest,), revoked)
                    return SessionKey(bytes(shard), bytes(digest))
        return None

    def delete_user(
        self,
        user_id: str,
        *,
        keep: SessionKey | None = None,
        revoked: Revocation | None = None,
    ) -> int:
        with self._write() as conn:
            where = "user_id = ? AND id IS NOT ?"
            return bury(conn, where, (user_id, keep.digest if keep else None), revoked)

    def tombstone(self, key: SessionKey) -> Tombstone | None:
        with self._read() as conn:
            row = conn.execute(
                "SELECT reason, revoked_at, expires_at FROM coatcheck_tombstones WHERE id = ?",
                (key.digest,),
            ).fetchone()
        return None if row is None else Tombstone(*row)

    def delete_all(self) -> int:
        with self._write() as conn:
            conn.execute("DELETE FROM coatcheck_markers")
            return int(conn.execute("DELETE FROM coatcheck_sessions").rowcount)

    def list_user(self, user_id: str, now: float) -> list[SessionRecord]:
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM coatcheck_sessions "  # noqa: S608
                "WHERE user_id = ? AND expires_at > ? ORDER BY created_at, id",
                (user_id, now),
            ).fetchall()
        return [SessionRecord.from_row(r) for r in rows]

    def purge_expired(self, now: float, *, batch_size: int = DEFAULT_PURGE_BATCH) -> int:
        total = 0
        while True:
            with self._write() as conn:
                deleted = int(
                    conn.execute(
                        "DELETE FROM coatcheck_sessions WHERE id IN (SELECT id FROM "
                        "coatcheck_sessions WHERE expires_at <= ? LIMIT ?)",
                        (now, batch_size),
                    ).rowcount
                )
            total += deleted
            if deleted < batch_size:
                break
        for table, key in (("coatcheck_tombstones", "id"), ("coatcheck_markers", "name")):
            while True:
                with self._write() as conn:
                    gone = conn.execute(
                        f"DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} "  # noqa: S608
                        "WHERE expires_at <= ? LIMIT ?)",
                        (now, batch_size),
                    ).rowcount
                if gone < batch_size:
                    break
        return total

    def count_active(self, since: float, now: float) -> int:
        with self._read() as conn:
            (count,) = conn.execute(
                "SELECT count(*) FROM coatcheck_sessions WHERE last_seen_at >= ? "
                "AND expires_at > ?",
                (since, now),
            ).fetchone()
        return int(count)

    def put_marker(
        self, name: str, value: str, ttl: float, *, only_if_absent: bool = False
    ) -> bool:
        ttl = check_marker(name, value, ttl)
        now = time.time()
        with self._write() as conn:
            if only_if_absent:
                written = conn.execute(PUT_MARKER_IF_ABSENT, (name, value, now + ttl, now))
            else:
                written = conn.execute(PUT_MARKER, (name, value, now + ttl))
            return written.rowcount > 0

    def get_marker(self, name: str) -> str | None:
        check_name(name)
        with self._read() as conn:
            row = conn.execute(
                "SELECT value FROM coatcheck_markers WHERE name = ? AND expires_at > ?",
                (name, time.time()),
            ).fetchone()
        return None if row is None else str(row[0])

    def delete_marker(self, name: str) -> bool:
        check_name(name)
        with self._write() as conn:
            row = conn.execute(
                "SELECT expires_at FROM coatcheck_markers WHERE name = ?", (name,)
            ).fetchone()
            if row is None:
                return False
            conn.execute("DELETE FROM coatcheck_markers WHERE name = ?", (name,))
            return bool(row[0] > time.time())

    def close(self) -> None:
        self._connections.close()


def _is_api_token(kind: str, data: str) -> bool:
    """:func:`~coatcheck.core.apitokens.is_api_token` of a stored row (decodes only ``api``)."""
    return kind == "api" and isinstance(json.loads(data).get(API_TOKEN_KEY), dict)
