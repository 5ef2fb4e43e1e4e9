"""Test helpers shared across test folders (import as ``from harness import ...``)."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any


class SyncView:
    """Calls an async object's methods as if they were synchronous, on one private loop,
    so one test body exercises both the sync and the async API."""

    def __init__(self, target: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._target = target
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if name == "store":
            return SyncView(attr, self._loop)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)
            if inspect.isawaitable(result):
                return self._loop.run_until_complete(result)
            return result

        return call


class CountingStore:
    """A real memory store that records every call and can be switched off: a down store
    raises StoreUnavailable for everything but ``close``, exactly as a server store would."""

    READS = ("load", "list_user", "count_active")

    def __init__(self) -> None:
        from coatcheck.stores.memory import MemoryStore

        self.inner = MemoryStore()
        self.url = self.inner.url
        self.calls: list[str] = []
        self.down = False

    def __getattr__(self, name: str) -> Any:
        from coatcheck import StoreUnavailable

        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            if self.down and name != "close":
                raise StoreUnavailable("the test switched the store off")
            return attr(*args, **kwargs)

        return call

    def writes(self) -> list[str]:
        return [c for c in self.calls if c not in self.READS]
