"""The coalesced introspection look-ups (coatcheck.service.lookups): concurrent callers get
exactly what ``inspect`` gives them, in one store round trip per batch, on real stores."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from harness import CountingStore

from coatcheck import (
    AsyncSessionManager,
    FakeClock,
    Policy,
    StoreUnavailable,
    Verdict,
    open_async_store,
)
from coatcheck.core.session import Session
from coatcheck.service.lookups import CoalescedInspections
from coatcheck.stores.threaded import AsyncOverSync

pytestmark = pytest.mark.anyio

MINUTE = 60.0


@pytest.fixture(params=["postgres", "redis"])
async def sessions(
    request: pytest.FixtureRequest, clock: FakeClock
) -> AsyncIterator[AsyncSessionManager]:
    url = request.getfixturevalue(f"{request.param}_url")
    manager = AsyncSessionManager(open_async_store(url), Policy(bind_ip=True), clock=clock)
    yield manager
    await manager.close()


async def _logged_in(sessions: AsyncSessionManager, user: str, ip: str = "10.0.0.1") -> str:
    session = Session(None, client_ip=ip)
    return await sessions.login(session, user)


async def _mix(sessions: AsyncSessionManager, clock: FakeClock) -> list[tuple[str, str | None]]:
    """(token, client IP) of each kind a service is asked about."""
    expired = await _logged_in(sessions, "old")
    clock.advance(31 * MINUTE)  # past the default 30 min idle timeout
    live = [await _logged_in(sessions, f"user{i}") for i in range(4)]
    revoked = await _logged_in(sessions, "carol")
    assert await sessions.revoke(revoked)
    unknown, _ = await sessions.create("dave")
    await sessions.store.delete((await sessions.token_codec()).parse(unknown))  # no tombstone
    return [
        *((t, "10.0.0.1") for t in live),
        (live[0], "10.9.9.9"),  # the same token from another address
        (expired, None),
        (revoked, None),
        (unknown, None),
        ("junk", None),
    ]


async def test_concurrent_callers_get_what_inspect_gives(
    sessions: AsyncSessionManager, clock: FakeClock
) -> None:
    mix = await _mix(sessions, clock)
    expected = [await sessions.inspect(t, client_ip=ip, delete_expired=False) for t, ip in mix]
    assert [v for v, _ in expected] == [
        *[Verdict.VALID] * 4,
        Verdict.IP_MISMATCH,
        Verdict.EXPIRED_IDLE,
        Verdict.REVOKED,
        Verdict.UNKNOWN,
        Verdict.UNKNOWN,
    ]
    inspections = CoalescedInspections(sessions)
    answers = await asyncio.gather(*(inspections.inspect(t, ip) for t, ip in mix))
    assert answers == expected
    assert await sessions.inspect(mix[5][0]) == (Verdict.UNKNOWN, None)  # expired: deleted


async def test_a_store_error_reaches_every_caller_of_the_batch(
    redis_instance: Any, clock: FakeClock
) -> None:
    server = redis_instance()
    sessions = AsyncSessionManager(open_async_store(f"redis://{server.address}/0"), clock=clock)
    try:
        tokens = [await _logged_in(sessions, f"user{i}") for i in range(3)]
        inspections = CoalescedInspections(sessions)
        server.stop()
        errors = await asyncio.gather(
            *(inspections.inspect(t) for t in tokens), return_exceptions=True
        )
        assert all(isinstance(e, StoreUnavailable) for e in errors), errors
        assert all(e is errors[0] for e in errors)
        server.start()  # an empty server again (it keeps nothing on disk)
        fresh = await _logged_in(sessions, "back")
        answers = await asyncio.gather(*(inspections.inspect(t) for t in [*tokens, fresh]))
        assert [v for v, _ in answers] == [*[Verdict.UNKNOWN] * 3, Verdict.VALID]
    finally:
        await sessions.close()


@pytest.mark.parametrize("passes", [0, 1, 2, 3])
async def test_a_cancelled_caller_does_not_disturb_the_others(
    sessions: AsyncSessionManager, passes: int
) -> None:
    """Cancelled after ``passes`` loop passes: before its batch closed, or while the batch's
    look-up is under way."""
    tokens = [await _logged_in(sessions, f"user{i}") for i in range(3)]
    inspections = CoalescedInspections(sessions)
    calls = [asyncio.ensure_future(inspections.inspect(t, "10.0.0.1")) for t in tokens]
    for _ in range(passes):
        await asyncio.sleep(0)
    calls[1].cancel()
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(results[1], asyncio.CancelledError)
    assert [results[i][1].user_id for i in (0, 2)] == ["user0", "user2"]  # type: ignore[index]
    again = await asyncio.gather(*(inspections.inspect(t, "10.0.0.1") for t in tokens))
    assert [r.user_id for _, r in again if r] == ["user0", "user1", "user2"]


def test_one_round_trip_per_batch_of_at_most_max_batch_tokens() -> None:
    store = CountingStore()
    sessions = AsyncSessionManager(AsyncOverSync(store, threads=None))  # type: ignore[arg-type]
    inspections = CoalescedInspections(sessions, max_batch=2)

    async def run() -> list[Any]:
        tokens = [await _logged_in(sessions, f"user{i}") for i in range(5)]
        store.calls.clear()
        await asyncio.gather(*(inspections.inspect(t) for t in tokens[:2]))
        assert store.calls == ["load_many"]
        store.calls.clear()
        return await asyncio.gather(*(inspections.inspect(t) for t in tokens))

    answers = asyncio.run(run())
    assert store.calls == ["load_many", "load_many", "load"]  # 2 + 2 + 1
    assert [r.user_id for _, r in answers] == [f"user{i}" for i in range(5)]


def test_without_coalescing_each_call_is_a_plain_inspect() -> None:
    store = CountingStore()
    sessions = AsyncSessionManager(AsyncOverSync(store, threads=None))  # type: ignore[arg-type]
    inspections = CoalescedInspections(sessions, coalesce=False)

    async def run() -> list[Any]:
        tokens = [await _logged_in(sessions, f"user{i}") for i in range(3)]
        store.calls.clear()
        return await asyncio.gather(*(inspections.inspect(t) for t in [*tokens, "junk"]))

    answers = asyncio.run(run())
    assert store.calls == ["load"] * 3
    assert [r.user_id if r else v for v, r in answers] == [
        "user0",
        "user1",
        "user2",
        Verdict.UNKNOWN,
    ]
