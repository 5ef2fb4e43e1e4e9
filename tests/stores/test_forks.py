"""Stores in processes made by fork(): a pre-forking server (gunicorn --preload), a
multiprocessing pool. A child must never use a connection its parent opened (two processes on
one socket read each other's replies; SQLite forbids it outright), and nothing the child does
with what it inherited may end the parent's connections."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from harness import in_a_forked_child

from coatcheck import open_async_store
from coatcheck._async.stores.postgres import AsyncPostgresStore
from coatcheck._sync.stores.postgres import PostgresStore
from coatcheck._sync.stores.redis import RedisStore
from coatcheck.core.records import SessionRecord
from coatcheck.core.tokens import SessionKey, TokenCodec
from coatcheck.stores.sqlite import SQLiteStore

NOW = 1e9


def record(key: SessionKey) -> SessionRecord:
    return SessionRecord(key, "alice", "browser", NOW, NOW, NOW, NOW + 1e9, data={"k": 1})


def held(store: Any) -> list[Any]:
    """The connections a store keeps between calls (what a child would inherit)."""
    if isinstance(store, SQLiteStore):
        return list(store._all)
    if isinstance(store, PostgresStore | AsyncPostgresStore):
        return list(store._idle)
    return list(store._conn.lane._idle)


def sync_scenario(store: Any) -> None:
    _, key = TokenCodec(store.token_key()).new_token("alice")
    store.insert(record(key))
    assert store.load(key) is not None
    parents = held(store)
    assert parents, "the parent holds a connection between calls"

    def child() -> bool:
        if any(conn in held(store) for conn in parents):
            return False
        loaded = store.load(key)  # through connections of its own
        if isinstance(store, PostgresStore):
            for conn in parents:  # as the child's interpreter would at exit
                conn.close()
        return loaded is not None and loaded.data == {"k": 1}

    assert in_a_forked_child(child)
    if isinstance(store, PostgresStore):  # the child's clean-up did not end them
        for conn in parents:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    again = store.load(key)
    assert again is not None and again.data == {"k": 1}, "the parent's connection still works"


@pytest.mark.parametrize("kind", ["sqlite", "postgres", "redis"])
def test_a_forked_child_uses_connections_of_its_own(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if kind == "sqlite":
        store: Any = SQLiteStore(f"sqlite:///{tmp_path / 'sessions.db'}")
    elif kind == "postgres":
        store = PostgresStore(request.getfixturevalue("postgres_url"))
    else:
        store = RedisStore(request.getfixturevalue("redis_url"))
    try:
        sync_scenario(store)
    finally:
        store.close()


def test_a_forked_child_uses_connections_of_its_own_async_postgres(postgres_url: str) -> None:
    loop = asyncio.new_event_loop()
    store = AsyncPostgresStore(postgres_url)
    try:
        _, key = TokenCodec(loop.run_until_complete(store.token_key())).new_token("alice")
        loop.run_until_complete(store.insert(record(key)))
        assert loop.run_until_complete(store.load(key)) is not None
        parents = held(store)
        assert parents

        def child() -> bool:
            if any(conn in held(store) for conn in parents):
                return False
            loaded = asyncio.run(store.load(key))
            for conn in parents:  # as the child's interpreter would at exit
                asyncio.run(conn.close())
            return loaded is not None and loaded.data == {"k": 1}

        assert in_a_forked_child(child)

        async def probe(conn: Any) -> Any:
            return await (await conn.execute("SELECT 1")).fetchone()

        for conn in parents:  # the child's clean-up did not end them
            assert loop.run_until_complete(probe(conn)) == (1,)
        again = loop.run_until_complete(store.load(key))
        assert again is not None and again.data == {"k": 1}
    finally:
        loop.run_until_complete(store.close())
        loop.close()


def test_the_parents_connections_are_not_what_the_child_holds(tmp_path: Path) -> None:
    store = SQLiteStore(f"sqlite:///{tmp_path / 'sessions.db'}")
    try:
        _, key = TokenCodec(store.token_key()).new_token("alice")
        store.insert(record(key))
        parents = store._connect()

        def child() -> bool:
            return store._connect() is not parents and store._all == [store._connect()]

        assert in_a_forked_child(child)
        assert store._connect() is parents
    finally:
        store.close()


def test_a_forked_child_gets_worker_threads_of_its_own(tmp_path: Path) -> None:
    """The async face of SQLite runs on a thread pool; a child's executor that believed it
    still had its parent's threads would never run a call (it hung before this was fixed)."""
    import signal

    store = open_async_store(f"sqlite:///{tmp_path / 'sessions.db'}")
    _, key = TokenCodec(asyncio.run(store.token_key())).new_token("alice")
    asyncio.run(store.insert(record(key)))
    assert asyncio.run(store.load(key)) is not None  # the pool's threads are running

    def child() -> bool:
        signal.alarm(10)  # a hang ends the child, which then gives no answer
        loaded = asyncio.run(store.load(key))
        return loaded is not None and loaded.data == {"k": 1}

    try:
        assert in_a_forked_child(child)
        again = asyncio.run(store.load(key))
        assert again is not None and again.data == {"k": 1}
    finally:
        asyncio.run(store.close())
