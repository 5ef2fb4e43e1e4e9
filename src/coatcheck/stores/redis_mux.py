"""One pipelined connection for the commands on every request's path (async, standalone Redis).

Under load, an event loop runs many requests at once, and each wants one command: a session
load or its patch. With a connection per command (redis-py's pool, or the lane of
:mod:`coatcheck.stores._async.redis_lane`), each pays a ``send`` and a ``recv`` of its own,
and Redis a read and a write. Here the commands issued in one pass of the event loop go out
in one write on one connection, and their replies come back in order, often in one read.
Lettuce, StackExchange.Redis and ioredis's auto-pipelining work the same way.

redis-py still opens the connection (address, credentials, TLS, database, protocol, client
name: whatever the URL says); the connection's transport is then handed to this protocol.

Rules that keep replies matched to their commands:

* Replies arrive in the order the commands were written. A command whose caller went away
  (cancelled) keeps its place; its reply is read and dropped.
* Any doubt about the stream (a protocol error, a reply nobody waits for, the connection
  lost) closes the connection and fails every command still waiting on it; the next command
  opens a new one.
* One deadline for all: when the oldest unanswered command is older than the timeout, the
  server is not answering. The connection is closed and its waiting commands fail with
  ``TimeoutError``. One timer, re-armed for the oldest command, keeps this.

Used only with protocol 2 and when hiredis is installed (``coatcheck[redis]`` brings it).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from contextlib import suppress
from typing import Any

import redis.asyncio
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from . import forks
from ._async.redis_lane import HAVE_HIREDIS, AsyncCommandPath, AsyncLane, pack

with suppress(ImportError):  # coatcheck[redis] installs it; without it: HAVE_HIREDIS is False
    import hiredis

_NOT_YET = object()  # hiredis: no complete reply buffered
logger = logging.getLogger(__name__)


def for_client(
    client: redis.asyncio.Redis, wanted: bool, timeout: float | None
) -> Multiplexer | None:
    """A multiplexer for this client's per-request commands, or None where pipelining does not
    apply: switched off (``multiplex=false``), RESP3, or no hiredis."""
    protocol = client.connection_pool.connection_kwargs.get("protocol", 2)
    if not (wanted and HAVE_HIREDIS and protocol in (2, "2", None)):
        return None
    return Multiplexer(client, timeout)


class _Link(asyncio.Protocol):
    """One open connection: commands written in batches, replies matched in order."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        transport: asyncio.Transport,
        conn: Any,  # the redis-py connection that opened the socket
        parse_error: Any,
        timeout: float | None,
    ) -> None:
        self.loop = loop
        self.transport = transport
        self.conn = conn
        self.timeout = timeout
        self.closed = False
        self._reader = hiredis.Reader(replyError=parse_error, notEnoughData=_NOT_YET)
        self._waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self._outbox: list[bytes] = []
        self._timer: asyncio.TimerHandle | None = None
        self.streams: tuple[object, ...] = ()

    def call(self, args: tuple[Any, ...]) -> asyncio.Future[Any]:
        """Queue one command; its reply (or error) arrives on the returned future."""
        loop = self.loop
        future = loop.create_future()
        if not self._outbox:
            loop.call_soon(self._flush)
        self._outbox.append(pack(self.conn, args))
        now = loop.time()
        self._waiting.append((future, now))
        if self._timer is None and self.timeout is not None:
            self._timer = loop.call_at(now + self.timeout, self._expire)
        return future

    def _flush(self) -> None:
        outbox, self._outbox = self._outbox, []
        if not self.closed:
            self.transport.write(b"".join(outbox))

    def data_received(self, data: bytes) -> None:
        reader, waiting = self._reader, self._waiting
        reader.feed(data)
        try:
            while (reply := reader.gets()) is not _NOT_YET:
                future = waiting.popleft()[0]
                if future.done():
                    continue  # its caller gave up: the reply is dropped, the order kept
                if isinstance(reply, ResponseError):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)
        except Exception as exc:  # a protocol error, or a reply nobody asked for
            self.fail(RedisConnectionError(f"Redis reply stream broken: {exc!r}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(RedisConnectionError(f"Connection closed by server ({exc or 'EOF'})"))

    def _expire(self) -> None:
        self._timer = None
        if not self._waiting:
            return
        started = self._waiting[0][1]
        assert self.timeout is not None
        deadline = started + self.timeout
        if deadline > self.loop.time():
            self._timer = self.loop.call_at(deadline, self._expire)
            return
        self.fail(TimeoutError(f"Redis did not answer within {self.timeout:g} s"))

    def fail(self, error: BaseException) -> None:
        """Close the connection; every command still waiting gets ``error``."""
        if not self.closed:
            self.closed = True
            self.transport.abort()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiting, self._waiting = self._waiting, deque()
        for future, _ in waiting:
            if not future.done():
                future.set_exception(error)


class Multiplexer(AsyncCommandPath):
    """The per-request commands of one standalone client, pipelined on one connection per
    event loop (an application usually has one; threads that run loops of their own, or
    successive ``asyncio.run`` calls, each get theirs)."""

    def __init__(self, client: redis.asyncio.Redis, timeout: float | None) -> None:
        pool = client.connection_pool
        self._client = client
        self._kwargs = dict(pool.connection_kwargs)
        self._connection_class: Any = pool.connection_class
        self._timeout = timeout
        self._links: dict[asyncio.AbstractEventLoop, _Link] = {}
        self._openings: dict[asyncio.AbstractEventLoop, asyncio.Task[_Link | None]] = {}
        self._fallback: AsyncLane | None = None  # set if this redis-py cannot hand over
        forks.forget_in_child(self)

    def forget_inherited(self) -> None:
        """In a forked child: the connections are the parent's; never use them."""
        forks.keep((self._links, self._openings))
        self._links, self._openings = {}, {}

    async def command(self, *args: Any) -> Any:
        """Send one command and return its reply (errors are the driver's, untranslated)."""
        loop = asyncio.get_running_loop()
        link = self._links.get(loop)
        if link is None or link.closed:
            link = await self._open(loop) if self._fallback is None else None
            if link is None:
                assert self._fallback is not None
                return await self._fallback.command(*args)
        return await link.call(args)

    async def close(self) -> None:
        openings, self._openings = self._openings, {}
        running = asyncio.get_running_loop()
        for loop, opening in openings.items():
            if opening.done() or loop.is_closed():
                continue
            if loop is running:
                opening.cancel()
            else:
                loop.call_soon_threadsafe(opening.cancel)
        links, self._links = self._links, {}
        for link in links.values():
            _drop(link)
        if self._fallback is not None:
            await self._fallback.close()

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _Link | None:
        """The connection for this event loop: one opening, shared by every caller waiting for
        it; it installs the link itself, so a link opened for callers who gave up is kept."""
        opening = self._openings.get(loop)
        if opening is None or opening.done():
            for gone in [other for other in self._links if other.is_closed()]:
                _drop(self._links.pop(gone))
                self._openings.pop(gone, None)
            opening = self._openings[loop] = loop.create_task(self._connect(loop))
            opening.add_done_callback(_retrieve)
        return await asyncio.shield(opening)

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> _Link | None:
        """A new link, or None when this redis-py cannot hand its connection over (then
        every command takes the lane, a connection per command, from now on)."""
        conn = self._connection_class(**{**self._kwargs, "socket_timeout": self._timeout})
        await conn.connect()
        try:
            writer, reader, parse_error = take_over(conn)
        except AttributeError as exc:  # a redis-py whose connections are built differently
            await conn.disconnect()
            logger.warning(
                "coatcheck: this redis-py (%s) cannot hand a connection over (%s); the Redis "
                "store sends a command per connection instead of pipelining",
                redis.__version__,
                exc,
            )
            self._fallback = AsyncLane(self._client, self._timeout, None)
            return None
        if writer is None or reader is None or len(getattr(reader, "_buffer", b"")):
            if writer is not None:
                writer.close()  # ours now: the connection object forgot it
            raise RedisConnectionError("Redis connection not in a clean state after its set-up")
        link = _Link(loop, writer.transport, conn, parse_error, self._timeout)
        link.streams = (reader, writer)
        writer.transport.set_protocol(link)
        old = self._links.get(loop)
        self._links[loop] = link
        if old is not None:
            _drop(old)
        return link


def take_over(conn: Any) -> tuple[Any, Any, Any]:
    """A connected redis-py connection's stream writer, stream reader and error parser; the
    connection object forgets its streams, so that it never closes the socket we now own (the
    link keeps the streams: a StreamWriter closes its transport when it is collected).
    AttributeError where redis-py's connections are built differently."""
    writer, reader, parse_error = conn._writer, conn._reader, conn._parser.parse_error
    conn._writer = conn._reader = None
    return writer, reader, parse_error


def _retrieve(task: asyncio.Task[_Link | None]) -> None:
    """An opening whose callers all gave up: its error is theirs, not the event loop's log's."""
    if not task.cancelled():
        task.exception()


def _drop(link: _Link) -> None:
    """Close a connection, from whichever loop is running now (its own may be gone)."""
    error = RedisConnectionError("the store was closed")
    if link.loop.is_closed():
        link.closed = True
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is link.loop or not link.loop.is_running():
        link.fail(error)
    else:
        with suppress(RuntimeError):
            link.loop.call_soon_threadsafe(link.fail, error)
