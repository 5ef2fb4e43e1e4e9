"""One timer for many short operations that share a time limit (async stores only).

``asyncio.timeout`` arms and cancels an event-loop timer for every use: about 3.5 µs on
Python 3.11 (asyncio or uvloop), which is more than the rest of the client work of a Redis
command on a request's path. Every command of a Redis lane has the same limit, so deadlines
arrive in the order the commands start: the oldest live guard always expires first, and one
timer, armed for it, serves them all. Only when that timer fires is another armed (at most
once per limit while commands keep flowing).

An expired guard cancels its task and turns the cancellation into :class:`TimeoutError` on
the way out, as ``asyncio.timeout`` does (``Task.uncancel`` keeps an outside cancellation
intact).
"""

from __future__ import annotations

import asyncio
from types import TracebackType


class SharedTimeout:
    """``with shared.guard(): ...`` inside a task: TimeoutError after ``seconds`` (None: no
    limit)."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self._live: dict[_Guard, None] = {}  # in order of start, so of deadline
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the timer's

    def guard(self) -> _Guard:
        return _Guard(self)

    def _enter(self, guard: _Guard) -> None:
        self._live[guard] = None
        if self._timer is None or self._loop is not guard.loop:  # none yet, or a new loop
            self._loop = guard.loop
            self._timer = guard.loop.call_at(guard.deadline, self._expire)

    def _expire(self) -> None:
        """Cancel every guard past its deadline; re-arm for the oldest one left."""
        loop = self._loop
        assert loop is not None
        self._timer = None
        now = loop.time()
        for guard in list(self._live):
            if guard.deadline > now:
                self._timer = loop.call_at(guard.deadline, self._expire)
                return
            del self._live[guard]
            guard.expired = True
            guard.task.cancel()


class _Guard:
    __slots__ = ("cancelling", "deadline", "expired", "loop", "owner", "task")

    def __init__(self, owner: SharedTimeout) -> None:
        self.owner = owner
        self.expired = False

    def __enter__(self) -> None:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("SharedTimeout guards work inside a task")
        self.task = task
        seconds = self.owner.seconds
        if seconds is None:
            return
        self.cancelling = task.cancelling()
        self.loop = asyncio.get_running_loop()
        self.deadline = self.loop.time() + seconds
        self.owner._enter(self)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.owner._live.pop(self, None)
        if (
            self.expired
            and self.task.uncancel() <= self.cancelling
            and exc_type is asyncio.CancelledError
        ):
            raise TimeoutError(f"no reply within {self.owner.seconds} s") from exc
