"""One pipelined connection for the commands on every request's path (async, standalone Redis).

Under load, an event loop runs many requests at once, and each wants one command: a session
load or its patch. With a connection per command (redis-py's pool, or the lane of
:mod:`coatcheck._async.stores.redis_lane`), each pays a ``send`` and a ``recv`` of its own,
and Redis a read and a write. Here the commands issued in one pass of the event loop go out
in one write on one connection, and their replies come back in order, often in one read.
Lettuce, StackExchange.Redis and ioredis's auto-pipelining work the same way.

The connection is coatcheck's own, on public ground only: opened by asyncio's
``loop.create_connection`` with this module's protocol (TLS through an ``ssl`` context for
``rediss://``), set up from the URL's settings (``AUTH``, ``SELECT``; RESP2), commands packed
by ``hiredis.pack_command`` and replies parsed by ``hiredis.Reader`` (``feed``, ``gets``).

Rules that keep replies matched to their commands:

* Replies arrive in the order the commands were written. A command whose caller went away
  (cancelled) keeps its place; its reply is read and dropped.
* Any doubt about the stream (a protocol error, a reply nobody waits for, the connection
  lost) closes the connection and fails every command still waiting on it; the next command
  opens a new one.
* One deadline for all: when the oldest unanswered command is older than the timeout, the
  server is not answering. The connection is closed and its waiting commands fail with
  ``TimeoutError``. One timer, re-armed for the oldest command, keeps this.

Used only with protocol 2 and when hiredis is installed (``coatcheck[redis]`` brings it); the
async store alone imports this module (through :mod:`coatcheck.stores.redis.aio`).
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from contextlib import suppress
from typing import Any, Final, cast

import hiredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .. import forks
from .failures import reply_error
from .url import RedisOptions

_NOT_YET: Final = object()  # hiredis: no complete reply buffered
_CERT_REQS: Final = {
    "required": ssl.CERT_REQUIRED,
    "optional": ssl.CERT_OPTIONAL,
    "none": ssl.CERT_NONE,
}


def tls_context(options: RedisOptions) -> ssl.SSLContext:
    """The TLS settings of a ``rediss://`` URL, as redis-py applies them to its connections:
    the system's trust store plus ``ssl_ca_certs``, a client certificate if given, and the
    host name checked unless ``ssl_cert_reqs=none``."""
    context = ssl.create_default_context()
    verify = _CERT_REQS[options.ssl_cert_reqs]
    context.check_hostname = verify != ssl.CERT_NONE  # before verify_mode: ssl's rule
    context.verify_mode = verify
    if options.ssl_certfile or options.ssl_keyfile:
        context.load_cert_chain(certfile=options.ssl_certfile or "", keyfile=options.ssl_keyfile)
    if options.ssl_ca_certs:
        context.load_verify_locations(cafile=options.ssl_ca_certs)
    return context


def handshake(options: RedisOptions) -> list[tuple[Any, ...]]:
    """The commands that set a new connection up as the URL says (what redis-py sends when
    it connects with RESP2): ``AUTH`` if there are credentials, ``SELECT`` for a database
    other than 0."""
    commands: list[tuple[Any, ...]] = []
    if options.username:
        commands.append(("AUTH", options.username, options.password or ""))
    elif options.password:
        commands.append(("AUTH", options.password))
    if options.db:
        commands.append(("SELECT", options.db))
    return commands


class _Link(asyncio.Protocol):
    """One open connection: commands written in batches, replies matched in order."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float | None) -> None:
        self.loop = loop
        self.timeout = timeout
        self.closed = False
        self.transport: asyncio.Transport | None = None
        self._reader = hiredis.Reader(replyError=reply_error, notEnoughData=_NOT_YET)
        self._waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self._outbox: list[bytes] = []
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport; uvloop's do not subclass asyncio.Transport, so no isinstance.
        self.transport = cast("asyncio.Transport", transport)

    def call(self, args: tuple[Any, ...]) -> asyncio.Future[Any]:
        """Queue one command; its reply (or error) arrives on the returned future."""
        loop = self.loop
        future = loop.create_future()
        if not self._outbox:
            loop.call_soon(self._flush)
        self._outbox.append(hiredis.pack_command(args))
        now = loop.time()
        self._waiting.append((future, now))
        if self._timer is None and self.timeout is not None:
            self._timer = loop.call_at(now + self.timeout, self._expire)
        return future

    def _flush(self) -> None:
        outbox, self._outbox = self._outbox, []
        if not self.closed and self.transport is not None:
            self.transport.write(b"".join(outbox))

    def data_received(self, data: bytes) -> None:
        reader, waiting = self._reader, self._waiting
        reader.feed(data)
        try:
            while (reply := reader.gets()) is not _NOT_YET:
                future = waiting.popleft()[0]
                if future.done():
                    continue  # its caller gave up: the reply is dropped, the order kept
                if isinstance(reply, RedisError):  # an error reply, made by reply_error
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
            if self.transport is not None:
                self.transport.abort()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiting, self._waiting = self._waiting, deque()
        for future, _ in waiting:
            if not future.done():
                future.set_exception(error)


class Multiplexer:
    """The per-request commands of one standalone server, pipelined on one connection per
    event loop (an application usually has one; threads that run loops of their own, or
    successive ``asyncio.run`` calls, each get theirs). A command path of the async store
    (:class:`coatcheck._async.stores.redis_lane.AsyncCommandPath`)."""

    def __init__(self, options: RedisOptions) -> None:
        self._options = options
        self._tls: ssl.SSLContext | None = None  # made at the first connection (reads files)
        self._links: dict[asyncio.AbstractEventLoop, _Link] = {}
        self._openings: dict[asyncio.AbstractEventLoop, asyncio.Task[_Link]] = {}
        forks.forget_in_child(self)

    def forget_inherited(self) -> None:
        """In a forked child: the connections are the parent's; never use them (nor close
        them: a TLS close would write to the parent's stream)."""
        forks.keep((self._links, self._openings))
        self._links, self._openings = {}, {}

    async def command(self, *args: Any) -> Any:
        """Send one command and return its reply (errors are redis-py's exceptions)."""
        loop = asyncio.get_running_loop()
        link = self._links.get(loop)
        if link is None or link.closed:
            link = await self._open(loop)
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

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _Link:
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

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> _Link:
        """A new connection, set up; errors are redis-py's (``ConnectionError`` for a refused
        or reset connection, ``TimeoutError``, ``AuthenticationError``, ``ResponseError``)."""
        options = self._options
        if options.tls and self._tls is None:
            self._tls = tls_context(options)
        link = _Link(loop, options.socket_timeout)
        where = f"{options.host}:{options.port}"
        try:
            async with asyncio.timeout(options.socket_connect_timeout):
                await loop.create_connection(
                    lambda: link,
                    options.host,
                    options.port,
                    ssl=self._tls,
                    server_hostname=options.host if self._tls is not None else None,
                )
        except TimeoutError as exc:
            raise RedisTimeoutError(f"Timeout connecting to {where}") from exc
        except OSError as exc:
            raise RedisConnectionError(f"Error connecting to {where}: {exc}") from exc
        try:
            await asyncio.gather(*(link.call(command) for command in handshake(options)))
        except BaseException:
            link.fail(RedisConnectionError("the connection's set-up failed"))
            raise
        old = self._links.get(loop)
        self._links[loop] = link
        if old is not None:
            _drop(old)
        return link


def _retrieve(task: asyncio.Task[_Link]) -> None:
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
