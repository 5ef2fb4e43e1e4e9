"""Driver errors -> the contract's errors: an outage, settings no retry can fix, or neither.

Every server or network failure becomes :class:`StoreUnavailable` naming host and port (never
the password), with the driver's exception chained; a server that refuses the settings (role,
database, password, pg_hba.conf) is a :class:`ConfigError`; programming errors (bad SQL,
missing privileges) are not disguised and pass through as psycopg's own exceptions.
"""

from __future__ import annotations

import re

import psycopg
from psycopg import pq
from psycopg_pool import PoolClosed, PoolTimeout

from ...core.errors import ConfigError, StoreUnavailable
from .decode import Result
from .url import PostgresOptions, one_line

# Driver errors that mean "the server cannot serve us now": connection refused or lost,
# server shutting down or starting up, timeouts, pool timeouts (PoolTimeout, PoolClosed and
# TooManyRequests are OperationalErrors too), and a read-only server after a failover.
UNAVAILABLE: tuple[type[Exception], ...] = (
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
UNDEFINED_STATEMENT = b"26000"  # invalid_sql_statement_name: a prepared statement is gone
_SQLSTATE = pq.DiagnosticField.SQLSTATE


class Health:
    """Why the last connection attempt failed (None after a success), for error messages,
    and how many have failed (a caller waiting for the pool stops when this moves)."""

    __slots__ = ("failures", "last_error")

    def __init__(self) -> None:
        self.last_error: psycopg.Error | None = None
        self.failures = 0


def is_outage(exc: BaseException | None, closed: bool) -> bool:
    """True for a driver failure of the server or the way to it, or one that closed the
    connection (``closed``); anything else is for the caller to raise unchanged."""
    return isinstance(exc, psycopg.Error) and (isinstance(exc, UNAVAILABLE) or closed)


def described(
    exc: BaseException, options: PostgresOptions, last: psycopg.Error | None
) -> StoreUnavailable | ConfigError:
    """The contract's error for a driver failure; ``last`` is the last failed connection
    attempt, which a pool timeout hides."""
    refusal = last if isinstance(exc, PoolTimeout) else exc
    if refusal is not None and _REFUSED_SETTINGS.search(str(refusal)):
        return ConfigError(
            f"PostgreSQL at {options.where} refused the connection: {one_line(refusal)}"
        )
    if isinstance(exc, PoolTimeout):
        why = f"no connection within {options.timeout:g} s"
        if last is not None:
            why += f"; last connection attempt: {one_line(last)}"
        else:
            why += f" (all {options.pool_max} pooled connections busy?)"
    elif isinstance(exc, PoolClosed):
        why = "the store was closed while in use"
    else:
        why = one_line(exc)
    return StoreUnavailable(f"PostgreSQL at {options.where} is unavailable: {why}")


def sqlstate(res: Result) -> bytes | None:
    """The SQLSTATE of a failed result (None when libpq itself failed, e.g. a lost connection)."""
    return res.error_field(_SQLSTATE)


def error_from(res: Result, encoding: str) -> psycopg.Error:
    """psycopg's exception class for a failed result (``psycopg.errors.lookup``) with its
    message; no SQLSTATE means the connection failed, an OperationalError."""
    message = res.error_message.decode(encoding, "replace").strip() or "the statement failed"
    state = sqlstate(res)
    if state is None:
        return psycopg.OperationalError(message)
    try:
        return psycopg.errors.lookup(state.decode("ascii"))(message)
    except KeyError:  # a code newer than this psycopg: its class, as psycopg itself would
        base = psycopg.OperationalError if state[:2] in (b"08", b"53", b"57") else None
        return (base or psycopg.DatabaseError)(message)
