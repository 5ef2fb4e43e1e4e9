"""Time as the policy sees it: seconds since the epoch, injectable so tests never sleep."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Anything that says what time it is, in float seconds since the Unix epoch."""

    def __call__(self) -> float: ...


def system_clock() -> float:
    """The real wall clock (what every store and policy decision uses by default)."""
    return time.time()


class FakeClock:
    """A clock that only moves when told to: the tests' way to cross a timeout without sleeping."""

    def __init__(self, start: float | None = None) -> None:
        # Starts at the real time: servers that expire keys on their own clock (Redis TTL)
        # then agree with the policy until the test moves this clock on.
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
