"""What a driver error means for the caller, and error replies as redis-py's exceptions.

Every failure of the server or of the way to it becomes :class:`StoreUnavailable`; a URL that
names the wrong kind of server, a database it lacks or credentials it refuses is a
:class:`ConfigError`; anything else (a bug, foreign data under the prefix) is raised as it is.
"""

from __future__ import annotations

from collections.abc import Generator
from contextlib import contextmanager
from typing import Final

from redis.exceptions import (
    AskError,
    AuthenticationError,
    BusyLoadingError,
    ClusterCrossSlotError,
    ClusterDownError,
    ExecAbortError,
    MasterDownError,
    MaxClientsReachedError,
    MovedError,
    NoPermissionError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ...core.errors import CoatcheckError, ConfigError, StoreUnavailable
from .url import RedisOptions

_FAILURES: Final = (
    RedisConnectionError,  # includes BusyLoadingError, MaxConnectionsError, auth failures
    RedisTimeoutError,
    ClusterDownError,  # includes MasterDownError
    SlotNotCoveredError,
    TryAgainError,
    ReadOnlyError,  # a failed-over primary that is now a replica
    OutOfMemoryError,  # maxmemory reached
    OSError,
)
_FAILURE_REPLIES: Final = ("BUSY ", "LOADING ", "MASTERDOWN ", "CLUSTERDOWN ", "TRYAGAIN ")


def is_failure(exc: BaseException) -> bool:
    """Is this the server (or the way to it) failing, rather than a mistake in a request?"""
    if isinstance(exc, _FAILURES):
        return True
    if isinstance(exc, ResponseError):
        return str(exc).startswith(_FAILURE_REPLIES)
    if isinstance(exc, RedisClusterException):
        # The slot map could not be loaded: no seed reachable, or slots not covered.
        text = str(exc)
        return (
            isinstance(exc.__cause__, _FAILURES)
            or "cannot be connected" in text
            or ("not covered" in text or "could not agree" in text)
        )
    return False


def translate(exc: Exception, options: RedisOptions) -> CoatcheckError | None:
    """StoreUnavailable for a server (or the way to it) failing, ConfigError for a URL that
    names the wrong kind of server, a database it lacks or credentials it refuses, None for
    anything else (a bug or foreign data: the caller raises it unchanged)."""
    where = options.where
    if isinstance(exc, RedisClusterException) and "not enabled" in str(exc):
        return ConfigError(f"{where}: cluster mode is not enabled on that server; use redis://")
    if isinstance(exc, AskError) and not options.cluster:  # MOVED or ASK
        return ConfigError(f"{where} is a Redis Cluster node; use redis+cluster://")
    if isinstance(exc, ResponseError) and "DB index is out of range" in str(exc):
        return ConfigError(
            f"{where}: the server has no database {options.db} (its 'databases' setting is lower)"
        )
    if isinstance(exc, AuthenticationError):  # wrong user or password: retrying won't help
        return ConfigError(f"{where} refused the credentials: {exc}")
    if is_failure(exc):
        return StoreUnavailable(f"{where} is unavailable: {type(exc).__name__}: {exc}")
    return None


@contextmanager
def guarded(options: RedisOptions) -> Generator[None, None, None]:
    """Translates driver exceptions (see :func:`translate`) raised inside the block."""
    try:
        yield
    except Exception as exc:
        translated = translate(exc, options)
        if translated is None:
            raise
        raise translated from exc


# Error replies by their first word, as redis-py's own parsers classify them (so a reply read
# by the pipelined connection raises what the same reply read by redis-py would).
_REPLY_ERRORS: Final[dict[str, type[RedisError]]] = {
    "OOM": OutOfMemoryError,
    "WRONGPASS": AuthenticationError,
    "NOAUTH": AuthenticationError,
    "EXECABORT": ExecAbortError,
    "LOADING": BusyLoadingError,
    "NOSCRIPT": NoScriptError,
    "READONLY": ReadOnlyError,
    "NOPERM": NoPermissionError,
    "ASK": AskError,
    "TRYAGAIN": TryAgainError,
    "MOVED": MovedError,
    "CLUSTERDOWN": ClusterDownError,
    "CROSSSLOT": ClusterCrossSlotError,
    "MASTERDOWN": MasterDownError,
}
_ERR_REPLIES: Final[dict[str, type[RedisError]]] = {
    "max number of clients reached": MaxClientsReachedError,
    "invalid password": AuthenticationError,
    "AUTH <password> called without any password configured for the default user. Are you "
    "sure your configuration is correct?": AuthenticationError,
    "Client sent AUTH, but no password is set": AuthenticationError,
}


def reply_error(text: str) -> RedisError:
    """An error reply (without its ``-``) as the redis-py exception it stands for: known
    codes are dropped from the message, as redis-py does (``NOSCRIPT No matching script`` ->
    ``NoScriptError("No matching script")``); others keep it (``WRONGTYPE ...``)."""
    code, _, rest = text.partition(" ")
    kind = _ERR_REPLIES.get(rest) if code == "ERR" else _REPLY_ERRORS.get(code)
    if kind is None:
        return ResponseError(rest if code == "ERR" else text)
    try:
        return kind(rest)
    except Exception:  # a redirection whose text would not parse: keep it whole
        return ResponseError(text)
