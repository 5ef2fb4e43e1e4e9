"""No lost updates: many requests changing one session at the same moment all keep their change."""

from __future__ import annotations

import asyncio
import threading

from coatcheck import AsyncSessionManager, FakeClock, SessionManager, open_async_store, open_store

WRITERS = 50


def test_threads_writing_distinct_keys_all_survive(store_url: str) -> None:
    clock = FakeClock()
    manager = SessionManager(open_store(store_url), clock=clock)
    try:
        token, _ = manager.create("alice", data={"base": True})
        loaded = threading.Barrier(WRITERS)
        errors: list[BaseException] = []

        def writer(i: int) -> None:
            try:
                session = manager.load(token)
                loaded.wait()  # every writer holds the same stale copy before anyone saves
                session[f"key{i}"] = i
                manager.save(session)
            except BaseException as exc:  # surfaced below, with the others
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        final = manager.load(token)
        assert final.snapshot() == {"base": True, **{f"key{i}": i for i in range(WRITERS)}}
        assert final.record.version == 1 + WRITERS
    finally:
        manager.close()


def test_tasks_writing_distinct_keys_all_survive(store_url: str) -> None:
    async def scenario() -> None:
        manager = AsyncSessionManager(open_async_store(store_url), clock=FakeClock())
        try:
            token, _ = await manager.create("alice", data={"base": True})
            loaded = asyncio.Barrier(WRITERS)

            async def writer(i: int) -> None:
                session = await manager.load(token)
                await loaded.wait()
                session[f"key{i}"] = i
                await manager.save(session)

            await asyncio.gather(*(writer(i) for i in range(WRITERS)))
            final = await manager.load(token)
            assert final.snapshot() == {"base": True, **{f"key{i}": i for i in range(WRITERS)}}
            assert final.record.version == 1 + WRITERS
        finally:
            await manager.close()

    asyncio.run(scenario())
