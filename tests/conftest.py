"""Fixtures shared by every test: stores by URL, both manager APIs, an injected clock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from harness import SyncView, managers

from coatcheck import (
    AsyncSessionManager,
    FakeClock,
    Policy,
    SessionManager,
    open_async_store,
    open_store,
)
from coatcheck.stores.threaded import AsyncOverSync

pytest_plugins = ["fixtures_postgres", "fixtures_redis"]

STORE_KINDS = ["memory", "sqlite", "postgres", "redis", "cluster"]


@pytest.fixture(params=STORE_KINDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """An isolated, empty store of each kind (server stores get a private table or prefix)."""
    kind = request.param
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/sessions.db"
    if kind == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    if kind == "redis":
        return str(request.getfixturevalue("redis_url"))
    return str(request.getfixturevalue("redis_cluster_url"))


@pytest.fixture
def clock() -> FakeClock:
    """Real time, whole seconds: servers with their own clock (Redis TTL) agree with it, and
    stamps serialize to the same length in every run."""
    return FakeClock(float(int(time.time())))


@pytest.fixture(params=["sync", "async"])
def api(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_manager(store_url: str, api: str, clock: FakeClock) -> Iterator[Callable[..., Any]]:
    """Builds managers on the test's store; every manager built sees the same sessions."""
    with managers(api) as (loop, made):
        yield _manager_factory(store_url, clock, loop, made)


def _manager_factory(
    store_url: str, clock: FakeClock, loop: asyncio.AbstractEventLoop | None, made: list[Any]
) -> Callable[..., Any]:
    # A memory store is private to its instance: share one so "several managers" still works.
    shared = open_store(store_url) if store_url == "memory://" else None

    def make(policy: Policy | None = None, **options: Any) -> Any:
        if loop is None:
            store = shared or open_store(store_url)
            manager: Any = SessionManager(store, policy, clock=clock, **options)
            made.append(manager)
            return manager
        astore = AsyncOverSync(shared, threads=None) if shared else open_async_store(store_url)
        made.append(AsyncSessionManager(astore, policy, clock=clock, **options))
        return SyncView(made[-1], loop)

    return make


@pytest.fixture
def manager(make_manager: Callable[..., Any]) -> Any:
    return make_manager()
