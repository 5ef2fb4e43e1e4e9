"""Markers (small named values with a lifetime), run against every store through both APIs.

Markers live on the store's own clock (the server's for PostgreSQL and Redis), not on a
manager's: expiry is crossed with a short real lifetime and then *waited for* by asking the
store until it answers "absent" (a timeout only guards against a hang), never by sleeping a
guessed time. Purge is driven by the ``now`` it is given, far from any lifetime's edge.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
import redis.cluster
from fixtures_postgres import SHARED_DSN
from harness import SyncView

from coatcheck import open_async_store, open_store
from coatcheck.core.errors import CoatcheckError, InvalidMarker
from coatcheck.stores.markers import MAX_NAME, MAX_TTL, MAX_VALUE
from coatcheck.stores.threaded import AsyncOverSync

HOUR = 3600.0
RACERS = 20  # tasks racing for one name
THREADS = 8  # threads racing for one name, each with its own store object (and connections)
SERVER_KINDS = ["sqlite", "postgres", "redis", "cluster"]  # shared by several processes


@pytest.fixture
def store(manager: Any) -> Any:
    """The test's store through the API under test (a manager's, so sessions sit beside)."""
    return manager.store


def wait_until_absent(store: Any, name: str) -> None:
    """Ask until the marker has expired on the store's clock; fail only if it never does."""
    give_up = time.monotonic() + 30
    while store.get_marker(name) is not None:
        assert time.monotonic() < give_up, f"marker {name!r} never expired"
        time.sleep(0.01)


# --- put, get, delete --------------------------------------------------------------------


def test_put_get_delete(store: Any) -> None:
    assert store.get_marker("nothing-here") is None
    assert store.put_marker("oidc-sid:abc", "alice", HOUR) is True
    assert store.get_marker("oidc-sid:abc") == "alice"
    assert store.put_marker("oidc-sid:abc", "bob", HOUR) is True, "a plain put overwrites"
    assert store.get_marker("oidc-sid:abc") == "bob"
    assert store.delete_marker("oidc-sid:abc") is True
    assert store.get_marker("oidc-sid:abc") is None
    assert store.delete_marker("oidc-sid:abc") is False, "nothing left to delete"


def test_values_and_names_round_trip_up_to_the_limits(store: Any) -> None:
    printable = "".join(chr(c) for c in range(0x21, 0x7F))  # every allowed name character
    longest = (printable * 3)[:MAX_NAME]
    values = {
        longest: "€" * MAX_VALUE,  # 4096 characters, three UTF-8 bytes each
        "empty": "",
        "text": "grüß dich ✓ \t\n 🙂 'quoted' \"double\" \\ {tag}",
        "{in-a-tag}:x": "braces in a name are only characters",
    }
    for name, value in values.items():
        assert store.put_marker(name, value, HOUR) is True
    for name, value in values.items():
        assert store.get_marker(name) == value
    assert store.put_marker("whole", "v", 60) is True, "an int ttl is a number of seconds"
    assert store.put_marker("longest-ttl", "v", MAX_TTL) is True
    assert store.get_marker("whole") == "v" and store.get_marker("longest-ttl") == "v"


def test_names_are_exact(store: Any) -> None:
    store.put_marker("Name", "upper", HOUR)
    store.put_marker("name", "lower", HOUR)
    assert store.get_marker("Name") == "upper" and store.get_marker("name") == "lower"
    assert store.get_marker("nam") is None and store.get_marker("name2") is None
    assert store.get_marker("*") is None and store.get_marker("nam?") is None


# --- only_if_absent and expiry -------------------------------------------------------------


def test_only_if_absent_writes_only_the_first(store: Any) -> None:
    assert store.put_marker("jti", "first", HOUR, only_if_absent=True) is True
    assert store.put_marker("jti", "second", HOUR, only_if_absent=True) is False
    assert store.get_marker("jti") == "first", "a refused put changes nothing"
    store.delete_marker("jti")
    assert store.put_marker("jti", "third", HOUR, only_if_absent=True) is True
    assert store.get_marker("jti") == "third"


def test_an_expired_marker_is_absent_and_can_be_replaced(store: Any) -> None:
    assert store.put_marker("jti", "old", 0.05, only_if_absent=True) is True
    store.put_marker("other", "lives on", HOUR)
    wait_until_absent(store, "jti")
    assert store.put_marker("jti", "new", HOUR, only_if_absent=True) is True
    assert store.get_marker("jti") == "new"
    assert store.put_marker("jti", "newer", HOUR, only_if_absent=True) is False
    assert store.get_marker("other") == "lives on"


def test_deleting_an_expired_marker_finds_nothing(store: Any) -> None:
    store.put_marker("short", "v", 0.05)
    wait_until_absent(store, "short")
    assert store.delete_marker("short") is False
    assert store.get_marker("short") is None


def test_a_plain_put_gives_a_new_lifetime(store: Any) -> None:
    store.put_marker("renewed", "v", 0.05)
    store.put_marker("renewed", "w", HOUR)  # replaced before it could expire, or after
    store.put_marker("probe", "v", 0.05)
    wait_until_absent(store, "probe")  # the first lifetime has surely run out by now
    assert store.get_marker("renewed") == "w"


# --- purge and delete_all -----------------------------------------------------------------


def test_purge_deletes_markers_expired_at_its_now(store: Any, manager: Any) -> None:
    manager.create("alice")
    store.put_marker("soon", "v", 60)
    store.put_marker("later", "v", HOUR)
    assert store.purge_expired(time.time() + 10 * 60) == 0, "markers are not counted"
    assert store.get_marker("soon") is None
    assert store.get_marker("later") == "v"
    assert store.put_marker("soon", "again", HOUR, only_if_absent=True) is True
    assert len(manager.list_user("alice")) == 1, "the session was live at that time"


def test_purge_leaves_live_markers(store: Any) -> None:
    store.put_marker("live", "v", HOUR)
    store.purge_expired(time.time())
    assert store.get_marker("live") == "v"


def test_delete_all_deletes_markers_and_counts_sessions(store: Any, manager: Any) -> None:
    manager.create("alice")
    store.put_marker("a", "1", HOUR)
    store.put_marker("b", "2", HOUR)
    assert store.delete_all() == 1
    assert store.get_marker("a") is None and store.get_marker("b") is None
    assert store.put_marker("a", "3", HOUR, only_if_absent=True) is True


def test_markers_are_not_sessions(store: Any, manager: Any) -> None:
    store.put_marker("alice", "alice", HOUR)
    assert manager.list_user("alice") == [] and manager.count_active(0) == 0
    token, _ = manager.create("alice")
    manager.revoke_user("alice")
    assert store.get_marker("alice") == "alice"
    assert manager.load(token).is_new


# --- bad input -----------------------------------------------------------------------------

BAD_NAMES = [
    "",
    "a b",
    " ",
    "tab\there",
    "new\nline",
    "é",
    "x" * (MAX_NAME + 1),
    "nul\x00",
    "\x7f",
    5,
    b"bytes",
    None,
]


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_bad_names_are_refused_clearly(store: Any, name: Any) -> None:
    with pytest.raises(InvalidMarker, match="marker name"):
        store.put_marker(name, "v", HOUR)
    with pytest.raises(InvalidMarker, match="marker name"):
        store.get_marker(name)
    with pytest.raises(InvalidMarker, match="marker name"):
        store.delete_marker(name)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("x" * (MAX_VALUE + 1), "at most 4096"),
        ("a\x00b", "NUL"),
        ("half a pair \ud800", "Unicode"),
        (5, "must be a str"),
        (None, "must be a str"),
        (b"bytes", "must be a str"),
    ],
    ids=["too-long", "nul", "surrogate", "int", "none", "bytes"],
)
def test_bad_values_are_refused_and_nothing_is_written(store: Any, value: Any, why: str) -> None:
    store.put_marker("kept", "before", HOUR)
    with pytest.raises(InvalidMarker, match=why):
        store.put_marker("kept", value, HOUR)
    assert store.get_marker("kept") == "before"


@pytest.mark.parametrize(
    "ttl",
    [0, 0.0, -1, float("nan"), float("inf"), float("-inf"), MAX_TTL + 1, True, "60", None],
    ids=repr,
)
def test_bad_ttls_are_refused_and_nothing_is_written(store: Any, ttl: Any) -> None:
    with pytest.raises(InvalidMarker, match="ttl"):
        store.put_marker("never", "v", ttl)
    with pytest.raises(InvalidMarker, match="ttl"):
        store.put_marker("never", "v", ttl, only_if_absent=True)
    assert store.get_marker("never") is None


def test_the_error_is_a_value_error_and_a_coatcheck_error() -> None:
    assert issubclass(InvalidMarker, ValueError) and issubclass(InvalidMarker, CoatcheckError)


# --- races: exactly one winner --------------------------------------------------------------


def test_racing_tasks_have_one_winner(store_url: str) -> None:
    async def race() -> None:
        store = open_async_store(store_url)
        try:
            for round_ in range(5):
                name = f"race-{round_}"
                won = await asyncio.gather(
                    *(
                        store.put_marker(name, f"task-{i}", HOUR, only_if_absent=True)
                        for i in range(RACERS)
                    )
                )
                assert won.count(True) == 1, won
                assert await store.get_marker(name) == f"task-{won.index(True)}"
        finally:
            await store.close()

    asyncio.run(race())


def test_racing_threads_have_one_winner(store_url: str) -> None:
    shared = open_store(store_url) if store_url == "memory://" else None
    stores = [shared or open_store(store_url) for _ in range(THREADS)]
    start = threading.Barrier(THREADS)
    won: list[bool | None] = [None] * THREADS
    errors: list[BaseException] = []

    def racer(i: int) -> None:
        try:
            stores[i].migrate()
            start.wait()
            won[i] = stores[i].put_marker("race", f"thread-{i}", HOUR, only_if_absent=True)
        except BaseException as exc:  # surfaced below, with the others
            errors.append(exc)

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(THREADS)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert won.count(True) == 1, won
        assert stores[0].get_marker("race") == f"thread-{won.index(True)}"
    finally:
        for s in set(stores):
            s.close()


RACER = """
import json, sys
from coatcheck import open_store

url, me, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = open_store(url)
store.migrate()
print("ready", flush=True)
sys.stdin.readline()  # every process starts together
won = [store.put_marker(f"race-{n}", me, 3600, only_if_absent=True) for n in range(rounds)]
store.close()
print(json.dumps(won), flush=True)
"""


@pytest.mark.parametrize("store_url", SERVER_KINDS, indirect=True)
def test_racing_processes_have_one_winner_per_name(store_url: str) -> None:
    processes, rounds = 3, 40
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, store_url, f"process-{p}", str(rounds)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for p in range(processes)
    ]
    try:
        for racer in racers:
            assert racer.stdout is not None and racer.stdout.readline() == "ready\n"
        for racer in racers:
            assert racer.stdin is not None
            racer.stdin.write("go\n")
            racer.stdin.flush()
        answers = [json.loads(racer.communicate(timeout=120)[0]) for racer in racers]
    finally:
        for racer in racers:
            if racer.poll() is None:
                racer.kill()
                racer.wait()
    assert all(racer.returncode == 0 for racer in racers)
    store = open_store(store_url)
    try:
        for n in range(rounds):
            winners = [p for p in range(processes) if answers[p][n]]
            assert len(winners) == 1, (n, winners)
            assert store.get_marker(f"race-{n}") == f"process-{winners[0]}"
    finally:
        store.close()


# --- where markers live ---------------------------------------------------------------------


@pytest.fixture
def sync_and_async(store_url: str) -> Iterator[tuple[Any, Any]]:
    """Two store objects on one store, one per API (a memory store is its one object)."""
    loop = asyncio.new_event_loop()
    sync = open_store(store_url)
    memory = store_url == "memory://"
    astore = AsyncOverSync(sync, threads=None) if memory else open_async_store(store_url)
    try:
        yield sync, SyncView(astore, loop)
    finally:
        loop.run_until_complete(astore.close())
        if not memory:
            sync.close()
        loop.close()


def test_both_apis_see_the_same_markers(sync_and_async: tuple[Any, Any]) -> None:
    sync, async_ = sync_and_async
    assert sync.put_marker("shared", "from sync", HOUR) is True
    assert async_.get_marker("shared") == "from sync"
    assert async_.put_marker("shared", "from async", HOUR, only_if_absent=True) is False
    assert async_.delete_marker("shared") is True
    assert sync.get_marker("shared") is None


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_sqlite_file_of_an_earlier_release_gets_the_table_on_first_use(store_url: str) -> None:
    path = Path(store_url.removeprefix("sqlite:///"))
    old = open_store(store_url)
    old.migrate()
    old.close()
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE coatcheck_markers")
    store = open_store(store_url)
    try:
        assert store.put_marker("m", "v", HOUR) is True and store.get_marker("m") == "v"
    finally:
        store.close()
    with sqlite3.connect(path) as db:
        (rows,) = db.execute("SELECT count(*) FROM coatcheck_markers").fetchone()
    assert rows == 1


@pytest.mark.parametrize("store_url", ["postgres"], indirect=True)
def test_postgres_table_of_an_earlier_release_gets_the_table_on_first_use(
    store_url: str, postgres_table: str
) -> None:
    store = open_store(store_url)
    store.migrate()
    store.close()
    with psycopg.connect(SHARED_DSN, autocommit=True) as conn:
        conn.execute(f"DROP TABLE {postgres_table}_markers")  # a name of the fixture's making
    store = open_store(store_url)
    try:
        assert store.put_marker("m", "v", HOUR) is True and store.get_marker("m") == "v"
        store.migrate()  # idempotent
        assert store.get_marker("m") == "v"
    finally:
        store.close()
    with psycopg.connect(SHARED_DSN) as conn:
        row = conn.execute(
            f"SELECT name, value, expires_at > extract(epoch FROM now()) "
            f"FROM {postgres_table}_markers"
        ).fetchone()
        index = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = %s",
            (f"{postgres_table}_mark_exp_idx",),
        ).fetchone()
    assert row == ("m", "v", True)
    assert index is not None and "(expires_at)" in index[0]


@pytest.mark.parametrize("store_url", ["redis", "cluster"], indirect=True)
def test_redis_marker_is_one_key_under_the_prefix_with_its_ttl(store_url: str) -> None:
    store: Any = open_store(store_url)
    prefix, options = store.prefix, store.options
    raw: Any = (
        redis.cluster.RedisCluster(host=options.host, port=options.port)
        if options.cluster
        else redis.Redis(host=options.host, port=options.port, db=options.db)
    )
    name = f"{prefix}m:oidc-jti:{{abc}}"
    outside = prefix.rstrip(":") + "-other:m:x"  # begins like the prefix, is not under it
    try:
        store.put_marker("oidc-jti:{abc}", "v", HOUR)
        assert raw.get(name) == b"v"
        assert 0 < raw.pttl(name) <= HOUR * 1000
        assert [k for k in raw.scan_iter(match=f"{prefix}*") if b":m:" in k] == [name.encode()]
        raw.set(outside, "not ours", px=int(HOUR * 1000))
        store.delete_all()
        assert raw.get(name) is None
        store.put_marker("again", "v", 60)
        store.purge_expired(time.time() + 2 * HOUR)
        assert raw.get(f"{prefix}m:again") is None
        assert raw.get(outside) == b"not ours", "keys outside the prefix stay"
    finally:
        raw.delete(outside)
        raw.close()
        store.close()
