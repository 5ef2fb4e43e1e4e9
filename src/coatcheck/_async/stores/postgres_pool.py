"""The PostgreSQL store's connections: psycopg_pool's pool, and the store's own idle stack.

Only psycopg_pool's documented API is used (``getconn``/``putconn``, ``check``, ``open``, the
``check`` and ``connection_class`` parameters):

* Connections taken from the pool are parked on the store's own idle stack between calls
  (checking one out of psycopg_pool costs more than the query): only a connection that is
  idle and healthy is parked, a stale one is handed back to the pool (which replaces it), and
  each connection returns to the pool at least every ``PARK_SECONDS`` (and whenever a caller
  waits for the pool) so the pool's own upkeep and limits still apply.
* Recovery needs no restart: the pool never retries in the background (it would back off for
  minutes), it connects on demand, and a connection the server has closed is noticed without
  a round trip before it is handed out (see :func:`alive`).
* A refused connection or refused settings end a caller's wait at once (the pool only logs
  a failed attempt): the connection class (``postgres_connection.py``) records each attempt.
"""

from __future__ import annotations

import contextlib
import math
import threading
import weakref
from collections import deque
from time import monotonic
from types import TracebackType
from typing import Any

import psycopg
from psycopg import AsyncCursor, pq
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ...core.errors import ConfigError, StoreUnavailable
from ...stores import forks
from ...stores.postgres.backend import AsyncBackend, AsyncSignal
from ...stores.postgres.failures import Health, described, is_outage
from ...stores.postgres.url import PostgresOptions
from .postgres_connection import PooledConnection, alive, connection_class

# A connection parked on the store's idle stack goes back to the pool at least this often.
PARK_SECONDS = 30.0
# How long a caller waits for the pool before it looks whether a connection attempt failed.
_WAIT_SLICE = 0.05
_IDLE = pq.TransactionStatus.IDLE


class Lease:
    """One connection (as its cursor) for one operation.

    Driver failures inside the block become :class:`StoreUnavailable`; other errors (bad
    SQL, missing privileges, the contract's own errors) pass through unchanged. A class
    rather than a generator-based context manager: this runs on every call.
    """

    __slots__ = ("conn", "ensure_schema", "owner")

    def __init__(self, owner: AsyncPostgresConnections, ensure_schema: bool) -> None:
        self.owner = owner
        self.ensure_schema = ensure_schema

    async def __aenter__(self) -> AsyncCursor[TupleRow]:
        owner = self.owner
        conn = self.conn = await owner._checkout()
        cur = conn.reusable_cursor()
        if self.ensure_schema and not owner._schema_ready:
            try:
                await owner._ensure_schema(cur, force=False)
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
        await self.owner._checkin(conn)
        self.owner._raise_if_unavailable(exc, conn)


class _Waiter:
    """A caller waiting for a finished call to hand over its connection (or a turn at the pool).

    The hand-over happens under the store's lock; ``given`` tells whether it happened, so a
    caller that stops waiting (timeout, cancellation) knows whether something is now its own.
    """

    __slots__ = ("conn", "done", "given")

    def __init__(self) -> None:
        self.conn: PooledConnection | None = None
        self.given = False
        self.done = AsyncSignal()

    def give(self, conn: PooledConnection | None) -> None:
        self.conn, self.given = conn, True
        self.done.set()


class AsyncPostgresConnections:
    """What the store stands on: one pool (opened lazily, inside the running event loop for
    the async API) and the connections the store holds between calls."""

    def __init__(self, options: PostgresOptions) -> None:
        self.options = options
        self._health = Health()
        self._connection_class = connection_class(self._health)
        self._lock = threading.Lock()
        self._pool: AsyncConnectionPool[PooledConnection] | None = None
        self._open_pool: AsyncConnectionPool[PooledConnection] | None = None
        # The store is its pool's only client; between calls it keeps the connections it took
        # (see _checkout/_checkin). All three are guarded by _lock.
        self._idle: list[PooledConnection] = []  # parked: idle, most recently used last
        self._out = 0  # connections of the current pool the store holds (in use or parked)
        self._waiters: deque[_Waiter] = deque()  # callers waiting while _out == pool_max
        self._loop: Any = None  # the event loop the pool belongs to
        self._schema_ready = False
        forks.forget_in_child(self)

    async def _ensure_schema(self, cur: AsyncCursor[TupleRow], *, force: bool) -> None:
        """Create or upgrade the tables on first use: the store's job (it overrides this)."""
        raise NotImplementedError

    def forget_inherited(self) -> None:
        """In a forked child: the pool and its connections are the parent's. They are never
        used here; their sockets are detached first (:func:`forks.detach_socket`), so that
        closing them cannot end the parent's sessions with the server."""
        inherited = list(self._connection_class.made)
        for conn in inherited:
            with contextlib.suppress(Exception):  # a connection already closed has no socket
                forks.detach_socket(conn.pgconn.socket)
        forks.keep((self._pool, inherited))
        self._connection_class.made = weakref.WeakSet()
        self._lock = threading.Lock()  # another thread may have held it at the fork
        self._pool = self._open_pool = None
        self._idle, self._out, self._waiters = [], 0, deque()
        self._loop = None

    def _lease(self, *, ensure_schema: bool = True) -> Lease:
        return Lease(self, ensure_schema)

    async def _get_pool(self) -> AsyncConnectionPool[PooledConnection]:
        loop = AsyncBackend.running_loop()
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
                pool = self._pool = self._new_pool()
        await pool.open()  # idempotent; spawns the pool's workers, connects in the background
        self._open_pool = pool
        return pool

    def _new_pool(self) -> AsyncConnectionPool[PooledConnection]:
        opts = self.options
        kwargs: dict[str, Any] = {"autocommit": True}
        if "connect_timeout" not in opts.libpq:
            kwargs["connect_timeout"] = max(1, math.ceil(opts.timeout))
        return AsyncConnectionPool(
            opts.conninfo,
            connection_class=self._connection_class,
            kwargs=kwargs,
            min_size=opts.pool_min,
            max_size=opts.pool_max,
            open=False,
            check=self._check,
            name=f"coatcheck {opts.where}",
            timeout=opts.timeout,
            # Never keep retrying in the background with exponential backoff: a slot that
            # cannot connect is dropped at once and the pool connects again when a caller
            # asks, so the first call after an outage succeeds.
            reconnect_timeout=0,
        )

    async def _check(self, conn: PooledConnection) -> None:
        """Refuse a pooled connection the server has closed (see :func:`alive`)."""
        if not alive(conn):
            # After a restart every idle connection is dead: test them all now, or the caller
            # would walk through them one by one with the pool's growing back-off.
            pool = self._pool
            if pool is not None:
                await pool.check()
            raise psycopg.OperationalError("the server closed the connection")

    async def _checkout(self) -> PooledConnection:
        """A healthy idle connection: the most recently parked one, one that a finished call
        hands over, or one from the pool (never more than ``pool_max`` out at once)."""
        pool = self._open_pool
        if pool is None or self._loop is not AsyncBackend.running_loop():
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
            if alive(conn):
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

    async def _getconn(self, pool: AsyncConnectionPool[PooledConnection]) -> PooledConnection:
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

    async def _wait(self, waiter: _Waiter) -> PooledConnection | None:
        """What a finished call hands ``waiter``: a connection, or None (take one from the
        pool); StoreUnavailable after ``timeout`` seconds, as the pool would."""
        try:
            await waiter.done.wait(self.options.timeout)
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

    async def _checkin(self, conn: PooledConnection) -> None:
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

    async def _discard(self, conn: PooledConnection) -> None:
        """Give ``conn`` back to its pool, which resets or replaces one that is not idle."""
        pool = conn.home
        if pool is None:
            return
        try:
            await pool.putconn(conn)
        finally:
            if pool is self._open_pool:
                self._release_slot()

    def _raise_if_unavailable(self, exc: BaseException | None, conn: PooledConnection) -> None:
        """StoreUnavailable for a driver failure of the server or the way to it (or one that
        closed ``conn``); anything else is left for the caller to raise unchanged."""
        if is_outage(exc, conn.closed):
            assert exc is not None
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: BaseException) -> StoreUnavailable | ConfigError:
        return described(exc, self.options, self._health.last_error)

    async def _close_pool(self) -> None:
        """Close the pool and the parked connections; a later call opens a new pool."""
        with self._lock:
            pool, self._pool, self._open_pool = self._pool, None, None
            loop, self._loop = self._loop, None
            idle, self._idle, self._out = self._idle, [], 0
            waiters, self._waiters = self._waiters, deque()
            for waiter in waiters:  # they find the pool closed: StoreUnavailable
                waiter.give(None)
        # A pool can only be closed in its own event loop; if that one is gone, so is the pool.
        if pool is not None and loop is AsyncBackend.running_loop():
            for conn in idle:
                await pool.putconn(conn)
            await pool.close()
