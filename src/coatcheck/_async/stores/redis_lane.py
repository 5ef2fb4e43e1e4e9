"""A lean path for the two commands on every request's path: a session load and its patch.

redis-py's general path costs more client CPU than the Redis server spends on the command:
per call, a pool checkout and release behind a lock with observability counters, a retry
wrapper, event dispatch and (with a socket timeout) ``asyncio.wait_for``, which creates a
task for every write to the socket. The lane keeps its own stack of idle connections, made by
the client's pool from the same settings (address, credentials, TLS, protocol), and sends one
command per checkout through redis-py's public connection API (``send_packed_command``,
``read_response``: :meth:`coatcheck.stores.redis.aio.LaneIO.roundtrip`), under one deadline.
Measured in ``docs/performance.md``.
"""

from __future__ import annotations

from typing import Any, Protocol

import redis.asyncio
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

from ...stores import forks
from ...stores.redis.aio import LaneIO
from ...stores.redis.wire import pack

DEFAULT_MAX_IDLE = 64


class AsyncCommandPath(Protocol):
    """How the store sends the commands on every request's path: this lane, or the async
    store's pipelined connection (:class:`coatcheck.stores.redis.mux.Multiplexer`)."""

    async def command(self, *args: Any) -> Any:
        """Send one command and return its reply (errors are redis-py's, untranslated)."""

    async def close(self) -> None: ...


async def run_script(
    path: AsyncCommandPath, sha: str, source: str, keys: list[str], args: list[Any]
) -> Any:
    """EVALSHA, loading the script first if the server does not know it (restart, flush)."""
    try:
        return await path.command("EVALSHA", sha, len(keys), *keys, *args)
    except NoScriptError:
        await path.command("SCRIPT", "LOAD", source)
        return await path.command("EVALSHA", sha, len(keys), *keys, *args)


class AsyncLane:
    """Idle connections of one standalone Redis client, used for one command at a time.

    A connection goes back to the stack only after a complete reply; any failure (timeout,
    reset, a reply that could not be read) disconnects it, so a half-read reply is never
    seen by the next command. A connection that went stale while idle (the server closed it,
    or data is waiting) is dropped at checkout, as redis-py's own pool does.
    """

    def __init__(self, client: redis.asyncio.Redis, io: LaneIO, max_idle: int | None) -> None:
        pool = client.connection_pool
        self._kwargs = {**pool.connection_kwargs, "socket_timeout": io.socket_timeout}
        self._connection_class: Any = pool.connection_class
        self._io = io
        self._roundtrip = io.roundtrip
        self._max_idle = max_idle or DEFAULT_MAX_IDLE
        self._idle: list[Any] = []
        forks.forget_in_child(self)

    def forget_inherited(self) -> None:
        """In a forked child: the idle connections are the parent's; never use them."""
        inherited, self._idle = self._idle, []
        self._io.forget(inherited)

    async def command(self, *args: Any) -> Any:
        """Send one command and return its reply (errors are redis-py's, untranslated)."""
        conn = await self._checkout()
        try:
            reply = await self._roundtrip(conn, pack(conn, args))
        except BaseException:
            await self._io.drop(conn)
            raise
        if len(self._idle) < self._max_idle:
            self._idle.append(conn)
        else:
            await conn.disconnect()
        return reply

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.disconnect()

    async def _checkout(self) -> Any:
        while self._idle:
            conn = self._idle.pop()
            try:
                if not await conn.can_read():
                    return conn
            except (OSError, RedisConnectionError):
                pass
            await conn.disconnect()
        conn = self._connection_class(**self._kwargs)
        await conn.connect()
        return conn
