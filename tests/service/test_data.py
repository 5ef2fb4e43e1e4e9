"""The ServiceData contract, one suite over every store kind (memory, SQLite, PostgreSQL,
Redis, Redis Cluster); its fixtures also serve tests/service/test_users_keys.py."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import free_port

from coatcheck.core.errors import ConfigError, StoreUnavailable
from coatcheck.service.data import ServiceData, ServiceDataError, open_service_data

KINDS = ["memory", "sqlite", "postgres", "redis", "cluster"]


def drop_service_tables(url: str) -> None:
    """Drop the PostgreSQL tables a test's service data made (derived from its table option)."""
    import psycopg
    from psycopg import sql

    from coatcheck.service.data.postgres import service_tables
    from coatcheck.stores.postgres.url import parse_url

    options = parse_url(url)
    names = [sql.Identifier(name) for name in service_tables(options.table)]
    with psycopg.connect(options.conninfo, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.SQL(", ").join(names)))


def url_for(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL of ``kind`` that no other test uses (network fixtures clean up after)."""
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/service.db"
    if kind == "postgres":
        url = str(request.getfixturevalue("postgres_url"))
        request.addfinalizer(lambda: drop_service_tables(url))
        return url
    if kind == "redis":
        return str(request.getfixturevalue("redis_url"))
    return str(request.getfixturevalue("redis_cluster_url"))


class Opened:
    """Service data objects opened by a test, on one event loop, all closed at its end."""

    def __init__(self, url: str, runner: asyncio.Runner) -> None:
        self.url = url
        self.runner = runner
        self.made: list[ServiceData] = []

    def open(self, **options: Any) -> ServiceData:
        data = open_service_data(self.url, **options)
        self.made.append(data)
        return data

    def run(self, coro: Any) -> Any:
        return self.runner.run(coro)


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as runner:
        yield runner


@pytest.fixture(params=KINDS)
def opened(
    request: pytest.FixtureRequest, tmp_path: Path, runner: asyncio.Runner
) -> Iterator[Opened]:
    made = Opened(url_for(request.param, request, tmp_path), runner)
    yield made
    for data in made.made:
        runner.run(data.close())


def test_get_put_delete(opened: Opened) -> None:
    data = opened.open()

    async def scenario() -> None:
        await data.migrate()
        await data.ping()
        assert await data.get("user:alice") is None
        assert await data.put("user:alice", "one") is True
        assert await data.get("user:alice") == "one"
        assert await data.put("user:alice", "two") is True
        assert await data.get("user:alice") == "two"
        assert await data.put("user:alice", "three", only_if_absent=True) is False
        assert await data.get("user:alice") == "two"
        assert await data.put("user:bob", "b", only_if_absent=True) is True
        assert await data.get("user:bob") == "b"
        assert await data.delete("user:alice") is True
        assert await data.delete("user:alice") is False
        assert await data.get("user:alice") is None
        assert await data.put("user:alice", "again", only_if_absent=True) is True
        assert await data.get("user:alice") == "again"

    opened.run(scenario())


def test_values_round_trip_unchanged(opened: Opened) -> None:
    data = opened.open()
    value = '{"name": "ünï", "hash": "$argon2id$v=19$..."}\n\t' + "x" * 5000

    async def scenario() -> None:
        assert await data.put("k", value)
        assert await data.get("k") == value
        assert await data.put("empty", "")
        assert await data.get("empty") == ""

    opened.run(scenario())


def test_scan_returns_prefix_sorted_by_key(opened: Opened) -> None:
    data = opened.open()
    keys = ["user:b", "user:a", "user:", "users:x", "use", "user:a:b", "user:%", "user:_", "zz"]

    async def scenario() -> None:
        for i, key in enumerate(keys):
            await data.put(key, f"v{i}")
        wanted = sorted((k, f"v{i}") for i, k in enumerate(keys) if k.startswith("user:"))
        assert await data.scan("user:") == wanted
        assert await data.scan("user:a") == [("user:a", "v1"), ("user:a:b", "v5")]
        assert await data.scan("nothing:") == []
        assert await data.scan("") == sorted((k, f"v{i}") for i, k in enumerate(keys))
        await data.delete("user:a")
        assert [k for k, _ in await data.scan("user:a")] == ["user:a:b"]

    opened.run(scenario())


def test_scan_treats_pattern_characters_literally(opened: Opened) -> None:
    data = opened.open()

    async def scenario() -> None:
        for key in ["a*b", "a*c", "axb", "a?b", "a[b]", "a\\b", "a%b", "a_b"]:
            await data.put(key, key)
        assert [k for k, _ in await data.scan("a*")] == ["a*b", "a*c"]
        assert [k for k, _ in await data.scan("a?")] == ["a?b"]
        assert [k for k, _ in await data.scan("a[")] == ["a[b]"]
        assert [k for k, _ in await data.scan("a\\")] == ["a\\b"]
        assert [k for k, _ in await data.scan("a%")] == ["a%b"]
        assert [k for k, _ in await data.scan("a_")] == ["a_b"]

    opened.run(scenario())


@pytest.mark.parametrize("key", ["", "has space", "x" * 201, "tab\tkey", "ünicode", 7, None])
def test_bad_keys_are_refused(opened: Opened, key: Any) -> None:
    data = opened.open()
    with pytest.raises(ServiceDataError, match="keys are"):
        opened.run(data.put(key, "v"))
    with pytest.raises(ServiceDataError, match="keys are"):
        opened.run(data.get(key))


def test_hits_count_per_fixed_window(opened: Opened) -> None:
    data = opened.open()
    now = 1_700_000_100.0  # window 300 s: [1_700_000_100, 1_700_000_400)

    async def scenario() -> None:
        assert [await data.hit("login:a", 300, now + i) for i in range(3)] == [1, 2, 3]
        assert await data.hit("login:b", 300, now) == 1
        assert await data.hit("login:a", 300, now + 299.5) == 4
        assert await data.hit("login:b", 300, now + 299.5) == 2
        assert await data.hit("login:a", 300, now + 300) == 1  # the next window
        assert await data.hit("login:a", 300, now + 301) == 2
        await data.clear_hits("login:a")
        assert await data.hit("login:a", 300, now + 302) == 1
        assert await data.hit("login:b", 300, now + 303) == 1
        await data.clear_hits("never-hit")

    opened.run(scenario())


@pytest.mark.parametrize("value", ["nul\x00inside", "x" * 65_537, None, b"bytes"])
def test_bad_values_are_refused(opened: Opened, value: Any) -> None:
    data = opened.open()
    with pytest.raises(ServiceDataError, match="values are text"):
        opened.run(data.put("k", value))
    with pytest.raises(ServiceDataError, match="values are text"):
        opened.run(data.append_event(value, 1_700_000_000.0))
    assert opened.run(data.get("k")) is None


@pytest.mark.parametrize("window", [0, -1, float("nan"), float("inf"), "300", True])
def test_bad_windows_are_refused(opened: Opened, window: Any) -> None:
    data = opened.open()
    with pytest.raises(ServiceDataError, match="window"):
        opened.run(data.hit("k", window, 1_700_000_000.0))


def test_events_in_order(opened: Opened) -> None:
    data = opened.open()

    async def scenario() -> None:
        assert await data.oldest_event_id() is None
        assert await data.newest_event_id() is None
        assert await data.events_after(0) == []
        ids = [await data.append_event(f"e{i}", 1_700_000_000.0 + i) for i in range(5)]
        assert ids == sorted(set(ids))
        assert ids[0] >= 1
        assert await data.events_after(0) == [(i, f"e{n}") for n, i in enumerate(ids)]
        assert await data.events_after(ids[1]) == [(i, f"e{n}") for n, i in enumerate(ids)][2:]
        assert await data.events_after(ids[1], limit=2) == [(ids[2], "e2"), (ids[3], "e3")]
        assert await data.events_after(ids[-1]) == []
        assert await data.oldest_event_id() == ids[0]
        assert await data.newest_event_id() == ids[-1]

    opened.run(scenario())


def test_event_ids_grow_across_openers(opened: Opened) -> None:
    first, second = opened.open(), opened.open()
    if opened.url == "memory://":
        second = first  # a memory store lives in its object

    async def scenario() -> None:
        seen = []
        for i in range(6):
            seen.append(await (first, second)[i % 2].append_event(f"e{i}", 1_700_000_000.0))
        assert seen == sorted(set(seen))
        assert [payload for _, payload in await second.events_after(0)] == [
            f"e{i}" for i in range(6)
        ]

    opened.run(scenario())


def test_old_events_are_trimmed(opened: Opened) -> None:
    kept = 5
    data = opened.open(events_kept=kept)

    async def scenario() -> None:
        ids = [await data.append_event(f"e{i}", 1_700_000_000.0) for i in range(300)]
        left = await data.events_after(0, limit=1000)
        oldest = await data.oldest_event_id()
        assert oldest is not None
        assert oldest > ids[0]
        assert left[0][0] == oldest
        assert [event_id for event_id, _ in left] == ids[ids.index(oldest) :]
        assert len(left) >= kept
        if not opened.url.startswith("redis"):  # Redis trims whole stream nodes (MAXLEN ~)
            assert len(left) == kept

    opened.run(scenario())


def test_newest_event_id_empty_appended_and_trimmed(opened: Opened) -> None:
    kept = 5
    data = opened.open(events_kept=kept)
    reader = opened.open(events_kept=kept) if opened.url != "memory://" else data

    async def scenario() -> None:
        assert await data.newest_event_id() is None
        first = await data.append_event("e0", 1_700_000_000.0)
        assert await data.newest_event_id() == first
        assert await data.oldest_event_id() == first
        ids = [first] + [await data.append_event(f"e{i}", 1_700_000_000.0) for i in range(1, 300)]
        assert await data.newest_event_id() == ids[-1]
        assert await reader.newest_event_id() == ids[-1]  # another opener sees the same
        oldest = await data.oldest_event_id()
        assert oldest is not None and oldest > ids[0]  # trimmed, the newest kept
        assert (await data.events_after(ids[-2]))[-1][0] == await data.newest_event_id()

    opened.run(scenario())


def test_wait_returns_kept_events_at_once(opened: Opened) -> None:
    data = opened.open()

    async def scenario() -> None:
        first = await data.append_event("e1", 1_700_000_000.0)
        found = await asyncio.wait_for(data.wait_events(0, 600), 30)
        assert found == [(first, "e1")]

    opened.run(scenario())


def test_wait_returns_when_another_task_appends(opened: Opened) -> None:
    waiter, writer = opened.open(), opened.open()
    if opened.url == "memory://":
        writer = waiter

    async def scenario() -> None:
        last = await writer.append_event("before", 1_700_000_000.0)
        waiting = asyncio.create_task(waiter.wait_events(last, 600))
        await asyncio.sleep(0.3)  # the waiter is blocked by now (it returns nothing before)
        assert not waiting.done()
        new = await writer.append_event("after", 1_700_000_001.0)
        assert await asyncio.wait_for(waiting, 30) == [(new, "after")]

    opened.run(scenario())


def test_wait_times_out_with_nothing(opened: Opened) -> None:
    data = opened.open()

    async def scenario() -> None:
        last = await data.append_event("only", 1_700_000_000.0)
        assert await data.wait_events(last, 0.3) == []
        assert await data.wait_events(last, 0) == []

    opened.run(scenario())


def test_unknown_scheme_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown store scheme"):
        open_service_data("mysql://localhost/db")


def test_sqlite_in_a_missing_directory_is_a_config_error(tmp_path: Path) -> None:
    data = open_service_data(f"sqlite:///{tmp_path}/missing/service.db")

    async def scenario() -> None:
        try:
            await data.ping()
        finally:
            await data.close()

    with pytest.raises(ConfigError, match="does not exist"):
        asyncio.run(scenario())


def _refused(url: str) -> None:
    data = open_service_data(url)

    async def scenario() -> None:
        try:
            for call in (data.ping(), data.get("k"), data.put("k", "v"), data.events_after(0)):
                with pytest.raises(StoreUnavailable, match="unavailable"):
                    await call
        finally:
            await data.close()

    asyncio.run(scenario())


def test_postgres_refused_port_is_store_unavailable() -> None:
    _refused(f"postgresql://postgres@127.0.0.1:{free_port()}/test?timeout=2")


def test_redis_refused_port_is_store_unavailable() -> None:
    _refused(f"redis://127.0.0.1:{free_port()}/0")


def test_cluster_refused_seed_is_store_unavailable() -> None:
    _refused(f"redis+cluster://127.0.0.1:{free_port()}")


@pytest.mark.fault
def test_redis_stopped_then_restarted(redis_instance: Any) -> None:
    server = redis_instance()
    data = open_service_data(f"redis://127.0.0.1:{server.port}/0?socket_timeout=1")

    async def scenario() -> None:
        try:
            assert await data.put("k", "v")
            first = await data.append_event("e", 1_700_000_000.0)
            server.stop()
            with pytest.raises(StoreUnavailable, match=f"127.0.0.1:{server.port}"):
                await data.get("k")
            with pytest.raises(StoreUnavailable):
                await data.wait_events(first, 5)
            with pytest.raises(StoreUnavailable):
                await data.hit("h", 60, 1_700_000_000.0)
            server.start()  # empty: no persistence
            assert await data.get("k") is None
            assert await data.put("k", "back")
            assert await data.get("k") == "back"
        finally:
            await data.close()

    asyncio.run(scenario())


@pytest.mark.fault
def test_postgres_stopped_server_is_store_unavailable(postgres_instance: Any) -> None:
    server = postgres_instance()
    data = open_service_data(server.url(timeout=2))

    async def scenario() -> None:
        try:
            await data.migrate()
            assert await data.put("k", "v")
            server.stop()
            with pytest.raises(StoreUnavailable, match="unavailable"):
                await data.get("k")
            with pytest.raises(StoreUnavailable, match="unavailable"):
                await data.append_event("e", 1_700_000_000.0)
            server.start()
            assert await data.get("k") == "v"
        finally:
            await data.close()

    asyncio.run(scenario())
