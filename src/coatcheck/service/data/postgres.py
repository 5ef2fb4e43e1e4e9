"""``postgresql://``: the service data in three tables beside the session table.

Table names follow the URL's ``table`` option: the sessions table's name without a
``_sessions`` ending, plus ``_service_kv``, ``_service_hits`` and ``_service_events``
(``coatcheck_service_kv`` ... for the default). Connections come from the same pool machinery
as the session store (psycopg_pool, opened on first use, failures as StoreUnavailable).
Appends take a table lock so that event ids become visible in increasing order (a reader
never skips a lower id committed late). ``wait_events`` polls every ``POLL_INTERVAL``
seconds (one shared query per process) and wakes at once for this process's appends.
"""

from __future__ import annotations

from typing import Final

from psycopg import AsyncCursor, sql
from psycopg.rows import TupleRow

from ..._async.stores.postgres_pool import AsyncPostgresConnections
from ...stores.postgres.sql import lock_key
from ...stores.postgres.url import parse_url
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

_SESSIONS_SUFFIX: Final = "_sessions"


def service_tables(sessions_table: str) -> tuple[str, str, str]:
    """The key-value, hits and events tables that go with a sessions table."""
    base = sessions_table.removesuffix(_SESSIONS_SUFFIX) or sessions_table
    return f"{base}_service_kv", f"{base}_service_hits", f"{base}_service_events"


class _Statements:
    """Every statement, built once for the URL's table names."""

    def __init__(self, sessions_table: str) -> None:
        kv, hits, events = (sql.Identifier(name) for name in service_tables(sessions_table))
        self.names = service_tables(sessions_table)

        def q(text: str) -> sql.Composed:
            return sql.SQL(text).format(kv=kv, hits=hits, events=events)

        self.present = q(
            "SELECT to_regclass(%s) IS NOT NULL AND to_regclass(%s) IS NOT NULL "
            "AND to_regclass(%s) IS NOT NULL"
        )
        self.create = q(
            'CREATE TABLE IF NOT EXISTS {kv} (key text COLLATE "C" PRIMARY KEY, '
            "value text NOT NULL); "
            'CREATE TABLE IF NOT EXISTS {hits} (key text COLLATE "C" PRIMARY KEY, '
            "window_number bigint NOT NULL, count bigint NOT NULL, "
            "expires_at double precision NOT NULL); "
            "CREATE TABLE IF NOT EXISTS {events} (id bigserial PRIMARY KEY, "
            "at double precision NOT NULL, payload text NOT NULL)"
        )
        self.get = q("SELECT value FROM {kv} WHERE key = %s")
        self.put = q(
            "INSERT INTO {kv} (key, value) VALUES (%s, %s) "
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
        )
        self.put_new = q("INSERT INTO {kv} (key, value) VALUES (%s, %s) ON CONFLICT DO NOTHING")
        self.delete = q("DELETE FROM {kv} WHERE key = %s")
        self.scan = q("SELECT key, value FROM {kv} WHERE key >= %s AND key < %s ORDER BY key")
        # The expired rows of other keys go in the same statement (a data-modifying CTE must
        # not touch the row the INSERT updates).
        self.hit = q(
            "WITH gone AS (DELETE FROM {hits} WHERE expires_at < %s AND key <> %s) "
            "INSERT INTO {hits} AS h (key, window_number, count, expires_at) "
            "VALUES (%s, %s, 1, %s) ON CONFLICT (key) DO UPDATE SET "
            "count = CASE WHEN h.window_number = EXCLUDED.window_number "
            "THEN h.count + 1 ELSE 1 END, "
            "window_number = EXCLUDED.window_number, expires_at = EXCLUDED.expires_at "
            "RETURNING count"
        )
        self.clear_hits = q("DELETE FROM {hits} WHERE key = %s")
        self.lock_events = q("LOCK TABLE {events} IN SHARE ROW EXCLUSIVE MODE")
        self.append = q("INSERT INTO {events} (at, payload) VALUES (%s, %s) RETURNING id")
        self.trim = q("DELETE FROM {events} WHERE id <= %s")
        self.after = q("SELECT id, payload FROM {events} WHERE id > %s ORDER BY id LIMIT %s")
        self.oldest = q("SELECT id FROM {events} ORDER BY id LIMIT 1")
        self.newest = q("SELECT id FROM {events} ORDER BY id DESC LIMIT 1")


class PostgresServiceData(AsyncPostgresConnections):
    """The service's tables on the session store's PostgreSQL database."""

    def __init__(self, url: str, *, events_kept: int = EVENTS_KEPT) -> None:
        super().__init__(parse_url(url))
        self.url = url
        self.events_kept = events_kept
        self._sql = _Statements(self.options.table)
        self._migrate_key = lock_key("service-data", self.options.table)
        self._wakeups = Wakeups()
        self._poller = Poller(self.newest_event_id, POLL_INTERVAL)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.options.where} tables={self._sql.names}>"

    async def _ensure_schema(self, cur: AsyncCursor[TupleRow], *, force: bool) -> None:
        """Create the tables if missing; without ``force`` only if one query finds a gap."""
        if not force:
            await cur.execute(self._sql.present, self._sql.names)
            row = await cur.fetchone()
            if row is not None and row[0]:
                self._schema_ready = True
                return
        # Concurrent CREATE ... IF NOT EXISTS can still collide: the advisory lock orders them.
        async with cur.connection.transaction():
            await cur.execute("SELECT pg_advisory_xact_lock(%s)", (self._migrate_key,))
            await cur.execute(self._sql.create)
        self._schema_ready = True

    async def migrate(self) -> None:
        async with self._lease(ensure_schema=False) as cur:
            await self._ensure_schema(cur, force=True)

    async def ping(self) -> None:
        async with self._lease() as cur:
            await cur.execute("SELECT 1")

    async def get(self, key: str) -> str | None:
        check_key(key)
        async with self._lease() as cur:
            await cur.execute(self._sql.get, (key,))
            row = await cur.fetchone()
        return None if row is None else str(row[0])

    async def put(self, key: str, value: str, *, only_if_absent: bool = False) -> bool:
        check_key(key)
        check_value(value)
        async with self._lease() as cur:
            await cur.execute(self._sql.put_new if only_if_absent else self._sql.put, (key, value))
            return cur.rowcount > 0

    async def delete(self, key: str) -> bool:
        check_key(key)
        async with self._lease() as cur:
            await cur.execute(self._sql.delete, (key,))
            return cur.rowcount > 0

    async def scan(self, prefix: str) -> list[tuple[str, str]]:
        check_prefix(prefix)
        async with self._lease() as cur:
            await cur.execute(self._sql.scan, prefix_range(prefix))
            rows = await cur.fetchall()
        return [(str(k), str(v)) for k, v in rows]

    async def hit(self, key: str, window: float, now: float) -> int:
        check_key(key)
        window = check_window(window)
        params = (now, key, key, window_number(window, now), window_end(window, now))
        async with self._lease() as cur:
            await cur.execute(self._sql.hit, params)
            row = await cur.fetchone()
        assert row is not None
        return int(row[0])

    async def clear_hits(self, key: str) -> None:
        check_key(key)
        async with self._lease() as cur:
            await cur.execute(self._sql.clear_hits, (key,))

    async def append_event(self, payload: str, now: float) -> int:
        check_value(payload)
        async with self._lease() as cur, cur.connection.transaction():
            await cur.execute(self._sql.lock_events)
            await cur.execute(self._sql.append, (now, payload))
            row = await cur.fetchone()
            assert row is not None
            event_id = int(row[0])
            await cur.execute(self._sql.trim, (event_id - self.events_kept,))
        self._poller.stale()
        self._wakeups.wake()
        return event_id

    async def events_after(self, after: int, limit: int = 100) -> list[tuple[int, str]]:
        params = (check_after(after), check_limit(limit))
        async with self._lease() as cur:
            await cur.execute(self._sql.after, params)
            rows = await cur.fetchall()
        return [(int(i), str(p)) for i, p in rows]

    async def _edge(self, query: sql.Composed) -> int | None:
        async with self._lease() as cur:
            await cur.execute(query)
            row = await cur.fetchone()
        return None if row is None else int(row[0])

    async def oldest_event_id(self) -> int | None:
        return await self._edge(self._sql.oldest)

    async def newest_event_id(self) -> int | None:
        return await self._edge(self._sql.newest)

    async def wait_events(self, after: int, timeout: float) -> list[tuple[int, str]]:  # noqa: ASYNC109 (spec 12's API)
        return await wait_by_polling(after, timeout, self.events_after, self._poller, self._wakeups)

    async def close(self) -> None:
        """Close the pool; a later call opens a new one."""
        await self._close_pool()
