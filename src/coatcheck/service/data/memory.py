"""``memory://``: the service data in this process only (tests, demos); gone on exit."""

from __future__ import annotations

import bisect
import threading
import time

from .base import (
    EVENTS_KEPT,
    check_after,
    check_key,
    check_limit,
    check_prefix,
    check_timeout,
    check_value,
    check_window,
    window_number,
)
from .waiting import Wakeups


class MemoryServiceData:
    """Dicts behind a lock; wait_events wakes the moment an event is appended."""

    def __init__(self, url: str = "memory://", *, events_kept: int = EVENTS_KEPT) -> None:
        self.url = url
        self.events_kept = events_kept
        self._lock = threading.Lock()
        self._kv: dict[str, str] = {}
        self._hits: dict[str, tuple[int, int]] = {}  # key -> (window number, count)
        self._events: list[tuple[int, str]] = []
        self._last_id = 0
        self._wakeups = Wakeups()

    async def migrate(self) -> None:
        return None

    async def ping(self) -> None:
        return None

    async def get(self, key: str) -> str | None:
        return self._kv.get(check_key(key))

    async def put(self, key: str, value: str, *, only_if_absent: bool = False) -> bool:
        check_key(key)
        check_value(value)
        with self._lock:
            if only_if_absent and key in self._kv:
                return False
            self._kv[key] = value
            return True

    async def delete(self, key: str) -> bool:
        with self._lock:
            return self._kv.pop(check_key(key), None) is not None

    async def scan(self, prefix: str) -> list[tuple[str, str]]:
        check_prefix(prefix)
        with self._lock:
            return sorted((k, v) for k, v in self._kv.items() if k.startswith(prefix))

    async def hit(self, key: str, window: float, now: float) -> int:
        number = window_number(check_window(window), now)
        with self._lock:
            held, count = self._hits.get(check_key(key), (number, 0))
            count = count + 1 if held == number else 1
            self._hits[key] = (number, count)
            return count

    async def clear_hits(self, key: str) -> None:
        with self._lock:
            self._hits.pop(check_key(key), None)

    async def append_event(self, payload: str, now: float) -> int:
        check_value(payload)
        with self._lock:
            self._last_id += 1
            self._events.append((self._last_id, payload))
            del self._events[: max(0, len(self._events) - self.events_kept)]
            event_id = self._last_id
        self._wakeups.wake()
        return event_id

    async def events_after(self, after: int, limit: int = 100) -> list[tuple[int, str]]:
        after, limit = check_after(after), check_limit(limit)
        with self._lock:
            start = bisect.bisect_right(self._events, after, key=lambda event: event[0])
            return self._events[start : start + limit]

    async def oldest_event_id(self) -> int | None:
        with self._lock:
            return self._events[0][0] if self._events else None

    async def newest_event_id(self) -> int | None:
        with self._lock:
            return self._events[-1][0] if self._events else None

    async def wait_events(self, after: int, timeout: float) -> list[tuple[int, str]]:  # noqa: ASYNC109 (spec 12's API)
        deadline = time.monotonic() + check_timeout(timeout)
        while True:
            seen = self._wakeups.generation
            found = await self.events_after(after)
            remaining = deadline - time.monotonic()
            if found or remaining <= 0:
                return found
            await self._wakeups.sleep(remaining, seen)

    async def close(self) -> None:
        return None
