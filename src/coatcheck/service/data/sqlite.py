"""``sqlite:///path.db``: the service data in the session store's own file.

sqlite3 has no asyncio API: every call runs on a small thread pool, one connection per
thread, set up by the same code as the SQLite session store's (``stores/sqlite/connections.py``:
WAL, ``busy_timeout``, ``synchronous=NORMAL``). Writes that read first
(hits, events) are one ``BEGIN IMMEDIATE`` transaction each. ``wait_events`` polls every
``POLL_INTERVAL`` seconds (one shared ``max(id)`` query) and wakes at once for events
appended by this process.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Final, TypeVar

from ...core.errors import StoreUnavailable
from ...stores import forks
from ...stores.sqlite.connections import DEFAULT_BUSY_TIMEOUT_MS, ThreadConnections
from ...stores.sqlite.url import path_from_url
from .base import (
    EVENTS_KEPT,
    check_after,
    check_key,
    check_limit,
    check_prefix,
    check_value,
    check_window,
    prefix_range,
    window_end,
    window_number,
)
from .waiting import POLL_INTERVAL, Poller, Wakeups, wait_by_polling

T = TypeVar("T")
THREADS: Final = 4

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS coatcheck_service_kv (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS coatcheck_service_hits (
    key TEXT PRIMARY KEY,
    window_number INTEGER NOT NULL,
    count INTEGER NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS coatcheck_service_hits_expires
    ON coatcheck_service_hits (expires_at);
CREATE TABLE IF NOT EXISTS coatcheck_service_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    payload TEXT NOT NULL
);
"""
HIT: Final = """
INSERT INTO coatcheck_service_hits (key, window_number, count, expires_at) VALUES (?, ?, 1, ?)
ON CONFLICT (key) DO UPDATE SET
    count = CASE WHEN window_number = excluded.window_number THEN count + 1 ELSE 1 END,
    window_number = excluded.window_number,
    expires_at = excluded.expires_at
RETURNING count
"""


class SQLiteServiceData:
    """The service's tables in a SQLite file; safe across threads and processes."""

    def __init__(
        self,
        url: str,
        *,
        events_kept: int = EVENTS_KEPT,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    ) -> None:
        self.url = url
        self.path = path_from_url(url)
        self.events_kept = events_kept
        self._migrated = False
        self._connections = ThreadConnections(
            self.path, busy_timeout_ms=busy_timeout_ms, prepare=self._create_schema
        )
        self._pool: ThreadPoolExecutor | None = self._new_pool()
        self._wakeups = Wakeups()
        self._poller = Poller(self.newest_event_id, POLL_INTERVAL)
        forks.forget_in_child(self)

    @staticmethod
    def _new_pool() -> ThreadPoolExecutor:
        return ThreadPoolExecutor(THREADS, thread_name_prefix="coatcheck-service-data")

    def forget_inherited(self) -> None:
        """In a forked child: never use the parent's connections or threads."""
        forks.keep(self._connections.forget_inherited())
        if self._pool is not None:
            forks.keep(self._pool)
            self._pool = self._new_pool()

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        pool = self._pool
        if pool is None:
            raise StoreUnavailable(f"SQLite service data {self.path!r} is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(pool, functools.partial(fn, *args))

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        """The tables, once per object (``CREATE ... IF NOT EXISTS``: racing is harmless)."""
        if not self._migrated:
            conn.executescript(SCHEMA)
            self._migrated = True

    def _read(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._connections.read()

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._connections.write()

    def _migrate(self) -> None:
        self._migrated = False
        with self._read():
            pass  # opening runs _create_schema

    async def migrate(self) -> None:
        await self._run(self._migrate)

    def _ping(self) -> None:
        with self._read() as conn:
            conn.execute("SELECT 1 FROM coatcheck_service_kv LIMIT 1").fetchall()

    async def ping(self) -> None:
        await self._run(self._ping)

    def _get(self, key: str) -> str | None:
        with self._read() as conn:
            row = conn.execute(
                "SELECT value FROM coatcheck_service_kv WHERE key = ?", (key,)
            ).fetchone()
        return None if row is None else str(row[0])

    async def get(self, key: str) -> str | None:
        return await self._run(self._get, check_key(key))

    def _put(self, key: str, value: str, only_if_absent: bool) -> bool:
        verb = "INSERT OR IGNORE" if only_if_absent else "INSERT OR REPLACE"
        with self._read() as conn:
            done = conn.execute(
                f"{verb} INTO coatcheck_service_kv (key, value) VALUES (?, ?)",
                (key, value),
            )
            return done.rowcount > 0

    async def put(self, key: str, value: str, *, only_if_absent: bool = False) -> bool:
        return await self._run(self._put, check_key(key), check_value(value), only_if_absent)

    def _delete(self, key: str) -> bool:
        with self._read() as conn:
            done = conn.execute("DELETE FROM coatcheck_service_kv WHERE key = ?", (key,))
            return done.rowcount > 0

    async def delete(self, key: str) -> bool:
        return await self._run(self._delete, check_key(key))

    def _scan(self, prefix: str) -> list[tuple[str, str]]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT key, value FROM coatcheck_service_kv WHERE key >= ? AND key < ? "
                "ORDER BY key",
                prefix_range(prefix),
            ).fetchall()
        return [(str(k), str(v)) for k, v in rows]

    async def scan(self, prefix: str) -> list[tuple[str, str]]:
        return await self._run(self._scan, check_prefix(prefix))

    def _hit(self, key: str, window: float, now: float) -> int:
        with self._write() as conn:
            conn.execute("DELETE FROM coatcheck_service_hits WHERE expires_at < ?", (now,))
            row = conn.execute(
                HIT, (key, window_number(window, now), window_end(window, now))
            ).fetchone()
        return int(row[0])

    async def hit(self, key: str, window: float, now: float) -> int:
        return await self._run(self._hit, check_key(key), check_window(window), float(now))

    def _clear_hits(self, key: str) -> None:
        with self._read() as conn:
            conn.execute("DELETE FROM coatcheck_service_hits WHERE key = ?", (key,))

    async def clear_hits(self, key: str) -> None:
        await self._run(self._clear_hits, check_key(key))

    def _append_event(self, payload: str, now: float) -> int:
        with self._write() as conn:
            row = conn.execute(
                "INSERT INTO coatcheck_service_events (at, payload) VALUES (?, ?) RETURNING id",
                (now, payload),
            ).fetchone()
            event_id = int(row[0])
            conn.execute(
                "DELETE FROM coatcheck_service_events WHERE id <= ?",
                (event_id - self.events_kept,),
            )
        return event_id

    async def append_event(self, payload: str, now: float) -> int:
        event_id = await self._run(self._append_event, check_value(payload), float(now))
        self._poller.stale()
        self._wakeups.wake()
        return event_id

    def _events_after(self, after: int, limit: int) -> list[tuple[int, str]]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT id, payload FROM coatcheck_service_events WHERE id > ? ORDER BY id LIMIT ?",
                (after, limit),
            ).fetchall()
        return [(int(i), str(p)) for i, p in rows]

    async def events_after(self, after: int, limit: int = 100) -> list[tuple[int, str]]:
        return await self._run(self._events_after, check_after(after), check_limit(limit))

    def _edge_id(self, which: str) -> int | None:
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {which}(id) FROM coatcheck_service_events"  # noqa: S608
            ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    async def oldest_event_id(self) -> int | None:
        return await self._run(self._edge_id, "min")

    async def newest_event_id(self) -> int | None:
        return await self._run(self._edge_id, "max")

    async def wait_events(self, after: int, timeout: float) -> list[tuple[int, str]]:  # noqa: ASYNC109 (spec 12's API)
        return await wait_by_polling(after, timeout, self.events_after, self._poller, self._wakeups)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        self._connections.close()
