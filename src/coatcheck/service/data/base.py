"""The service's own small data (local users, service keys, login throttle counters,
revocation events) behind one async contract, on the same store URL as the sessions.

Every store kind implements :class:`ServiceData`; the domain classes (``service/users.py``,
``keys.py``, ``throttle.py``, ``events.py``) use nothing else, so the service keeps no state
of its own outside the store and any number of processes can share it.
"""

from __future__ import annotations

import math
import re
from typing import Final, Protocol

from ...core.errors import CoatcheckError

EVENTS_KEPT: Final = 10_000  # revocation events kept (at least this many, newest first)
MAX_KEY_LENGTH: Final = 200
MAX_VALUE_LENGTH: Final = 65_536
MAX_EVENTS_PER_READ: Final = 1_000
_KEY_RE: Final = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no spaces


class ServiceDataError(CoatcheckError, ValueError):
    """A key, value or argument the service data store refuses; the message says why."""


class ServiceData(Protocol):
    """Keys are printable ASCII without spaces (at most 200 characters), values text (at most
    64 KiB). Event ids are integers that only grow; at least the last ``EVENTS_KEPT`` events
    are kept. Every failure of the store's server is :class:`StoreUnavailable`."""

    url: str

    async def migrate(self) -> None:
        """Create the tables (or nothing, where there are none); safe to run again."""

    async def ping(self) -> None:
        """Return if the store answers; StoreUnavailable when it does not."""

    async def get(self, key: str) -> str | None: ...

    async def put(self, key: str, value: str, *, only_if_absent: bool = False) -> bool:
        """Store ``value``; with ``only_if_absent`` only if ``key`` is new (False otherwise)."""

    async def delete(self, key: str) -> bool:
        """True if the key existed."""

    async def scan(self, prefix: str) -> list[tuple[str, str]]:
        """Every (key, value) whose key starts with ``prefix``, sorted by key."""

    async def hit(self, key: str, window: float, now: float) -> int:
        """Count one hit in the fixed window ``floor(now / window)``; the window's count."""

    async def clear_hits(self, key: str) -> None: ...

    async def append_event(self, payload: str, now: float) -> int:
        """Append an event; its id, greater than every id before it."""

    async def events_after(self, after: int, limit: int = 100) -> list[tuple[int, str]]:
        """Up to ``limit`` kept events with ids above ``after``, oldest first."""

    async def oldest_event_id(self) -> int | None:
        """The oldest kept event's id (None: no events), for the event stream's reset rule."""

    async def newest_event_id(self) -> int | None:
        """The newest kept event's id (None: no events), where a new event stream starts.

        One cheap read whatever the log's length (never a walk from the oldest event)."""

    async def wait_events(self, after: int, timeout: float) -> list[tuple[int, str]]:  # noqa: ASYNC109 (spec 12's API)
        """``events_after(after)`` as soon as it is not empty, or [] after ``timeout`` s."""

    async def close(self) -> None:
        """Release connections and threads; safe to call more than once."""


def check_key(key: object) -> str:
    """``key`` if the contract allows it, else ServiceDataError."""
    if not isinstance(key, str) or len(key) > MAX_KEY_LENGTH or not _KEY_RE.fullmatch(key):
        raise ServiceDataError(
            f"service data keys are 1..{MAX_KEY_LENGTH} printable ASCII characters without "
            f"spaces, got {key!r:.60}"
        )
    return key


def check_prefix(prefix: object) -> str:
    """A scan prefix: a key or the empty string."""
    return "" if prefix == "" else check_key(prefix)


def prefix_range(prefix: str) -> tuple[str, str]:
    """Bounds ``low <= key < high`` of the keys starting with ``prefix`` (keys never hold
    DEL, 0x7f, so ``prefix + DEL`` is above them all), for SQL's index range scans."""
    return prefix, prefix + "\x7f"


def check_value(value: object) -> str:
    """Text of at most ``MAX_VALUE_LENGTH`` characters without NUL (PostgreSQL's text has none)."""
    if not isinstance(value, str) or len(value) > MAX_VALUE_LENGTH or "\x00" in value:
        raise ServiceDataError(
            f"service data values are text of at most {MAX_VALUE_LENGTH} characters without NUL"
        )
    return value


def check_window(window: object) -> float:
    if isinstance(window, bool) or not isinstance(window, int | float):
        raise ServiceDataError(f"a hit window is a number of seconds, got {window!r}")
    if not (math.isfinite(window) and window > 0):
        raise ServiceDataError(f"a hit window must be a positive number of seconds, got {window}")
    return float(window)


def window_number(window: float, now: float) -> int:
    """Which fixed window ``now`` falls in: windows start at whole multiples of ``window``."""
    return math.floor(now / window)


def window_end(window: float, now: float) -> float:
    """When the fixed window holding ``now`` ends."""
    return (window_number(window, now) + 1) * window


def check_limit(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ServiceDataError(f"limit must be a whole number >= 1, got {limit!r}")
    return min(limit, MAX_EVENTS_PER_READ)


def check_after(after: object) -> int:
    if isinstance(after, bool) or not isinstance(after, int) or after < 0:
        raise ServiceDataError(f"an event id is a whole number >= 0, got {after!r}")
    return after


def check_timeout(timeout: object) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise ServiceDataError(f"timeout must be a number of seconds, got {timeout!r}")
    if math.isnan(timeout) or timeout < 0:
        raise ServiceDataError(f"timeout must be >= 0 seconds, got {timeout}")
    return float(timeout)
