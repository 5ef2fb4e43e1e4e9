"""The shared timer behind the Redis lane's per-command deadline."""

from __future__ import annotations

import asyncio

import pytest

from coatcheck.stores.deadline import SharedTimeout


async def _hang(shared: SharedTimeout) -> None:
    with shared.guard():
        await asyncio.Event().wait()  # never set: only the deadline ends this


async def _quick(shared: SharedTimeout) -> str:
    with shared.guard():
        await asyncio.sleep(0)
        return "done"


def test_an_operation_past_its_deadline_raises_timeout_error() -> None:
    shared = SharedTimeout(0.05)
    with pytest.raises(TimeoutError, match=r"no reply within 0\.05 s"):
        asyncio.run(_hang(shared))


def test_only_the_operations_that_overrun_time_out() -> None:
    async def main() -> list[object]:
        shared = SharedTimeout(0.05)
        jobs = [_quick(shared), _hang(shared), _quick(shared), _hang(shared), _quick(shared)]
        return await asyncio.gather(*jobs, return_exceptions=True)

    results = asyncio.run(main())
    assert results[0::2] == ["done", "done", "done"]
    assert all(isinstance(r, TimeoutError) for r in results[1::2])


def test_operations_keep_working_after_one_timed_out() -> None:
    async def main() -> str:
        shared = SharedTimeout(0.05)
        with pytest.raises(TimeoutError):
            await _hang(shared)
        with pytest.raises(TimeoutError):  # the timer was armed again for the next one
            await _hang(shared)
        return await _quick(shared)

    assert asyncio.run(main()) == "done"


def test_a_cancellation_from_outside_stays_a_cancellation() -> None:
    async def main() -> None:
        shared = SharedTimeout(60)
        task = asyncio.create_task(_hang(shared))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


def test_one_instance_serves_event_loops_one_after_another() -> None:
    """Tests (and some apps) run a new event loop per job: each gets its own timer."""
    shared = SharedTimeout(0.05)
    assert asyncio.run(_quick(shared)) == "done"
    with pytest.raises(TimeoutError):
        asyncio.run(_hang(shared))
    with pytest.raises(TimeoutError):
        asyncio.run(_hang(shared))


def test_no_limit_never_times_out() -> None:
    async def main() -> str:
        shared = SharedTimeout(None)
        with shared.guard():
            await asyncio.sleep(0.01)
        return await _quick(shared)

    assert asyncio.run(main()) == "done"


def test_a_guard_needs_a_task() -> None:
    with pytest.raises(RuntimeError), SharedTimeout(1).guard():  # no running loop
        pass
