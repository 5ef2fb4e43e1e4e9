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

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
