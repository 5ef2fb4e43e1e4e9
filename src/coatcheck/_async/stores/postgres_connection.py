"""One pooled PostgreSQL connection of the store, and its short path for the load statement.

The short path uses libpq's documented wrapper (``Connection.pgconn``, :mod:`psycopg.pq`): the
statement is prepared once per connection and sent with ``send_query_prepared``; the reply is
awaited through ``postgres/backend.py`` (a reader callback on the event loop, ``poll`` for
threads).
"""

from __future__ import annotations

import weakref
from typing import Any, ClassVar, Self

import psycopg
from psycopg import AsyncConnection, AsyncCursor, pq
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from ...stores.postgres.backend import AsyncBackend
from ...stores.postgres.decode import BYTEA_OID, Result
from ...stores.postgres.failures import UNDEFINED_STATEMENT, Health, error_from, sqlstate

_IDLE = pq.TransactionStatus.IDLE
_BINARY = pq.Format.BINARY
_BINARY_PARAM = (_BINARY,)
_TUPLES_OK = pq.ExecStatus.TUPLES_OK
_COMMAND_OK = pq.ExecStatus.COMMAND_OK


class PooledConnection(AsyncConnection[TupleRow]):
    """A pooled connection that reports connect attempts and keeps one cursor for reuse.

    psycopg's pool swallows connect errors (it only logs them), yet they are what an operator
    needs to read in :class:`StoreUnavailable`. A new cursor per statement copies the adapter
    map, a measurable share of a primary-key lookup, so each connection keeps one.
    """

    # Set on the per-store subclass (see _connection_class):
    health: ClassVar[Health]
    made: ClassVar[weakref.WeakSet[PooledConnection]]  # every live one, for a forked child
    _coatcheck_cursor: AsyncCursor[TupleRow] | None = None
    # Set when the store takes the connection out of its pool:
    home: AsyncConnectionPool[PooledConnection] | None = None  # the pool it must go back to
    park_until = 0.0  # after this (monotonic) moment it goes back to the pool
    prepared: frozenset[bytes] = frozenset()  # statements run_prepared has prepared here
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
        cls.made.add(conn)
        return conn

    def reusable_cursor(self) -> AsyncCursor[TupleRow]:
        cur = self._coatcheck_cursor
        if cur is None or cur.closed:
            cur = self._coatcheck_cursor = self.cursor()
        return cur

    async def run_prepared(
        self, name: bytes, query: bytes, param: bytes, param_type: int = BYTEA_OID
    ) -> Result:
        """The binary result of the one-parameter statement ``query``, prepared on this
        connection under ``name``: no cursor, no query conversion, no row factory. ``param``
        is in binary format, of type ``param_type`` (one type per ``name``).

        Prepared on first use and again if something deallocated it (``DISCARD ALL``, a
        pooler); a failure is raised as psycopg's exception for its SQLSTATE.
        """
        for again in (False, True):
            if name not in self.prepared:
                await self._prepare(name, query, param_type)
            self.pgconn.send_query_prepared(
                name, (param,), param_formats=_BINARY_PARAM, result_format=_BINARY
            )
            res = await AsyncBackend.result(self)
            if res.status == _TUPLES_OK:
                return res
            if again or sqlstate(res) != UNDEFINED_STATEMENT:
                break
            self.prepared -= {name}  # deallocated behind our back: prepare again, once
        raise error_from(res, self.text_encoding)

    async def _prepare(self, name: bytes, query: bytes, param_type: int) -> None:
        self.text_encoding = self.info.encoding
        self.pgconn.send_prepare(name, query, param_types=(param_type,))
        res = await AsyncBackend.result(self)
        if res.status != _COMMAND_OK:
            raise error_from(res, self.text_encoding)
        self.prepared |= {name}


def connection_class(health: Health) -> type[PooledConnection]:
    class StoreConnection(PooledConnection):
        pass

    StoreConnection.health = health
    StoreConnection.made = weakref.WeakSet()
    return StoreConnection


def alive(conn: PooledConnection) -> bool:
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
