"""The only things the PostgreSQL store's two faces do differently, each written once per face.

``scripts/unasync.py`` turns ``AsyncBackend`` into ``Backend`` and ``AsyncSignal`` into
``Signal`` when it generates the synchronous store, so the store's own source has no
branches and no markers. Everything here uses documented interfaces only: libpq's
non-blocking protocol through ``Connection.pgconn`` (``psycopg.pq``), the socket it reports,
and the event loop's ``add_reader`` / ``select.poll`` to wait for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import threading
from typing import Any

import psycopg

from .decode import Result


class AsyncBackend:
    """asyncio: the pool belongs to an event loop; replies are awaited with a reader callback."""

    running_loop = staticmethod(asyncio.get_running_loop)  # called on every checkout

    @staticmethod
    async def result(conn: psycopg.AsyncConnection[Any]) -> Result:
        """The last result of the statement just sent on ``conn``.

        psycopg's own wait drives a generator and arms a timer for every wait (to notice
        Ctrl-C); one row needs one reader callback per round trip. Cancelled, it leaves the
        connection mid-statement (not idle), and the store hands it back to the pool, which
        closes it.
        """
        loop = asyncio.get_running_loop()
        try:
            fd = conn.pgconn.socket
            need, res = _collect(conn, None)
            while need:
                if need == _WRITE:
                    await _writable(loop, fd)
                else:  # inline: one reply per request waits here
                    done = loop.create_future()
                    loop.add_reader(fd, done.set_result, None)
                    try:
                        await done
                    finally:
                        loop.remove_reader(fd)
                need, res = _collect(conn, res, consume=True)
        except OSError as exc:
            raise _lost(exc) from exc
        return _last(res)


class Backend:
    """Threads: no event loop; replies are waited for with ``poll`` (``select`` elsewhere)."""

    @staticmethod
    def running_loop() -> None:
        return None

    @staticmethod
    def result(conn: psycopg.Connection[Any]) -> Result:
        """The last result of the statement just sent on ``conn``."""
        try:
            fd = conn.pgconn.socket
            need, res = _collect(conn, None)
            while need:
                _wait(fd, writing=need == _WRITE)
                need, res = _collect(conn, res, consume=True)
        except OSError as exc:
            raise _lost(exc) from exc
        return _last(res)


_READ, _WRITE = 1, 2


def _collect(
    conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any],
    res: Result | None,
    *,
    consume: bool = False,
) -> tuple[int, Result | None]:
    """libpq's asynchronous command processing, as far as it goes without waiting: send what
    is left of the statement, take the results that have arrived; what to wait for next
    (``_READ``, ``_WRITE``, or 0 when the statement is over) and the last result so far."""
    pgconn = conn.pgconn
    if consume:  # the socket was ready
        pgconn.consume_input()
    if pgconn.flush():  # a full socket buffer (rare): wait until it can take more
        return _WRITE, res
    while not pgconn.is_busy():
        last = pgconn.get_result()
        if last is None:
            return 0, res
        res = last
    return _READ, res


def _last(res: Result | None) -> Result:
    if res is None:
        raise psycopg.InternalError("no result for the statement sent")
    return res


def _lost(exc: OSError) -> psycopg.OperationalError:
    return psycopg.OperationalError(f"connection socket closed: {exc}")


class AsyncSignal:
    """Set once by one caller, awaited by another for at most some seconds (asyncio)."""

    __slots__ = ("_done",)

    def __init__(self) -> None:
        self._done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def set(self) -> None:
        if not self._done.done():  # a wait that timed out cancelled it
            self._done.set_result(None)

    async def wait(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._done, seconds)


class Signal:
    """Set once by one thread, waited for by another for at most some seconds."""

    __slots__ = ("_done",)

    def __init__(self) -> None:
        self._done = threading.Event()

    def set(self) -> None:
        self._done.set()

    def wait(self, seconds: float) -> None:
        self._done.wait(seconds)


async def _writable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    """Until ``fd`` is writable or readable (libpq may need to read before it can send more);
    both callbacks may fire in one turn of the loop, hence the guard in ``_wake``."""
    done = loop.create_future()
    loop.add_reader(fd, _wake, done)
    loop.add_writer(fd, _wake, done)
    try:
        await done
    finally:
        loop.remove_reader(fd)
        loop.remove_writer(fd)


def _wake(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_result(None)


def _wait(fd: int, *, writing: bool) -> None:
    """Until ``fd`` is readable (or, ``writing``, readable or writable)."""
    if _HAS_POLL:  # no limit on descriptor numbers, unlike select()
        poller = select.poll()
        poller.register(fd, select.POLLIN | (select.POLLOUT if writing else 0))
        poller.poll()
    else:  # Windows
        select.select([fd], [fd] if writing else [], [])


_HAS_POLL = hasattr(select, "poll")
