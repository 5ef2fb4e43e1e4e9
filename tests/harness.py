"""Test helpers shared across test folders (import as ``from harness import ...``)."""

from __future__ import annotations

import asyncio
import gc
import inspect
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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

    READS = ("load", "load_many", "tombstone", "list_user", "count_active")
    # A manager reads the store's token key once, on first use: not a per-request call.
    ONCE = ("token_key", "use_tokens")

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
            if name not in self.ONCE:
                self.calls.append(name)
            if self.down and name != "close":
                raise StoreUnavailable("the test switched the store off")
            return attr(*args, **kwargs)

        return call

    def writes(self) -> list[str]:
        return [c for c in self.calls if c not in self.READS]


@contextmanager
def managers(api: str) -> Iterator[tuple[asyncio.AbstractEventLoop | None, list[Any]]]:
    """A private loop (for the async API) and a list of managers to close at the end."""
    loop = asyncio.new_event_loop() if api == "async" else None
    made: list[Any] = []
    try:
        yield loop, made
    finally:
        for manager in made:
            if loop is not None:
                loop.run_until_complete(manager.close())
            else:
                manager.close()
        if loop is not None:
            loop.close()


def logged_in(manager: Any, user: str = "alice", **data: Any) -> str:
    """Log a fresh browser session in as ``user`` holding ``data``; returns the token."""
    session = manager.load(None)
    session.update(data)
    return str(manager.login(session, user))


def alive(manager: Any, token: str) -> bool:
    return not manager.load(token).is_new


def in_a_forked_child(check: Callable[[], bool]) -> bool:
    """``check()`` run in a child made by fork(); its answer (False if it raised). Before
    leaving, the child drops and collects what the stores kept from its parent, as its
    interpreter would at exit, so that anything those objects do when closed happens before
    the parent looks."""
    from coatcheck.stores import forks

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        answer = b"0"
        try:
            answer = b"1" if check() else b"0"
            forks._kept.clear()
            gc.collect()
        finally:
            os.write(write_end, answer)
            os._exit(0)
    os.close(write_end)
    try:
        os.waitpid(pid, 0)
        return os.read(read_end, 1) == b"1"
    finally:
        os.close(read_end)
