"""Single-flight refresh on every store: one refresh however many requests need it, renewed
while a slow provider answers, and fenced so that a holder whose lease was taken over cannot
write. Each "process" has a store object of its own (memory: one shared, it is in-process)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from coatcheck import AsyncSessionManager, SessionGone, open_async_store, open_store
from coatcheck._async.oidc.lease import AsyncRefreshLease
from coatcheck._sync.oidc.lease import RefreshLease
from coatcheck.oidc.record import (
    LEASE_KEY,
    OIDC_KEY,
    RefreshWaitExpired,
    needs_refresh,
    read_lease,
)

CALLERS = 8


def expired_tokens() -> dict[str, Any]:
    return {
        "iss": "https://op.example",
        "sub": "alice",
        "access_token": "at-1",
        "refresh_token": "rt-1",
        "expires_at": time.time() - 1,
    }


def refreshed(oidc: dict[str, Any], label: str) -> dict[str, Any]:
    return {
        **oidc,
        "access_token": f"at-{label}",
        "refresh_token": f"rt-{label}",
        "expires_at": time.time() + 3600,
    }


def needed(data: Any) -> bool:
    return needs_refresh(data.get(OIDC_KEY), 0, time.time())


class Stores:
    """Store objects on one test store: one per simulated process (memory: one for all)."""

    def __init__(self, url: str, sync: bool) -> None:
        self.url = url
        self.sync = sync
        self.opened: list[Any] = []

    def open(self) -> Any:
        if self.opened and self.url == "memory://":
            return self.opened[0]
        store = open_store(self.url) if self.sync else open_async_store(self.url)
        self.opened.append(store)
        return store


def run_async(url: str, scenario: Callable[[Stores], Awaitable[None]]) -> None:
    """Run ``scenario`` on one event loop with async stores on ``url``, closed on that loop."""

    async def main() -> None:
        stores = Stores(url, sync=False)
        try:
            await scenario(stores)
        finally:
            for store in stores.opened:
                await store.close()

    asyncio.run(main())


@pytest.fixture
def sync_stores(store_url: str) -> Iterator[Stores]:
    stores = Stores(store_url, sync=True)
    yield stores
    for store in stores.opened:
        store.close()


async def new_session(store: Any, data: dict[str, Any]) -> Any:
    manager = AsyncSessionManager(store)
    _, record = await manager.create("alice", data=data)
    return record.key


def test_concurrent_tasks_refresh_once(store_url: str) -> None:
    async def scenario(async_stores: Stores) -> None:
        key = await new_session(async_stores.open(), {OIDC_KEY: expired_tokens(), "cart": 3})
        calls: list[str] = []

        async def slow_refresh(oidc: dict[str, Any]) -> dict[str, Any]:
            calls.append(oidc["refresh_token"])
            await asyncio.sleep(0.3)
            return refreshed(oidc, "2")

        leases = [AsyncRefreshLease(async_stores.open(), lease=5, wait=30) for _ in range(3)]
        records = await asyncio.gather(
            *(leases[i % 3].refresh(key, needed, slow_refresh) for i in range(CALLERS))
        )
        assert calls == ["rt-1"]
        assert {r.data[OIDC_KEY]["access_token"] for r in records} == {"at-2"}
        stored = await async_stores.open().load(key)
        assert stored.data[OIDC_KEY]["refresh_token"] == "rt-2"
        assert stored.data["cart"] == 3
        assert LEASE_KEY not in stored.data

    run_async(store_url, scenario)


def threads_refreshing(
    stores: Stores, callers: int, refresh: Callable[[dict[str, Any]], dict[str, Any]]
) -> list[Any]:
    """``callers`` threads over three store objects refresh one expired session at once;
    their records."""
    _, record = open_manager(stores.open()).create("alice", data={OIDC_KEY: expired_tokens()})
    leases = [RefreshLease(stores.open(), lease=1, wait=30) for _ in range(3)]
    results: list[Any] = []
    errors: list[BaseException] = []
    start = threading.Barrier(callers)

    def caller(i: int) -> None:
        try:
            start.wait()
            results.append(leases[i % 3].refresh(record.key, needed, refresh))
        except BaseException as exc:
            errors.append(exc)

    run_threads(caller, callers)
    assert errors == []
    return results


def test_concurrent_threads_refresh_once(sync_stores: Stores) -> None:
    calls: list[str] = []

    def slow_refresh(oidc: dict[str, Any]) -> dict[str, Any]:
        calls.append(oidc["refresh_token"])
        time.sleep(0.3)
        return refreshed(oidc, "2")

    results = threads_refreshing(sync_stores, CALLERS, slow_refresh)
    assert calls == ["rt-1"]
    assert {r.data[OIDC_KEY]["access_token"] for r in results} == {"at-2"}


def open_manager(store: Any) -> Any:
    from coatcheck import SessionManager

    return SessionManager(store)


def run_threads(target: Callable[[int], None], count: int) -> None:
    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_provider_slower_than_the_lease_still_refreshes_once(store_url: str) -> None:
    """The lease (1 s) is renewed every third of it while the refresh takes three times as
    long, so the waiters never see it lapse and never refresh themselves."""

    async def scenario(async_stores: Stores) -> None:
        key = await new_session(async_stores.open(), {OIDC_KEY: expired_tokens()})
        calls: list[str] = []

        async def slower_than_lease(oidc: dict[str, Any]) -> dict[str, Any]:
            calls.append(oidc["refresh_token"])
            await asyncio.sleep(3)
            return refreshed(oidc, "2")

        leases = [AsyncRefreshLease(async_stores.open(), lease=1, wait=30) for _ in range(2)]
        records = await asyncio.gather(
            *(leases[i % 2].refresh(key, needed, slower_than_lease) for i in range(4))
        )
        assert calls == ["rt-1"]
        assert {r.data[OIDC_KEY]["refresh_token"] for r in records} == {"rt-2"}

    run_async(store_url, scenario)


def test_threads_renew_the_lease_too(sync_stores: Stores) -> None:
    """The blocking face renews from a helper thread: a refresh three times the lease."""
    calls: list[str] = []

    def slower_than_lease(oidc: dict[str, Any]) -> dict[str, Any]:
        calls.append(oidc["refresh_token"])
        time.sleep(3)
        return refreshed(oidc, "2")

    results = threads_refreshing(sync_stores, 3, slower_than_lease)
    assert calls == ["rt-1"]
    assert {r.data[OIDC_KEY]["refresh_token"] for r in results} == {"rt-2"}


def test_a_holder_whose_lease_was_taken_over_cannot_write(store_url: str) -> None:
    """A paused holder (renewal off, its call stuck past the lease) loses the lease to the next
    request; when it wakes, its result is dropped and it reads the new holder's tokens."""

    async def scenario(async_stores: Stores) -> None:
        store = async_stores.open()
        key = await new_session(store, {OIDC_KEY: expired_tokens()})
        paused = AsyncRefreshLease(async_stores.open(), lease=0.5, wait=30, renew=False)
        started, wake = asyncio.Event(), asyncio.Event()

        async def stuck(oidc: dict[str, Any]) -> dict[str, Any]:
            started.set()
            await wake.wait()
            return refreshed(oidc, "paused")

        async def prompt(oidc: dict[str, Any]) -> dict[str, Any]:
            return refreshed(oidc, "next")

        holder = asyncio.create_task(paused.refresh(key, needed, stuck))
        await started.wait()
        lease = read_lease((await store.load(key)).data)
        assert lease is not None
        await asyncio.sleep(max(0.0, lease.until - time.time()) + 0.05)  # until it lapsed
        assert lease.lapsed(time.time())
        taker = AsyncRefreshLease(async_stores.open(), lease=5, wait=30)
        taken = await taker.refresh(key, needed, prompt)
        assert taken.data[OIDC_KEY]["access_token"] == "at-next"
        wake.set()
        woken = await holder
        assert woken.data[OIDC_KEY]["access_token"] == "at-next"
        stored = await store.load(key)
        assert stored.data[OIDC_KEY]["refresh_token"] == "rt-next"
        assert LEASE_KEY not in stored.data

    run_async(store_url, scenario)


def test_a_failed_refresh_releases_the_lease(store_url: str) -> None:
    async def scenario(async_stores: Stores) -> None:
        store = async_stores.open()
        key = await new_session(store, {OIDC_KEY: expired_tokens()})
        lease = AsyncRefreshLease(store, lease=30, wait=30)

        async def refused(oidc: dict[str, Any]) -> dict[str, Any]:
            raise RuntimeError("provider said no")

        with pytest.raises(RuntimeError, match="provider said no"):
            await lease.refresh(key, needed, refused)
        stored = await store.load(key)
        assert LEASE_KEY not in stored.data
        assert stored.data[OIDC_KEY]["refresh_token"] == "rt-1"

        async def works(oidc: dict[str, Any]) -> dict[str, Any]:
            return refreshed(oidc, "2")

        record = await lease.refresh(key, needed, works)
        assert record.data[OIDC_KEY]["access_token"] == "at-2"

    run_async(store_url, scenario)


def test_a_waiter_gives_up_after_refresh_wait(store_url: str) -> None:
    async def scenario(async_stores: Stores) -> None:
        store = async_stores.open()
        key = await new_session(store, {OIDC_KEY: expired_tokens()})
        started, finish = asyncio.Event(), asyncio.Event()

        async def blocked(oidc: dict[str, Any]) -> dict[str, Any]:
            started.set()
            await finish.wait()
            return refreshed(oidc, "2")

        holder = asyncio.create_task(
            AsyncRefreshLease(store, lease=30, wait=30).refresh(key, needed, blocked)
        )
        await started.wait()
        impatient = AsyncRefreshLease(async_stores.open(), lease=30, wait=0.3)
        with pytest.raises(RefreshWaitExpired, match="refresh_wait"):
            await impatient.refresh(key, needed, blocked)
        finish.set()
        assert (await holder).data[OIDC_KEY]["access_token"] == "at-2"

    run_async(store_url, scenario)


def test_fresh_tokens_are_not_refreshed_and_nothing_is_written(store_url: str) -> None:
    async def scenario(async_stores: Stores) -> None:
        store = async_stores.open()
        fresh = refreshed(expired_tokens(), "1")
        key = await new_session(store, {OIDC_KEY: fresh})
        before = (await store.load(key)).version

        async def never(oidc: dict[str, Any]) -> dict[str, Any]:
            raise AssertionError("no refresh was needed")

        record = await AsyncRefreshLease(store, lease=5, wait=5).refresh(key, needed, never)
        assert record.version == before
        assert (await store.load(key)).version == before

    run_async(store_url, scenario)


def test_a_session_ended_during_the_refresh_is_gone(store_url: str) -> None:
    async def scenario(async_stores: Stores) -> None:
        store = async_stores.open()
        key = await new_session(store, {OIDC_KEY: expired_tokens()})

        async def logged_out_meanwhile(oidc: dict[str, Any]) -> dict[str, Any]:
            await store.delete(key)
            return refreshed(oidc, "2")

        with pytest.raises(SessionGone):
            await AsyncRefreshLease(store, lease=5, wait=5).refresh(
                key, needed, logged_out_meanwhile
            )

    run_async(store_url, scenario)
