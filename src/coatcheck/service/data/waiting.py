"""Waiting for new events where the store cannot block: in-process wake-ups plus polling.

An append in this process wakes its waiters at once (any event loop, any thread); an append
by another process is seen by polling. Waiters share one poll: at most one "newest id" query
per interval per store object, however many event streams wait.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Final

from .base import check_after, check_timeout

POLL_INTERVAL: Final = 0.2  # seconds between "newest event id" queries of a polling store


class Wakeups:
    """Waiters of this process, woken when this process appends an event."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self.generation = 0  # appends so far: a waiter that saw an older one need not sleep

    def wake(self) -> None:
        with self._lock:
            self.generation += 1
            waiters, self._waiters = self._waiters, set()
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that loop is closed: nobody waits there any more
                continue

    async def sleep(self, seconds: float, seen: int) -> None:
        """Until woken or ``seconds`` have passed; not at all if there was an append since
        the caller read ``generation`` (``seen``)."""
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            if self.generation != seen:
                return
            self._waiters.add(entry)
        try:
            async with asyncio.timeout(seconds):
                await entry[1].wait()
        except TimeoutError:
            pass
        finally:
            with self._lock:
                self._waiters.discard(entry)


class Poller:
    """The newest event id, read at most once per ``interval`` and shared by every waiter."""

    def __init__(self, newest: Callable[[], Awaitable[int | None]], interval: float) -> None:
        self._newest = newest
        self.interval = interval
        self._value = 0
        self._read_at = -float("inf")
        self._marks = 0  # stale() calls: a read that overlapped one is not trusted
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def stale(self) -> None:
        """Forget the cached value (this process appended an event)."""
        self._marks += 1
        self._read_at = -float("inf")

    async def newest(self) -> int:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._loop is not loop:
            self._lock, self._loop = asyncio.Lock(), loop
        async with self._lock:
            if time.monotonic() - self._read_at >= self.interval:
                marks = self._marks
                self._value = await self._newest() or 0
                self._read_at = time.monotonic() if marks == self._marks else -float("inf")
            return self._value


async def wait_by_polling(
    after: int,
    timeout: float,  # noqa: ASYNC109 (ServiceData.wait_events's API)
    read: Callable[[int], Awaitable[list[tuple[int, str]]]],
    poller: Poller,
    wakeups: Wakeups,
) -> list[tuple[int, str]]:
    """``read(after)`` once the store holds an event above ``after``, or [] at the deadline."""
    after = check_after(after)
    deadline = time.monotonic() + check_timeout(timeout)
    while True:
        found = await read(after)
        if found:
            return found
        while True:
            seen = wakeups.generation
            if await poller.newest() > after:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            await wakeups.sleep(min(remaining, poller.interval), seen)
