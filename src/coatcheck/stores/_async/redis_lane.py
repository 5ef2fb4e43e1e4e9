"""A lean path for the two commands on every request's path: a session load and its patch.

redis-py's general path costs more client CPU than the Redis server spends on the command:
per call, a pool checkout and release behind a lock with observability counters, a retry
wrapper, event dispatch and (with a socket timeout) ``asyncio.wait_for``, which creates a
task for every write to the socket. The lane keeps its own stack of idle connections, made by
the client's pool from the same settings (address, credentials, TLS, protocol), and sends one
command per checkout under one deadline, kept by a timer shared by all commands
(:mod:`coatcheck.stores.deadline`; an ``asyncio.timeout`` each would cost 3.5 µs).
Measured in ``docs/performance.md``.

This file is the async source; ``scripts/unasync.py`` generates the synchronous twin.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

from .. import forks
from ..deadline import SharedTimeout

try:
    from hiredis import pack_command as hiredis_pack

    HAVE_HIREDIS = True
except ImportError:  # pragma: no cover - coatcheck[redis] installs hiredis
    HAVE_HIREDIS = False

DEFAULT_MAX_IDLE = 64


def pack(conn: Any, args: tuple[Any, ...]) -> bytes:
    """One command in the Redis protocol, through hiredis's C packer where it is installed.

    ``redis.asyncio``'s own ``pack_command`` is pure Python: 9.5 µs for the patch script's 14
    arguments, against 1.9 µs (``timeit``). The store passes str, bytes, int and float only,
    which both encode alike (UTF-8, decimal, ``repr``; tested against redis-py's encoding).
    """
    if HAVE_HIREDIS:
        return bytes(hiredis_pack(args))
    return b"".join(conn.pack_command(*args))


class AsyncCommandPath:
    """How the store sends the commands on every request's path (this lane, or the async
    store's pipelined connection, :class:`coatcheck.stores.redis_mux.Multiplexer`)."""

    async def command(self, *args: Any) -> Any:
        """Send one command and return its reply (errors are the driver's, untranslated)."""
        raise NotImplementedError

    async def script(self, sha: str, source: str, keys: list[str], args: list[Any]) -> Any:
        """EVALSHA, loading the script first if the server does not know it (restart, flush)."""
        try:
            return await self.command("EVALSHA", sha, len(keys), *keys, *args)
        except NoScriptError:
            await self.command("SCRIPT", "LOAD", source)
            return await self.command("EVALSHA", sha, len(keys), *keys, *args)

    async def close(self) -> None:
        raise NotImplementedError


class AsyncLane(AsyncCommandPath):
    """Idle connections of one standalone Redis client, used for one command at a time.

    A connection goes back to the stack only after a complete reply; any failure (timeout,
    reset, a reply that could not be read) disconnects it, so a half-read reply is never
    seen by the next command. A connection that went stale while idle (the server closed it,
    or data is waiting) is dropped at checkout, as redis-py's own pool does.
    """

    def __init__(
        self, client: redis.asyncio.Redis, timeout: float | None, max_idle: int | None
    ) -> None:
        pool = client.connection_pool
        self._kwargs = dict(pool.connection_kwargs)
        # The lane enforces the timeout itself, once per command: no per-write wait_for.
        self._kwargs["socket_timeout"] = None  # unasync: pass
        self._connection_class: Any = pool.connection_class
        self._timeout = timeout
        self._deadline = SharedTimeout(timeout)  # unasync: pass
        self._max_idle = max_idle or DEFAULT_MAX_IDLE
        self._idle: list[Any] = []
        forks.forget_in_child(self)

    def forget_inherited(self) -> None:
        """In a forked child: the idle connections are the parent's; never use them."""
        inherited, self._idle = self._idle, []
        forks.keep(inherited)  # unasync: for conn in inherited: conn.disconnect()

    async def command(self, *args: Any) -> Any:
        """Send one command and return its reply (errors are the driver's, untranslated)."""
        conn = await self._checkout()
        try:
            with self._deadline.guard():  # unasync: if True:
                await conn.send_packed_command([pack(conn, args)], False)
                reply = await conn.read_response()
        except BaseException:
            await conn.disconnect(nowait=True)  # unasync: conn.disconnect()
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
