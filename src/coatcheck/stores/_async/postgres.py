"""PostgreSQL store (``postgresql://user@host:5432/db``): many app processes, one database.

Written once, for asyncio; ``scripts/unasync.py`` generates the synchronous twin.
Operator documentation: ``docs/stores/postgres.md``.

How it keeps the contract in :mod:`coatcheck.stores.base`:

* ``load`` is one prepared ``SELECT`` by primary key, sent straight through libpq (no cursor,
  no query conversion, no row factory): the per-request path. Results are binary, so floats
  and integers arrive exactly; ``data`` travels as text and is decoded with :func:`json.loads`
  (faster than psycopg's jsonb loader).
* ``update`` is one conditional ``UPDATE ... RETURNING version`` that applies the patch with
  jsonb operators against the *current* row, so concurrent patches to different keys both
  survive and a deleted row is never written again. Only when no row matched does a second
  query tell :class:`SessionGone` from :class:`SessionConflict`.
* ``insert`` with a per-user limit runs in one transaction serialised per user by
  ``pg_advisory_xact_lock``; the eviction rule mirrors :func:`choose_evictions` exactly.
* Every server or network failure becomes :class:`StoreUnavailable` naming host and port, with
  the driver's exception chained; programming errors (bad SQL, missing privileges) are not
  disguised. Recovery needs no restart: the pool never retries in the background (it would
  back off for minutes), it connects on demand, and a connection the server has closed is
  noticed without a round trip before it is handed out (see ``_alive``).
* Connections taken from the pool are parked on the store's own idle stack between calls
  (checking one out of psycopg_pool costs more than the query): only a connection that is
  idle and healthy is parked, a stale one is handed back to the pool (which replaces it), and
  each connection returns to the pool at least every ``PARK_SECONDS`` (and whenever a caller
  waits for the pool) so the pool's own upkeep and limits still apply.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import re
import struct
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from time import monotonic
from types import TracebackType
from typing import Any, ClassVar, Self
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg import AsyncConnection, AsyncCursor, pq, sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.generators import execute
from psycopg.pq.abc import PGresult
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, PoolClosed, PoolTimeout

from ...core.errors import (
    ConfigError,
    SessionConflict,
    SessionDataError,
    SessionGone,
    SessionLimitReached,
    StoreUnavailable,
)
from ...core.policy import WritePlan
from ...core.records import (
    SQL_COLUMNS,
    Revocation,
    SessionRecord,
    Tombstone,
    UserLimit,
    decode_value,
    public_id_bytes,
)
from ...core.tokens import KEY_BYTES, SessionKey, TokenCodec, new_token_key
from .. import forks
from ..base import DEFAULT_PURGE_BATCH
from ..pg_reply import reply

DEFAULT_TABLE = "coatcheck_sessions"
DEFAULT_POOL_MIN = 0
DEFAULT_POOL_MAX = 10
DEFAULT_TIMEOUT = 5.0
# A connection parked on the store's idle stack goes back to the pool at least this often.
PARK_SECONDS = 30.0
# Index names are derived from the table name and PostgreSQL cuts identifiers at 63 bytes.
MAX_TABLE_LENGTH = 48
OWN_OPTIONS = ("table", "pool_min", "pool_max", "timeout")

# (name, type) of the columns added after the first release; migrate adds them to older tables.
_ADDED_COLUMNS = (("public_id", "bytea"), ("remember", "boolean NOT NULL DEFAULT false"))
_TABLE_RE = re.compile(r"[a-z_][a-z0-9_]*")
_COLUMNS = SQL_COLUMNS
# Explicit types, so the same placeholders also work in INSERT ... SELECT (no target typing).
_VALUES = (
    "%s::bytea, %s::bytea, %s::text, %s::text, %s::float8, %s::float8, %s::float8, "
    "%s::float8, %s::text, %s::text, %s::jsonb, %s::int8, %s::boolean"
)
_RECORD = (
    "user_id, kind, created_at, last_seen_at, authenticated_at, expires_at, client_ip, "
    "user_agent, data::text, version, remember"
)
_LOAD_NAME = b"coatcheck_load"  # the load statement, prepared once per connection
_BYTEA_OID = 17
_BINARY = pq.Format.BINARY
_IDLE = pq.TransactionStatus.IDLE
_TUPLES_OK = pq.ExecStatus.TUPLES_OK
_UNDEFINED_STATEMENT = b"26000"  # invalid_sql_statement_name: the statement is gone
_SQLSTATE = pq.DiagnosticField.SQLSTATE
_FLOAT8 = struct.Struct(">d").unpack
# Driver errors that mean "the server cannot serve us now": connection refused or lost,
# server shutting down or starting up, timeouts, pool timeouts (PoolTimeout, PoolClosed and
# TooManyRequests are OperationalErrors too), and a read-only server after a failover.
_UNAVAILABLE: tuple[type[Exception], ...] = (
    psycopg.OperationalError,
    psycopg.errors.ReadOnlySqlTransaction,
)
# A server that answers a connection attempt with one of these refuses the settings (user,
# password, database, pg_hba.conf): a ConfigError, since no retry can help. libpq reports no
# SQLSTATE for a failed connection, so its (English) message is all there is to read.
_REFUSED_SETTINGS = re.compile(
    r'(role|database) "[^"]*" does not exist|password authentication failed'
    r"|no pg_hba\.conf entry|no password supplied"
)
# How long a caller waits for the pool before it looks whether a connection attempt failed.
_WAIT_SLICE = 0.05


@dataclass(frozen=True, slots=True)
class PostgresOptions:
    """What a ``postgresql://`` store URL asks for, validated."""

    conninfo: str  # the URL handed to libpq: coatcheck's own options removed
    table: str
    pool_min: int
    pool_max: int
    timeout: float  # seconds to wait for a pooled connection, and to connect
    where: str  # host:port/dbname, for messages (never the password)
    libpq: Mapping[str, str]  # the libpq parameters the URL sets


def parse_url(url: str) -> PostgresOptions:
    """Split a store URL into libpq's conninfo and coatcheck's options, or a ConfigError.

    coatcheck's options are ``table``, ``pool_min``, ``pool_max`` and ``timeout``; any other
    query option must be a libpq connection parameter (``sslmode``, ``application_name``,
    ``connect_timeout``, ``options``, ...) and is passed through.
    """
    if not isinstance(url, str):
        raise ConfigError(f"PostgreSQL store URL must be a string, got {type(url).__name__}")
    try:
        parts = urlsplit(url)
        secret = parts.password
    except ValueError as exc:  # e.g. an unclosed [IPv6 address
        raise ConfigError(f"PostgreSQL store URL is malformed: {exc}") from exc
    if parts.scheme.lower() not in ("postgresql", "postgres"):
        raise ConfigError(
            "PostgreSQL store URL must look like postgresql://user@host:5432/db, "
            f"got scheme {parts.scheme!r}"
        )
    own: dict[str, str] = {}
    passed: list[str] = []
    for piece in parts.query.split("&"):
        if not piece:
            continue
        raw_name, _, raw_value = piece.partition("=")
        name = unquote(raw_name)
        if name not in OWN_OPTIONS:
            passed.append(piece)
        elif name in own:
            raise ConfigError(f"option {name!r} appears twice in the PostgreSQL store URL")
        else:
            own[name] = unquote(raw_value)
    # Rebuilt by hand: urlunsplit() would turn postgresql:///db (Unix socket) into postgresql:/db.
    conninfo = f"postgresql://{parts.netloc}{parts.path}" + (
        f"?{'&'.join(passed)}" if passed else ""
    )
    try:
        libpq = conninfo_to_dict(conninfo)
    except psycopg.Error as exc:
        why = _one_line(exc)
        if secret:  # libpq quotes the offending part, which may be the password
            why = why.replace(secret, "***").replace(unquote(secret), "***")
        raise ConfigError(
            f"PostgreSQL store URL is not valid: {why}; coatcheck's own options are "
            f"{', '.join(OWN_OPTIONS)}, anything else must be a libpq connection parameter "
            "(sslmode, application_name, connect_timeout, ...)"
        ) from exc
    for port in str(libpq.get("port") or "5432").split(","):
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"PostgreSQL store URL has an invalid port {port!r}")
    table = own.get("table", DEFAULT_TABLE)
    if not _TABLE_RE.fullmatch(table) or len(table) > MAX_TABLE_LENGTH:
        raise ConfigError(
            f"option table={table!r} must be a plain lower-case identifier "
            f"([a-z_][a-z0-9_]*, at most {MAX_TABLE_LENGTH} characters)"
        )
    pool_min = _int_option(own, "pool_min", DEFAULT_POOL_MIN, minimum=0)
    pool_max = _int_option(own, "pool_max", max(DEFAULT_POOL_MAX, pool_min), minimum=1)
    if pool_max < pool_min:
        raise ConfigError(f"option pool_max={pool_max} must not be below pool_min={pool_min}")
    timeout = DEFAULT_TIMEOUT
    if "timeout" in own:
        try:
            timeout = float(own["timeout"])
        except ValueError:
            timeout = math.nan
        if not (math.isfinite(timeout) and timeout > 0):
            raise ConfigError(
                f"option timeout={own['timeout']!r} must be a positive number of seconds"
            )
    libpq_str = {k: str(v) for k, v in libpq.items()}
    return PostgresOptions(
        conninfo, table, pool_min, pool_max, timeout, _where(libpq_str), libpq_str
    )


def _int_option(own: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    if name not in own:
        return default
    text = own[name]
    if not re.fullmatch(r"[0-9]+", text) or int(text) < minimum:
        raise ConfigError(f"option {name}={text!r} must be a whole number >= {minimum}")
    return int(text)


def _where(libpq: Mapping[str, str]) -> str:
    hosts = (libpq.get("host") or libpq.get("hostaddr") or "").split(",")
    ports = (libpq.get("port") or "").split(",")
    places = []
    for i, host in enumerate(hosts):
        port = ports[i] if i < len(ports) else ports[-1]
        places.append(f"{host or 'local socket'}:{port or 5432}")
    return ",".join(places) + (f"/{libpq['dbname']}" if libpq.get("dbname") else "")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _lock_key(*parts: str) -> int:
    """A signed 64-bit advisory lock key for one named resource."""
    digest = hashlib.sha256("\0".join(("coatcheck", *parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class _Statements:
    """Every statement the store sends, built once per table (the name is an Identifier)."""

    def __init__(self, table: str) -> None:
        names: dict[str, sql.Composable] = {
            "t": sql.Identifier(table),
            "columns": sql.SQL(_COLUMNS + ", public_id"),
            "values": sql.SQL(_VALUES + ", %s::bytea"),
            "record": sql.SQL(_RECORD),
            "expires_idx": sql.Identifier(f"{table}_expires_idx"),
            "user_idx": sql.Identifier(f"{table}_user_idx"),
            "public_idx": sql.Identifier(f"{table}_public_idx"),
            "meta": sql.Identifier(f"{table}_meta"),
            "tomb": sql.Identifier(f"{table}_tombstones"),
            "tomb_idx": sql.Identifier(f"{table}_tomb_exp_idx"),
        }
        # Ends a delete that leaves tombstones: gone (the deleted rows) -> their tombstones.
        names["buried"] = sql.SQL(
            " RETURNING id, shard, expires_at), tomb AS (INSERT INTO {tomb}"
            " (id, reason, revoked_at, expires_at) SELECT id, %s, %s, expires_at FROM gone"
            " ON CONFLICT (id) DO UPDATE SET reason = excluded.reason,"
            " revoked_at = excluded.revoked_at, expires_at = excluded.expires_at)"
        ).format(tomb=names["tomb"])

        def q(template: str) -> str:
            return sql.SQL(template).format(**names).as_string(None)

        self.schema_names = tuple(
            q(n)
            for n in (
                "{t}",
                "{expires_idx}",
                "{user_idx}",
                "{meta}",
                "{public_idx}",
                "{tomb}",
                "{tomb_idx}",
            )
        )
        # Every table and index, and every added column, is there (else migrate runs).
        self.schema_present = (
            "SELECT (SELECT bool_and(to_regclass(n) IS NOT NULL) FROM unnest(%s::text[]) AS n)"
            " AND (SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass(%s::text)"
            " AND attname = ANY(%s::text[]) AND NOT attisdropped) = %s"
        )
        added = [name for name, _ in _ADDED_COLUMNS]
        self.schema_params = (list(self.schema_names), self.schema_names[0], added, len(added))
        self.lock = "SELECT pg_advisory_xact_lock(%s::int8)"
        self.create = q(
            "CREATE TABLE IF NOT EXISTS {t} ("
            " id bytea PRIMARY KEY,"
            " shard bytea NOT NULL,"
            " user_id text,"
            " kind text NOT NULL,"
            " created_at double precision NOT NULL,"
            " last_seen_at double precision NOT NULL,"
            " authenticated_at double precision NULL,"
            " expires_at double precision NOT NULL,"
            " client_ip text,"
            " user_agent text,"
            " data jsonb NOT NULL,"
            " version bigint NOT NULL,"
            " public_id bytea,"
            " remember boolean NOT NULL DEFAULT false);"
            " CREATE TABLE IF NOT EXISTS {meta} (name text PRIMARY KEY, value bytea NOT NULL);"
            " CREATE TABLE IF NOT EXISTS {tomb} (id bytea PRIMARY KEY, reason text NOT NULL,"
            " revoked_at double precision NOT NULL, expires_at double precision NOT NULL)"
        )
        # Columns added after the first release: a table made by an older version gets them
        # before any index is made (ALTER TABLE takes the strongest lock: asked for first,
        # it waits for running requests instead of deadlocking with them).
        self.columns = "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s::text)"
        self.add_columns = {
            name: q(f"ALTER TABLE {{t}} ADD COLUMN IF NOT EXISTS {name} {kind}")
            for name, kind in _ADDED_COLUMNS
        }
        self.create_indexes = q(
            "CREATE INDEX IF NOT EXISTS {expires_idx} ON {t} (expires_at);"
            " CREATE INDEX IF NOT EXISTS {user_idx} ON {t} (user_id, created_at)"
            " WHERE user_id IS NOT NULL;"
            " CREATE INDEX IF NOT EXISTS {public_idx} ON {t} (public_id);"
            " CREATE INDEX IF NOT EXISTS {tomb_idx} ON {tomb} (expires_at)"
        )
        # Rows written before the public_id column existed get theirs, in batches.
        self.missing_public_ids = q("SELECT id, shard FROM {t} WHERE public_id IS NULL LIMIT %s")
        self.set_public_ids = q(
            "UPDATE {t} SET public_id = u.p FROM unnest(%s::bytea[], %s::bytea[]) AS u(i, p) "
            "WHERE {t}.id = u.i"
        )
        # The store's token key: the first process to need one inserts it, every one reads.
        self.token_key = q("SELECT value FROM {meta} WHERE name = 'token_key'")
        self.token_key_insert = q(
            "INSERT INTO {meta} (name, value) VALUES ('token_key', %s) ON CONFLICT (name) "
            "DO NOTHING"
        )
        self.load = q("SELECT {record} FROM {t} WHERE id = $1").encode()
        self.load_many = q("SELECT id, shard, {record} FROM {t} WHERE id = ANY(%s::bytea[])")
        self.insert = q("INSERT INTO {t} ({columns}) VALUES ({values})")
        # Rotation without a limit: one statement, nothing happens unless the old row existed.
        self.insert_replacing = q(
            "WITH gone AS (DELETE FROM {t} WHERE id = %s RETURNING id) "
            "INSERT INTO {t} ({columns}) SELECT {values} FROM gone"
        )
        self.insert_evicting = q(
            "WITH gone AS (DELETE FROM {t} WHERE id = ANY(%s::bytea[]){buried}"
            " INSERT INTO {t} ({columns}) VALUES ({values})"
        )
        self.live_browser_ids = q(
            "SELECT id FROM {t} WHERE user_id = %s AND kind = 'browser' AND expires_at > %s "
            "ORDER BY created_at, id"
        )
        self.update = q(
            "UPDATE {t} SET last_seen_at = %s, expires_at = %s, version = version + 1 "
            "WHERE id = %s RETURNING version"
        )
        self.update_checked = q(
            "UPDATE {t} SET last_seen_at = %s, expires_at = %s, version = version + 1 "
            "WHERE id = %s AND version = %s::int8 RETURNING version"
        )
        self.update_patch = q(
            "UPDATE {t} SET data = (data - %s::text[]) || %s::jsonb, last_seen_at = %s, "
            "expires_at = %s, version = version + 1 WHERE id = %s RETURNING version"
        )
        self.update_patch_checked = q(
            "UPDATE {t} SET data = (data - %s::text[]) || %s::jsonb, last_seen_at = %s, "
            "expires_at = %s, version = version + 1 WHERE id = %s AND version = %s::int8 "
            "RETURNING version"
        )
        self.version_of = q("SELECT version FROM {t} WHERE id = %s")
        self.delete = q("DELETE FROM {t} WHERE id = %s")
        self.delete_public = q(
            "DELETE FROM {t} WHERE id = (SELECT id FROM {t} WHERE public_id = %s AND "
            "(%s::text IS NULL OR user_id = %s::text) LIMIT 1) RETURNING id, shard"
        )
        self.delete_user = q("DELETE FROM {t} WHERE user_id = %s")
        self.delete_user_keep = q("DELETE FROM {t} WHERE user_id = %s AND id <> %s")
        # The same, leaving tombstones: parameters (where ..., reason, at); rows (id, shard).
        self.bury = q("WITH gone AS (DELETE FROM {t} WHERE id = %s{buried} SELECT 1 FROM gone")
        self.bury_public = q(
            "WITH gone AS (DELETE FROM {t} WHERE id = (SELECT id FROM {t} WHERE public_id = %s"
            " AND (%s::text IS NULL OR user_id = %s::text) LIMIT 1){buried}"
            " SELECT id, shard FROM gone"
        )
        self.bury_user = q(
            "WITH gone AS (DELETE FROM {t} WHERE user_id = %s AND id <> %s{buried}"
            " SELECT 1 FROM gone"
        )
        self.tombstone = q("SELECT reason, revoked_at, expires_at FROM {tomb} WHERE id = %s")
        self.purge_tombstones = q(
            "DELETE FROM {tomb} WHERE id IN (SELECT id FROM {tomb} WHERE expires_at <= %s LIMIT %s)"
        )
        self.delete_all = q("DELETE FROM {t}")
        self.list_user = q(
            "SELECT id, shard, {record} FROM {t} WHERE user_id = %s AND expires_at > %s "
            "ORDER BY created_at, id"
        )
        # The outer condition is re-checked on the newest row version, so a session that a
        # concurrent touch just extended is not purged; SKIP LOCKED lets purgers run side by side.
        self.purge = q(
            "DELETE FROM {t} WHERE id IN (SELECT id FROM {t} WHERE expires_at <= %s "
            "LIMIT %s FOR UPDATE SKIP LOCKED) AND expires_at <= %s"
        )
        self.count_active = q(
            "SELECT count(*) FROM {t} WHERE last_seen_at >= %s AND expires_at > %s"
        )


class _Health:
    """Why the last connection attempt failed (None after a success), for error messages,
    and how many have failed (a caller waiting for the pool stops when this moves)."""

    __slots__ = ("failures", "last_error")

    def __init__(self) -> None:
        self.last_error: psycopg.Error | None = None
        self.failures = 0


class _Connection(AsyncConnection[TupleRow]):
    """A pooled connection that reports connect failures and keeps one cursor for reuse.

    psycopg's pool swallows connect errors (it only logs them), yet they are what an operator
    needs to read in :class:`StoreUnavailable`. A new cursor per statement copies the adapter
    map, a measurable share of a primary-key lookup, so each connection keeps one.
    """

    health: ClassVar[_Health]  # set on the per-store subclass, see _connection_class
    _coatcheck_cursor: AsyncCursor[TupleRow] | None = None
    # Set when the store takes the connection out of its pool:
    home: AsyncConnectionPool[_Connection] | None = None  # the pool it must go back to
    park_until = 0.0  # after this (monotonic) moment it goes back to the pool
    # Set when the load statement is prepared on this connection:
    load_prepared = False
    text_encoding = "utf-8"  # Python's name for the connection's client_encoding

    @classmethod
    async def connect(cls, conninfo: str = "", **kwargs: Any) -> Self:
        try:
            conn = await super().connect(conninfo, **kwargs)
        except psycopg.Error as exc:
            cls.health.last_error = exc
            cls.health.failures += 1
            raise
        cls.health.last_error = None
        return conn

    def reusable_cursor(self) -> AsyncCursor[TupleRow]:
        cur = self._coatcheck_cursor
        if cur is None or cur.closed:
            cur = self._coatcheck_cursor = self.cursor()
        return cur


def _connection_class(health: _Health) -> type[_Connection]:
    class StoreConnection(_Connection):
        pass

    StoreConnection.health = health
    return StoreConnection


class _Lease:
    """One connection (as its cursor) for one operation.

    Driver failures inside the block become :class:`StoreUnavailable`; other errors (bad
    SQL, missing privileges, the contract's own errors) pass through unchanged. A class
    rather than a generator-based context manager: this runs on every call.
    """

    __slots__ = ("conn", "ensure_schema", "store")

    def __init__(self, store: AsyncPostgresStore, ensure_schema: bool) -> None:
        self.store = store
        self.ensure_schema = ensure_schema

    async def __aenter__(self) -> AsyncCursor[TupleRow]:
        store = self.store
        conn = self.conn = await store._checkout()
        cur = conn.reusable_cursor()
        if self.ensure_schema and not store._schema_ready:
            try:
                await store._ensure_schema(cur, force=False)
            except BaseException as exc:
                await self.__aexit__(type(exc), exc, exc.__traceback__)
                raise
        return cur

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn = self.conn
        await self.store._checkin(conn)
        self.store._raise_if_unavailable(exc, conn)


class _Waiter:
    """A caller waiting for a finished call to hand over its connection (or a turn at the pool).

    The hand-over happens under the store's lock; ``given`` tells whether it happened, so a
    caller that stops waiting (timeout, cancellation) knows whether something is now its own.
    """

    __slots__ = ("conn", "done", "given")

    def __init__(self) -> None:
        self.conn: _Connection | None = None
        self.given = False
        self.done = asyncio.Future[None]()  # unasync: self.done = threading.Event()

    def give(self, conn: _Connection | None) -> None:
        self.conn, self.given = conn, True
        if not self.done.done():  # unasync: if True:
            self.done.set_result(None)  # unasync: self.done.set()

    async def wait(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.done, seconds)  # unasync: self.done.wait(seconds)


def _alive(conn: _Connection) -> bool:
    """False if the server has closed ``conn`` (restart, failover, idle kill) or it is not idle.

    Reading what the socket already holds costs no round trip: an idle connection has nothing
    to read unless the server said goodbye. The second read sees the end of the stream when the
    first one only got the server's farewell message.
    """
    pgconn = conn.pgconn
    try:
        pgconn.consume_input()
        pgconn.consume_input()
    except psycopg.OperationalError:
        return False
    return pgconn.transaction_status == _IDLE


class AsyncPostgresStore:
    """Sessions in one PostgreSQL table, reached through a connection pool.

    Nothing connects until the first call (the pool is opened lazily, inside the running
    event loop for the async API); the first call also creates the table if it is missing.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.options = parse_url(url)
        self._sql = _Statements(self.options.table)
        self._migrate_key = _lock_key("migrate", self.options.table)
        self._health = _Health()
        self._connection_class = _connection_class(self._health)
        self._lock = threading.Lock()
        self._pool: AsyncConnectionPool[_Connection] | None = None
        self._open_pool: AsyncConnectionPool[_Connection] | None = None
        # The store is its pool's only client; between calls it keeps the connections it took
        # (see _checkout/_checkin). All three are guarded by _lock.
        self._idle: list[_Connection] = []  # parked: idle, most recently used last
        self._out = 0  # connections of the current pool the store holds (in use or parked)
        self._waiters: deque[_Waiter] = deque()  # callers waiting while _out == pool_max
        self._loop: Any = None  # the event loop the pool belongs to
        self._schema_ready = False
        self._token_key: bytes | None = None
        forks.forget_in_child(self)

    def forget_inherited(self) -> None:
        """In a forked child: the pool and its connections are the parent's. They are never
        used here; their sockets are detached first (:func:`forks.detach_socket`), so that
        closing them cannot end the parent's sessions with the server."""
        pool, idle = self._pool, self._idle
        for conn in [*idle, *getattr(pool, "_pool", ())]:  # psycopg_pool keeps its idle here
            with contextlib.suppress(Exception):  # a connection already closed has no socket
                forks.detach_socket(conn.pgconn.socket)
        forks.keep((pool, idle))
        self._lock = threading.Lock()  # another thread may have held it at the fork
        self._pool = self._open_pool = None
        self._idle, self._out, self._waiters = [], 0, deque()
        self._loop = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.options.where} table={self.options.table}>"

    # --- connections and failures ---------------------------------------------------------

    def _lease(self, *, ensure_schema: bool = True) -> _Lease:
        return _Lease(self, ensure_schema)

    async def _get_pool(self) -> AsyncConnectionPool[_Connection]:
        loop = asyncio.get_running_loop()  # unasync: loop = None
        with self._lock:
            pool = self._pool
            if pool is not None and self._loop is not loop:
                if not self._loop.is_closed():
                    raise RuntimeError(
                        f"{self!r} is already in use in another event loop: its connection "
                        "pool belongs to the loop it was first used in; close() it there first"
                    )
                # The loop that ran the old pool's workers is gone: start afresh in this one
                # (the old pool's idle connections are closed when it is collected).
                pool = self._pool = self._open_pool = None
                self._idle, self._out, self._waiters = [], 0, deque()
            if pool is None:
                self._loop = loop
                opts = self.options
                kwargs: dict[str, Any] = {"autocommit": True}
                if "connect_timeout" not in opts.libpq:
                    kwargs["connect_timeout"] = max(1, math.ceil(opts.timeout))
                pool = self._pool = AsyncConnectionPool(
                    opts.conninfo,
                    connection_class=self._connection_class,
                    kwargs=kwargs,
                    min_size=opts.pool_min,
                    max_size=opts.pool_max,
                    open=False,
                    check=self._check,
                    name=f"coatcheck {opts.where}",
                    timeout=opts.timeout,
                    # Never keep retrying in the background with exponential backoff: a slot
                    # that cannot connect is dropped at once and the pool connects again when
                    # a caller asks, so the first call after an outage succeeds.
                    reconnect_timeout=0,
                )
        await pool.open()  # idempotent; spawns the pool's workers, connects in the background
        self._open_pool = pool
        return pool

    async def _check(self, conn: _Connection) -> None:
        """Refuse a pooled connection the server has closed (see :func:`_alive`)."""
        if not _alive(conn):
            # After a restart every idle connection is dead: test them all now, or the caller
            # would walk through them one by one with the pool's growing back-off.
            pool = self._pool
            if pool is not None:
                await pool.check()
            raise psycopg.OperationalError("the server closed the connection")

    async def _checkout(self) -> _Connection:
        """A healthy idle connection: the most recently parked one, one that a finished call
        hands over, or one from the pool (never more than ``pool_max`` out at once)."""
        pool = self._open_pool
        moved = self._loop is not asyncio.get_running_loop()  # unasync: moved = False
        if pool is None or moved:
            pool = await self._get_pool()
        idle = self._idle
        while True:
            waiter = None
            with self._lock:
                if idle:
                    conn = idle.pop()
                elif self._out < self.options.pool_max:
                    self._out += 1
                    break
                else:
                    waiter = _Waiter()
                    self._waiters.append(waiter)
            if waiter is not None:
                handed = await self._wait(waiter)
                if handed is None:
                    break  # a connection went back to the pool: our turn to take one
                return handed  # straight from a finished call, idle
            if _alive(conn):
                return conn
            await self._discard(conn)  # the pool closes it and connects anew when asked
        try:
            conn = await self._getconn(pool)
        except BaseException as exc:
            if pool is self._open_pool:
                self._release_slot()
            if isinstance(exc, psycopg.OperationalError):  # PoolTimeout, PoolClosed, ...
                raise self._unavailable(exc) from exc
            raise
        conn.home = pool
        conn.park_until = monotonic() + PARK_SECONDS
        return conn

    async def _getconn(self, pool: AsyncConnectionPool[_Connection]) -> _Connection:
        """``pool.getconn()``, except that a connection attempt failing meanwhile ends the wait.

        The pool only logs a failed attempt and lets its caller wait out the whole timeout,
        for a server that refused the connection or a role that does not exist; so the wait
        is cut into short slices and the store's own count of failed attempts is read
        between them.
        """
        health = self._health
        failures = health.failures
        deadline = monotonic() + self.options.timeout
        while True:
            try:
                return await pool.getconn(min(_WAIT_SLICE, max(deadline - monotonic(), 1e-3)))
            except PoolTimeout:
                last = health.last_error
                if health.failures != failures and last is not None:
                    raise self._unavailable(last) from last
                if monotonic() >= deadline:
                    raise

    async def _wait(self, waiter: _Waiter) -> _Connection | None:
        """What a finished call hands ``waiter``: a connection, or None (take one from the
        pool); StoreUnavailable after ``timeout`` seconds, as the pool would."""
        try:
            await waiter.wait(self.options.timeout)
        except BaseException:  # cancelled: pass on whatever arrived meanwhile
            with self._lock:
                if not waiter.given:
                    self._waiters.remove(waiter)
                    raise
            if waiter.conn is not None:
                await self._checkin(waiter.conn)
            else:
                self._release_slot()
            raise
        with self._lock:
            if not waiter.given:
                self._waiters.remove(waiter)
                busy = PoolTimeout(f"no connection within {self.options.timeout:g} s")
                raise self._unavailable(busy)
        return waiter.conn

    def _release_slot(self) -> None:
        """One connection fewer out of the pool: a waiting caller may now take one from it."""
        with self._lock:
            if self._waiters:
                self._waiters.popleft().give(None)
            else:
                self._out -= 1

    async def _checkin(self, conn: _Connection) -> None:
        """Hand ``conn`` to a waiting caller or park it if it is idle and its pool is still
        ours, else give it back to the pool."""
        if conn.home is self._open_pool:
            now = monotonic()
            if now < conn.park_until and conn.pgconn.transaction_status == _IDLE:
                with self._lock:
                    if self._waiters:
                        self._waiters.popleft().give(conn)
                        return
                    idle = self._idle
                    idle.append(conn)
                    # The least recently used one may have been out for too long.
                    if idle[0].park_until > now:
                        return
                    conn = idle.pop(0)
        await self._discard(conn)

    async def _discard(self, conn: _Connection) -> None:
        """Give ``conn`` back to its pool, which resets or replaces one that is not idle."""
        pool = conn.home
        if pool is None:
            return
        try:
            await pool.putconn(conn)
        finally:
            if pool is self._open_pool:
                self._release_slot()

    def _raise_if_unavailable(self, exc: BaseException | None, conn: _Connection) -> None:
        """StoreUnavailable for a driver failure of the server or the way to it (or one that
        closed ``conn``); anything else is left for the caller to raise unchanged."""
        if isinstance(exc, psycopg.Error) and (isinstance(exc, _UNAVAILABLE) or conn.closed):
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: BaseException) -> StoreUnavailable | ConfigError:
        opts = self.options
        last = self._health.last_error
        refusal = last if isinstance(exc, PoolTimeout) else exc
        if refusal is not None and _REFUSED_SETTINGS.search(str(refusal)):
            return ConfigError(
                f"PostgreSQL at {opts.where} refused the connection: {_one_line(refusal)}"
            )
        if isinstance(exc, PoolTimeout):
            why = f"no connection within {opts.timeout:g} s"
            if last is not None:
                why += f"; last connection attempt: {_one_line(last)}"
            else:
                why += f" (all {opts.pool_max} pooled connections busy?)"
        elif isinstance(exc, PoolClosed):
            why = "the store was closed while in use"
        else:
            why = _one_line(exc)
        return StoreUnavailable(f"PostgreSQL at {opts.where} is unavailable: {why}")

    # --- schema ---------------------------------------------------------------------------

    async def _ensure_schema(self, cur: AsyncCursor[TupleRow], *, force: bool) -> None:
        if not force:
            await cur.execute(self._sql.schema_present, self._sql.schema_params)
            row = await cur.fetchone()
            if row is not None and row[0]:
                self._schema_ready = True
                return
        # The advisory lock makes concurrent migrations (several processes starting at once)
        # wait for each other: CREATE ... IF NOT EXISTS alone can still collide.
        async with cur.connection.transaction():
            await cur.execute(self._sql.lock, (self._migrate_key,))
            await cur.execute(self._sql.create)
            await cur.execute(self._sql.columns, self._sql.schema_names[:1])
            have = {row[0] for row in await cur.fetchall()}
            for name, statement in self._sql.add_columns.items():
                if name not in have:
                    await cur.execute(statement)
            await cur.execute(self._sql.create_indexes)
            while True:
                await cur.execute(self._sql.missing_public_ids, (DEFAULT_PURGE_BATCH,))
                rows = await cur.fetchall()
                if not rows:
                    break
                keys = [SessionKey(bytes(shard), bytes(digest)) for digest, shard in rows]
                await cur.execute(
                    self._sql.set_public_ids,
                    ([k.digest for k in keys], [public_id_bytes(k) for k in keys]),
                )
        self._schema_ready = True

    async def migrate(self) -> None:
        """Create the table and its indexes if missing (idempotent, safe to run concurrently)."""
        async with self._lease(ensure_schema=False) as cur:
            await self._ensure_schema(cur, force=True)
        await self.token_key()

    async def token_key(self) -> bytes:
        """Read once per store object. Each statement commits on its own, so the read after an
        ``INSERT ... ON CONFLICT DO NOTHING`` sees whichever process's key won."""
        key = self._token_key
        if key is None:
            async with self._lease() as cur:
                await cur.execute(self._sql.token_key)
                row = await cur.fetchone()
                if row is None:
                    await cur.execute(self._sql.token_key_insert, (new_token_key(),))
                    await cur.execute(self._sql.token_key)
                    row = await cur.fetchone()
            key = bytes(row[0]) if row is not None else b""
            if len(key) != KEY_BYTES:
                raise ConfigError(
                    f"PostgreSQL at {self.options.where}: {self.options.table}_meta holds a "
                    f"token key of {len(key)} bytes, not {KEY_BYTES}"
                )
            self._token_key = key
        return key

    def use_tokens(self, tokens: TokenCodec) -> None:
        return None  # records are found by digest alone

    # --- the contract ---------------------------------------------------------------------

    async def load(self, key: SessionKey) -> SessionRecord | None:
        conn = await self._checkout()
        try:
            if not self._schema_ready:
                await self._ensure_schema(conn.reusable_cursor(), force=False)
            res = await self._query_load(conn, key.digest)
        except BaseException as exc:
            await self._checkin(conn)
            self._raise_if_unavailable(exc, conn)
            raise
        await self._checkin(conn)
        if not res.ntuples:
            return None
        return _decode_record(key, res, conn.text_encoding)

    async def load_many(self, keys: Sequence[SessionKey]) -> list[SessionRecord | None]:
        if not keys:
            return []
        wanted = list(dict.fromkeys(key.digest for key in keys))
        async with self._lease() as cur:
            await cur.execute(self._sql.load_many, (wanted,), binary=True)
            rows = {bytes(row[0]): row for row in await cur.fetchall()}
        found = [rows.get(key.digest) for key in keys]
        return [None if row is None else SessionRecord.from_row(row) for row in found]

    async def _query_load(self, conn: _Connection, digest: bytes) -> PGresult:
        """The load statement's result for ``digest`` (binary columns in _RECORD order)."""
        if not conn.load_prepared:
            await self._prepare_load(conn)
        res = await self._send_load(conn, digest)
        if res.status == _TUPLES_OK:
            return res
        if res.error_field(_SQLSTATE) == _UNDEFINED_STATEMENT:
            # Deallocated behind our back (DISCARD ALL, a pooler): prepare again, once.
            conn.load_prepared = False
            await self._prepare_load(conn)
            res = await self._send_load(conn, digest)
            if res.status == _TUPLES_OK:
                return res
        raise psycopg.errors.error_from_result(res, encoding=conn.text_encoding)

    async def _send_load(self, conn: _Connection, digest: bytes) -> PGresult:
        pgconn = conn.pgconn
        pgconn.send_query_prepared(
            _LOAD_NAME, (digest,), param_formats=(_BINARY,), result_format=_BINARY
        )
        return await reply(conn, self._loop)  # unasync: return _last(conn.wait(execute(pgconn)))

    async def _prepare_load(self, conn: _Connection) -> None:
        pgconn = conn.pgconn
        conn.text_encoding = conn.info.encoding
        pgconn.send_prepare(_LOAD_NAME, self._sql.load, param_types=(_BYTEA_OID,))
        res = _last(await conn.wait(execute(pgconn)))
        if res.status != pq.ExecStatus.COMMAND_OK:
            raise psycopg.errors.error_from_result(res, encoding=conn.text_encoding)
        conn.load_prepared = True

    async def insert(
        self,
        record: SessionRecord,
        *,
        replaces: SessionKey | None = None,
        limit: UserLimit | None = None,
    ) -> list[bytes]:
        values = (*record.row(), public_id_bytes(record.key))
        try:
            if limit is None or record.kind != "browser" or record.user_id is None:
                async with self._lease() as cur:
                    if replaces is None:
                        await cur.execute(self._sql.insert, values)
                        return []
                    await cur.execute(self._sql.insert_replacing, (replaces.digest, *values))
                    if cur.rowcount == 0:
                        raise SessionGone("the session being replaced no longer exists")
                    return []
            async with self._lease() as cur, cur.connection.transaction():
                return await self._insert_limited(cur, record, values, replaces, limit)
        except (psycopg.DataError, UnicodeEncodeError) as exc:
            error = _data_error(record)
            if error is None:
                raise
            raise error from exc

    async def _insert_limited(
        self,
        cur: AsyncCursor[TupleRow],
        record: SessionRecord,
        values: tuple[Any, ...],
        replaces: SessionKey | None,
        limit: UserLimit,
    ) -> list[bytes]:
        """Rotation plus the per-user limit, inside the caller's transaction.

        The per-user advisory lock serialises concurrent logins of one user, so two of them
        cannot both see room for one more session. Raising rolls everything back.
        """
        assert record.user_id is not None
        await cur.execute(self._sql.lock, (_lock_key("user", self.options.table, record.user_id),))
        if replaces is not None:
            await cur.execute(self._sql.delete, (replaces.digest,))
            if cur.rowcount == 0:
                raise SessionGone("the session being replaced no longer exists")
        # Same rule as choose_evictions: browser sessions live at the moment of this write
        # (the new record's last_seen_at; a rotation keeps an older created_at), oldest first
        # by (created_at, id); the replaced one is already gone.
        await cur.execute(self._sql.live_browser_ids, (record.user_id, record.last_seen_at))
        live = [bytes(row[0]) for row in await cur.fetchall()]
        excess = len(live) - limit.max_sessions + 1
        if excess <= 0:
            await cur.execute(self._sql.insert, values)
            return []
        if limit.refuse:
            raise SessionLimitReached(
                f"user {record.user_id!r} already has {limit.max_sessions} browser session(s)"
            )
        evicted = live[:excess]
        await cur.execute(self._sql.insert_evicting, (evicted, *_eviction(record), *values))
        return evicted

    async def update(
        self, key: SessionKey, plan: WritePlan, *, expected_version: int | None = None
    ) -> int:
        patch = plan.patch
        params: list[Any] = [plan.last_seen_at, plan.expires_at, key.digest]
        if patch:
            params[:0] = [list(patch.delete), _json_object(patch.set)]
            query = self._sql.update_patch
            if expected_version is not None:
                query = self._sql.update_patch_checked
        else:
            query = self._sql.update if expected_version is None else self._sql.update_checked
        if expected_version is not None:
            params.append(expected_version)
        try:
            async with self._lease() as cur:
                await cur.execute(query, params, prepare=True)
                row = await cur.fetchone()
                if row is not None:
                    return int(row[0])
                # Nothing matched: tell "deleted" from "changed meanwhile" (rare path).
                await cur.execute(self._sql.version_of, (key.digest,))
                found = await cur.fetchone()
        except (psycopg.DataError, UnicodeEncodeError) as exc:
            error = _patch_error(patch.set)
            if error is None:
                raise
            raise error from exc
        if found is None or expected_version is None:
            raise SessionGone("the session no longer exists")
        raise SessionConflict(
            f"session changed concurrently (version {found[0]}, expected {expected_version})"
        )

    async def delete(self, key: SessionKey, *, revoked: Revocation | None = None) -> bool:
        async with self._lease() as cur:
            if revoked is None:
                await cur.execute(self._sql.delete, (key.digest,), prepare=True)
            else:
                await cur.execute(self._sql.bury, (key.digest, revoked.reason, revoked.at))
            return cur.rowcount > 0

    async def delete_by_public_id(
        self,
        public_id: bytes,
        *,
        user_id: str | None = None,
        revoked: Revocation | None = None,
    ) -> SessionKey | None:
        async with self._lease() as cur:
            if revoked is None:
                await cur.execute(self._sql.delete_public, (public_id, user_id, user_id))
            else:
                await cur.execute(
                    self._sql.bury_public,
                    (public_id, user_id, user_id, revoked.reason, revoked.at),
                )
            row = await cur.fetchone()
        return None if row is None else SessionKey(bytes(row[1]), bytes(row[0]))

    async def delete_user(
        self,
        user_id: str,
        *,
        keep: SessionKey | None = None,
        revoked: Revocation | None = None,
    ) -> int:
        async with self._lease() as cur:
            if revoked is not None:
                kept = keep.digest if keep is not None else b""  # no digest is empty
                await cur.execute(self._sql.bury_user, (user_id, kept, revoked.reason, revoked.at))
            elif keep is None:
                await cur.execute(self._sql.delete_user, (user_id,))
            else:
                await cur.execute(self._sql.delete_user_keep, (user_id, keep.digest))
            return cur.rowcount

    async def tombstone(self, key: SessionKey) -> Tombstone | None:
        async with self._lease() as cur:
            await cur.execute(self._sql.tombstone, (key.digest,))
            row = await cur.fetchone()
        return None if row is None else Tombstone(row[0], row[1], row[2])

    async def delete_all(self) -> int:
        async with self._lease() as cur:
            await cur.execute(self._sql.delete_all)
            return cur.rowcount

    async def list_user(self, user_id: str, now: float) -> list[SessionRecord]:
        async with self._lease() as cur:
            await cur.execute(self._sql.list_user, (user_id, now), binary=True)
            rows = await cur.fetchall()
        return [SessionRecord.from_row(row) for row in rows]

    async def purge_expired(self, now: float, *, batch_size: int = DEFAULT_PURGE_BATCH) -> int:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size!r}")
        total = 0
        while True:
            # Each batch is its own short transaction (autocommit): no long-held locks.
            async with self._lease() as cur:
                await cur.execute(self._sql.purge, (now, batch_size, now))
                deleted = cur.rowcount
            total += deleted
            if deleted < batch_size:
                break
        while True:
            async with self._lease() as cur:
                await cur.execute(self._sql.purge_tombstones, (now, batch_size))
                if cur.rowcount < batch_size:
                    return total

    async def count_active(self, since: float, now: float) -> int:
        async with self._lease() as cur:
            await cur.execute(self._sql.count_active, (since, now))
            row = await cur.fetchone()
        return int(row[0]) if row is not None else 0

    async def close(self) -> None:
        """Close the pool; a later call opens a new one."""
        with self._lock:
            pool, self._pool, self._open_pool = self._pool, None, None
            loop, self._loop = self._loop, None
            idle, self._idle, self._out = self._idle, [], 0
            waiters, self._waiters = self._waiters, deque()
            for waiter in waiters:  # they find the pool closed: StoreUnavailable
                waiter.give(None)
        # A pool can only be closed in its own event loop; if that one is gone, so is the pool.
        here = loop is asyncio.get_running_loop()  # unasync: here = True
        if pool is not None and here:
            for conn in idle:
                await pool.putconn(conn)
            await pool.close()


def _eviction(record: SessionRecord) -> tuple[str, float]:
    """The tombstone parameters (reason, at) of the sessions a new record evicts."""
    return "limit_eviction", record.last_seen_at


def _last(results: list[PGresult]) -> PGresult:
    return results[-1]


def _decode_record(key: SessionKey, res: PGresult, encoding: str) -> SessionRecord:
    """The record in the load statement's first row (binary columns in _RECORD order)."""
    value = res.get_value
    user_id = value(0, 0)
    authenticated_at = value(0, 4)
    client_ip = value(0, 6)
    user_agent = value(0, 7)
    return SessionRecord(
        key,
        None if user_id is None else user_id.decode(encoding),
        value(0, 1).decode(encoding),  # type: ignore[union-attr, arg-type]
        _FLOAT8(value(0, 2))[0],  # type: ignore[arg-type]
        _FLOAT8(value(0, 3))[0],  # type: ignore[arg-type]
        None if authenticated_at is None else _FLOAT8(authenticated_at)[0],
        _FLOAT8(value(0, 5))[0],  # type: ignore[arg-type]
        None if client_ip is None else client_ip.decode(encoding),
        None if user_agent is None else user_agent.decode(encoding),
        decode_value(value(0, 8).decode(encoding)),  # type: ignore[union-attr]
        int.from_bytes(value(0, 9), "big", signed=True),  # type: ignore[arg-type]
        value(0, 10) == b"\x01",
    )


def _json_object(values: Mapping[str, str]) -> str:
    """A JSON object from values that are already JSON text: nothing is decoded again."""
    return "{" + ",".join([f"{json.dumps(k)}:{v}" for k, v in values.items()]) + "}"


def _bad_text(text: str) -> bool:
    if "\0" in text:
        return True
    try:
        text.encode()
    except UnicodeEncodeError:  # an unpaired surrogate, e.g. from json.loads('"\\ud800"')
        return True
    return False


def _unstorable(value: Any) -> bool:
    """True if ``value`` holds text PostgreSQL cannot store: NUL, or an unpaired surrogate."""
    if isinstance(value, str):
        return _bad_text(value)
    if isinstance(value, dict):
        return any(_unstorable(k) or _unstorable(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_unstorable(v) for v in value)
    return False


_REFUSED = "PostgreSQL cannot store the character U+0000 (NUL) or unpaired surrogates"


def _data_error(record: SessionRecord) -> SessionDataError | None:
    """The clear error for a record PostgreSQL refused because of its text, else None."""
    fields = [
        name
        for name, value in (
            ("user_id", record.user_id),
            ("client_ip", record.client_ip),
            ("user_agent", record.user_agent),
        )
        if _unstorable(value)
    ]
    keys = [k for k, v in record.data.items() if _unstorable(k) or _unstorable(v)]
    if not fields and not keys:
        return None
    what = ", ".join([*fields, *(f"session key {k!r}" for k in keys)])
    return SessionDataError(f"{_REFUSED}; found in {what}; nothing was written")


def _patch_error(values: Mapping[str, str]) -> SessionDataError | None:
    keys = [k for k, v in values.items() if _unstorable(k) or _unstorable(json.loads(v))]
    if not keys:
        return None
    names = ", ".join(repr(k) for k in keys)
    return SessionDataError(f"{_REFUSED}; found in session key(s) {names}; nothing was written")
