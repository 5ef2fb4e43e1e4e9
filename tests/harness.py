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
