"""PostgreSQL-specific behaviour: URL options, schema, SQL edge cases, failures and recovery.

The shared contract is checked by ``test_conformance.py``; this file covers what only this
store has. Fault tests run against a private server (``postgres_instance``) that they stop and
start; the shared server on 5432 is never touched.
"""

from __future__ import annotations

import asyncio
import glob
import json
import random
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from fixtures_postgres import SHARED_DSN, PostgresInstance, drop_table
from harness import SyncView, in_a_forked_child
from psycopg.conninfo import conninfo_to_dict

from coatcheck import (
    ConfigError,
    SessionConflict,
    SessionDataError,
    SessionGone,
    SessionLimitReached,
    StoreUnavailable,
    open_async_store,
    open_store,
)
from coatcheck._async.stores import postgres_connection as async_connection
from coatcheck._async.stores.postgres import AsyncPostgresStore
from coatcheck._sync.stores import postgres_connection as sync_connection
from coatcheck._sync.stores.postgres import PostgresStore
from coatcheck.core.policy import WritePlan
from coatcheck.core.records import Patch, SessionRecord, UserLimit
from coatcheck.core.tokens import SessionKey, TokenCodec, new_token_key
from coatcheck.stores.memory import MemoryStore
from coatcheck.stores.postgres.failures import Health
from coatcheck.stores.postgres.url import parse_url

NOW = 1_800_000_000.0


def record(
    user_id: str | None = "alice",
    *,
    kind: str = "browser",
    created: float = NOW,
    seen: float | None = None,
    expires: float | None = None,
    data: dict[str, Any] | None = None,
) -> SessionRecord:
    _, key = TokenCodec(new_token_key()).new_token(user_id)
    return SessionRecord(
        key=key,
        user_id=user_id,
        kind=kind,  # type: ignore[arg-type]
        created_at=created,
        last_seen_at=created if seen is None else seen,
        authenticated_at=created if user_id else None,
        expires_at=created + 1800 if expires is None else expires,
        client_ip="192.0.2.1",
        user_agent="test-agent",
        data=dict(data or {}),
    )


def touch(patch: Patch | None = None, at: float = NOW + 60) -> WritePlan:
    return WritePlan(patch or Patch(), at, at + 1800)


@pytest.fixture
def make_store(api: str) -> Iterator[Callable[[str], Any]]:
    """Builds stores through the sync API or the async one (driven on a private loop)."""
    loop = asyncio.new_event_loop() if api == "async" else None
    made: list[Any] = []

    def make(url: str) -> Any:
        store: Any = PostgresStore(url) if loop is None else SyncView(AsyncPostgresStore(url), loop)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()
    if loop is not None:
        loop.close()


# --- URL options (no server needed) ----------------------------------------------------


def test_url_defaults() -> None:
    opts = parse_url("postgresql://postgres@127.0.0.1:5432/test")
    assert opts.table == "coatcheck_sessions"
    assert (opts.pool_min, opts.pool_max, opts.timeout) == (0, 10, 5.0)
    assert opts.conninfo == "postgresql://postgres@127.0.0.1:5432/test"
    assert opts.where == "127.0.0.1:5432/test"


def test_own_options_are_stripped_and_libpq_options_pass_through() -> None:
    url = (
        "postgres://app:s3cret@db.example:6543/sessions?table=web_sessions&pool_min=2"
        "&sslmode=require&pool_max=4&timeout=1.5&application_name=my%20app"
    )
    opts = parse_url(url)
    assert (opts.table, opts.pool_min, opts.pool_max, opts.timeout) == ("web_sessions", 2, 4, 1.5)
    assert opts.conninfo == (
        "postgresql://app:s3cret@db.example:6543/sessions?sslmode=require&application_name=my%20app"
    )
    params = conninfo_to_dict(opts.conninfo)
    assert params["application_name"] == "my app" and params["sslmode"] == "require"
    assert opts.where == "db.example:6543/sessions"
    store = PostgresStore(url)
    assert "s3cret" not in repr(store) and "db.example:6543" in repr(store)


def test_pool_max_grows_with_a_large_pool_min() -> None:
    assert parse_url("postgresql://h/db?pool_min=20").pool_max == 20


def test_where_names_the_socket_and_several_hosts() -> None:
    assert parse_url("postgresql:///db").where == "local socket:5432/db"
    assert parse_url("postgresql://a:1,b:2/db").where == "a:1,b:2/db"


@pytest.mark.parametrize(
    ("query", "complaint"),
    [
        ("foo=1", "foo"),
        ("pool_size=3", "pool_size"),
        ("table=Sessions", "table='Sessions'"),
        ("table=a-b", "plain lower-case identifier"),
        ("table=x%3Bdrop", "plain lower-case identifier"),
        ("table=1abc", "plain lower-case identifier"),
        ("table=", "plain lower-case identifier"),
        ("table=" + "a" * 49, "at most 48"),
        ("table=a&table=b", "appears twice"),
        ("pool_min=-1", "pool_min"),
        ("pool_min=two", "pool_min"),
        ("pool_max=0", "pool_max"),
        ("pool_min=5&pool_max=2", "pool_max=2 must not be below pool_min=5"),
        ("timeout=0", "timeout"),
        ("timeout=-1", "timeout"),
        ("timeout=nan", "timeout"),
        ("timeout=inf", "timeout"),
        ("timeout=soon", "timeout"),
    ],
)
def test_bad_url_options_are_config_errors(query: str, complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint.replace("[", r"\[")) as info:
        PostgresStore(f"postgresql://postgres@127.0.0.1:5432/test?{query}")
    if "foo" in query or "pool_size" in query:
        assert "table, pool_min, pool_max, timeout" in str(info.value)


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("mysql://app:s3cret@db/x", "postgresql://"),
        ("postgresql://app:s3 cret@db/x", "spaces"),
        ("postgresql://app:s3cret@db:http/x", "port 'http'"),
        ("postgresql://app:s3cret@db:70000/x", "port '70000'"),
        ("postgresql://app:s3cret@[::1/x", "malformed"),
    ],
)
def test_malformed_urls_are_config_errors_that_hide_the_password(url: str, complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint) as info:
        parse_url(url)
    assert "s3" not in str(info.value) and "cret" not in str(info.value)


def test_creating_a_store_connects_nowhere() -> None:
    # Port 1: nothing listens there. Construction must not try (the pool opens on first use,
    # inside the running loop for the async API).
    url = "postgresql://postgres@127.0.0.1:1/test?timeout=0.2"
    assert isinstance(open_store(url), PostgresStore)
    assert isinstance(open_async_store(url), AsyncPostgresStore)
    assert isinstance(open_store(url.replace("postgresql", "postgres", 1)), PostgresStore)


# --- schema ----------------------------------------------------------------------------


def table_shape(table: str) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    with psycopg.connect(SHARED_DSN) as conn:
        columns = {
            name: (dtype, nullable)
            for name, dtype, nullable in conn.execute(
                "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                "WHERE table_name = %s",
                (table,),
            )
        }
        indexes = dict(
            conn.execute(  # type: ignore[arg-type]
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", (table,)
            ).fetchall()
        )
    return columns, indexes


@pytest.mark.postgres
def test_migrate_creates_the_documented_schema_and_is_idempotent(
    postgres_url: str, postgres_table: str
) -> None:
    store = PostgresStore(postgres_url)
    try:
        store.migrate()
        store.migrate()
        store.insert(record())
        store.migrate()
    finally:
        store.close()
    columns, indexes = table_shape(postgres_table)
    assert columns == {
        "id": ("bytea", "NO"),
        "shard": ("bytea", "NO"),
        "user_id": ("text", "YES"),
        "kind": ("text", "NO"),
        "created_at": ("double precision", "NO"),
        "last_seen_at": ("double precision", "NO"),
        "authenticated_at": ("double precision", "YES"),
        "expires_at": ("double precision", "NO"),
        "client_ip": ("text", "YES"),
        "user_agent": ("text", "YES"),
        "data": ("jsonb", "NO"),
        "version": ("bigint", "NO"),
        "public_id": ("bytea", "YES"),
        "remember": ("boolean", "NO"),
    }
    assert set(indexes) == {
        f"{postgres_table}_pkey",
        f"{postgres_table}_expires_idx",
        f"{postgres_table}_user_idx",
        f"{postgres_table}_public_idx",
    }
    assert "(expires_at)" in indexes[f"{postgres_table}_expires_idx"]
    assert (
        "(user_id, created_at) WHERE (user_id IS NOT NULL)"
        in (indexes[f"{postgres_table}_user_idx"])
    )


@pytest.mark.postgres
def test_first_use_creates_the_table(postgres_url: str, postgres_table: str, api: str) -> None:
    async def first_use() -> None:
        store = AsyncPostgresStore(postgres_url)
        try:
            assert await store.count_active(0, NOW) == 0
        finally:
            await store.close()

    if api == "async":
        asyncio.run(first_use())
    else:
        store = PostgresStore(postgres_url)
        try:
            assert store.load(record().key) is None
        finally:
            store.close()
    assert table_shape(postgres_table)[0]


@pytest.mark.postgres
def test_concurrent_migrations_do_not_collide(postgres_url: str, postgres_table: str) -> None:
    stores = [PostgresStore(postgres_url) for _ in range(8)]
    start = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def migrate(store: PostgresStore) -> None:
        try:
            start.wait()
            store.migrate()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=migrate, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for store in stores:
        store.close()
    assert errors == []

    drop_table(SHARED_DSN, postgres_table)

    async def migrate_all() -> None:
        many = [AsyncPostgresStore(postgres_url) for _ in range(8)]
        try:
            await asyncio.gather(*(s.migrate() for s in many))
            await asyncio.gather(*(s.insert(record()) for s in many))
        finally:
            await asyncio.gather(*(s.close() for s in many))

    asyncio.run(migrate_all())
    assert len(table_shape(postgres_table)[1]) == 4


@pytest.mark.postgres
def test_stores_with_different_tables_are_separate(postgres_url: str) -> None:
    other_table = "cc_test_other_" + new_token_key().hex()[:8]
    a = PostgresStore(postgres_url)
    b = PostgresStore(f"{SHARED_DSN}?table={other_table}")
    try:
        rec = record()
        a.insert(rec)
        assert a.load(rec.key) is not None and b.load(rec.key) is None
        assert b.delete_all() == 0 and a.delete_all() == 1
    finally:
        a.close()
        b.close()
        drop_table(SHARED_DSN, other_table)


# --- SQL edge cases --------------------------------------------------------------------


@pytest.mark.postgres
def test_loaded_copy_cannot_resurrect_a_deleted_session(
    postgres_url: str, make_store: Callable[[str], Any]
) -> None:
    store = make_store(postgres_url)
    rec = record(data={"k": 1})
    store.insert(rec)
    loaded = store.load(rec.key)
    assert loaded is not None and loaded.data == {"k": 1}
    assert store.delete(rec.key) is True
    with pytest.raises(SessionGone):
        store.update(loaded.key, touch(Patch({"late": "true"})))
    with pytest.raises(SessionGone):
        store.update(loaded.key, touch(), expected_version=loaded.version)
    assert store.load(rec.key) is None
    assert store.list_user("alice", 0) == []
    assert store.count_active(0, 0) == 0
    assert store.delete(rec.key) is False


@pytest.mark.postgres
def test_version_conflict_is_told_apart_from_a_gone_session(
    postgres_url: str, make_store: Callable[[str], Any]
) -> None:
    store = make_store(postgres_url)
    rec = record()
    store.insert(rec)
    assert store.update(rec.key, touch(), expected_version=1) == 2
    with pytest.raises(SessionConflict, match="version 2, expected 1"):
        store.update(rec.key, touch(Patch({"x": "1"})), expected_version=1)
    loaded = store.load(rec.key)
    assert loaded.version == 2 and loaded.data == {}


@pytest.mark.postgres
def test_patches_with_awkward_keys_apply_like_patch_apply_to(
    postgres_url: str, make_store: Callable[[str], Any]
) -> None:
    store = make_store(postgres_url)
    start = {'quote"key': 1, "back\\slash": [1], "ünïcødé ✓": "x", "gone": True, "": 0}
    rec = record(data=start)
    store.insert(rec)
    patch = Patch(
        {
            'quote"key': '{"a":[1,2,{"b":null}]}',
            "new\nline": '"tab\\there"',
            "emoji 🎟": '"🧥"',
            "": '"empty key"',
            "number": "1.5",
        },
        frozenset({"gone", "never-there"}),
    )
    assert store.update(rec.key, touch(patch)) == 2
    loaded = store.load(rec.key)
    assert loaded.data == patch.apply_to(start)
    assert loaded.last_seen_at == NOW + 60 and loaded.expires_at == NOW + 60 + 1800


@pytest.mark.postgres
@pytest.mark.parametrize("bad", ["a\x00b", "x\ud800y"], ids=["nul", "lone-surrogate"])
def test_text_postgres_cannot_store_is_refused_clearly(
    postgres_url: str, make_store: Callable[[str], Any], bad: str
) -> None:
    store = make_store(postgres_url)
    refused = record(data={"ok": 1, "note": {"deep": [bad]}})
    with pytest.raises(SessionDataError, match="'note'"):
        store.insert(refused)
    assert store.load(refused.key) is None
    with pytest.raises(SessionDataError, match="user_agent"):
        store.insert(SessionRecord(**{**_fields(record()), "user_agent": f"evil{bad}"}))
    rec = record(data={"ok": 1})
    store.insert(rec, limit=UserLimit(1))
    with pytest.raises(SessionDataError, match="'note'"):
        store.update(rec.key, touch(Patch({"note": json.dumps(bad), "fine": "2"})))
    with pytest.raises(SessionDataError, match="'note'"):
        store.update(rec.key, touch(Patch({"note": json.dumps(bad, ensure_ascii=False)})))
    with pytest.raises(SessionDataError, match="key"):
        store.update(rec.key, touch(Patch({f"k{bad}": "1"})))
    with pytest.raises(SessionDataError, match="'note'"):
        store.insert(record(data={"note": bad}), replaces=rec.key, limit=UserLimit(1))
    assert store.load(rec.key).data == {"ok": 1}
    assert store.load(rec.key).version == 1


def _fields(rec: SessionRecord) -> dict[str, Any]:
    return {name: getattr(rec, name) for name in rec.__dataclass_fields__}


@pytest.mark.postgres
def test_programming_errors_are_not_disguised_as_unavailability(
    postgres_url: str, postgres_table: str, make_store: Callable[[str], Any]
) -> None:
    store = make_store(postgres_url)
    assert store.load(record().key) is None  # schema created and remembered
    drop_table(SHARED_DSN, postgres_table)
    with pytest.raises(psycopg.errors.UndefinedTable):
        store.load(record().key)
    store.migrate()  # an explicit migrate repairs it
    assert store.load(record().key) is None


@pytest.mark.postgres
def test_purge_deletes_expired_rows_in_batches(
    postgres_url: str, make_store: Callable[[str], Any]
) -> None:
    store = make_store(postgres_url)
    for i in range(23):
        store.insert(record(f"user{i % 3}", expires=NOW + i))
    live = [record("keeper", expires=NOW + 1000) for _ in range(4)]
    for rec in live:
        store.insert(rec)
    assert store.purge_expired(NOW + 22, batch_size=5) == 23
    assert store.purge_expired(NOW + 22, batch_size=5) == 0
    assert [r.key for r in store.list_user("keeper", NOW)] == sorted(
        (r.key for r in live), key=lambda k: k.digest
    )
    with pytest.raises(ConfigError, match="batch_size"):
        store.purge_expired(NOW, batch_size=0)


@pytest.mark.postgres
def test_delete_user_keep_and_delete_all(
    postgres_url: str, make_store: Callable[[str], Any]
) -> None:
    store = make_store(postgres_url)
    mine = [record() for _ in range(3)]
    theirs = record("bob")
    for rec in (*mine, theirs):
        store.insert(rec)
    assert store.delete_user("alice", keep=mine[0].key) == 2
    assert [r.key for r in store.list_user("alice", NOW)] == [mine[0].key]
    assert store.delete_user("alice") == 1
    assert store.delete_all() == 1


@pytest.mark.postgres
@pytest.mark.parametrize("seed", range(6))
def test_limits_and_rotation_match_choose_evictions(postgres_url: str, seed: int) -> None:
    """Random logins, rotations and limits give the same outcome as the memory store, which
    calls ``choose_evictions`` itself: same evictions in the same order, same refusals."""
    rng = random.Random(seed)
    pg, mem = PostgresStore(postgres_url), MemoryStore()
    keys: list[SessionKey] = []
    users = ["ann", "bob", None]
    clock = NOW
    try:
        for step in range(50):
            clock += rng.choice([0, 0, 1, 7, 400])  # ties in created_at are decided by id
            user = rng.choice(users)
            created = clock - rng.choice([0, 0, 0, 300, 2000])  # rotation keeps created_at
            rec = record(
                user,
                kind=rng.choice(["browser", "browser", "api"]),
                created=created,
                seen=clock,
                expires=clock + rng.choice([60, 900, 3600]),
                data={"step": step},
            )
            replaces = rng.choice(keys) if keys and rng.random() < 0.35 else None
            limit = rng.choice(
                [None, UserLimit(1), UserLimit(2), UserLimit(2, refuse=True), UserLimit(3)]
            )
            outcomes = []
            for store in (mem, pg):
                try:
                    outcomes.append(store.insert(rec, replaces=replaces, limit=limit))
                except (SessionGone, SessionLimitReached) as exc:
                    outcomes.append(type(exc).__name__)
            assert outcomes[0] == outcomes[1], (
                f"step {step}: memory {outcomes[0]}, pg {outcomes[1]}"
            )
            keys.append(rec.key)
            for name in ("ann", "bob"):
                assert [r.key for r in mem.list_user(name, clock)] == [
                    r.key for r in pg.list_user(name, clock)
                ]
        assert [mem.load(k) is None for k in keys] == [pg.load(k) is None for k in keys]
    finally:
        pg.close()


@pytest.mark.postgres
@pytest.mark.parametrize("refuse", [False, True])
def test_concurrent_logins_of_one_user_respect_the_limit(postgres_url: str, refuse: bool) -> None:
    store = PostgresStore(postgres_url + "&pool_max=8")
    n = 16
    start = threading.Barrier(n)
    results: list[Any] = []

    def login(i: int) -> None:
        start.wait()
        try:
            results.append(store.insert(record(created=NOW + i), limit=UserLimit(1, refuse=refuse)))
        except SessionLimitReached as exc:
            results.append(exc)

    threads = [threading.Thread(target=login, args=(i,)) for i in range(n)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(store.list_user("alice", NOW)) == 1
        refused = [r for r in results if isinstance(r, SessionLimitReached)]
        assert len(refused) == (n - 1 if refuse else 0)
        if not refuse:
            assert sum(len(r) for r in results) == n - 1, "every login but one evicted one"
    finally:
        store.close()


@pytest.mark.postgres
def test_close_then_reuse_opens_a_new_pool(
    postgres_url: str, make_store: Callable[[str], Any]
) -> None:
    store = make_store(postgres_url)
    rec = record()
    store.insert(rec)
    store.close()
    store.close()
    assert store.load(rec.key) is not None


# --- failures and recovery (a private server that the test stops and starts) ----------


def assert_unavailable(call: Callable[[], Any], instance: PostgresInstance) -> StoreUnavailable:
    with pytest.raises(StoreUnavailable) as info:
        call()
    message = str(info.value)
    assert f"127.0.0.1:{instance.port}" in message and "\n" not in message
    assert isinstance(info.value.__cause__, psycopg.Error), "the driver's error is chained"
    return info.value


@pytest.mark.fault
@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_server_down_then_back_the_same_store_recovers(
    postgres_instance: Callable[[], PostgresInstance],
    make_store: Callable[[str], Any],
    mode: str,
) -> None:
    instance = postgres_instance()
    store = make_store(instance.url(timeout=0.5, pool_min=2))
    rec = record(data={"k": 1})
    store.insert(rec)
    assert store.load(rec.key).data == {"k": 1}

    instance.stop(mode)
    other = record()
    for call in (
        lambda: store.load(rec.key),
        lambda: store.update(rec.key, touch(Patch({"k": "2"}))),
        lambda: store.insert(other),
        lambda: store.insert(other, replaces=rec.key, limit=UserLimit(1)),
        lambda: store.delete(rec.key),
        lambda: store.delete_user("alice"),
        lambda: store.list_user("alice", NOW),
        lambda: store.purge_expired(NOW),
        lambda: store.count_active(0, NOW),
        lambda: store.migrate(),
    ):
        assert_unavailable(call, instance)

    instance.start()
    loaded = store.load(rec.key)
    assert loaded is not None and loaded.data == {"k": 1}, "nothing was written while down"
    assert store.update(rec.key, touch(Patch({"k": "2"}))) == 2
    assert store.load(rec.key).data == {"k": 2}
    assert [r.key for r in store.list_user("alice", NOW)] == [rec.key]


@pytest.mark.fault
def test_store_first_used_while_the_server_is_down(
    postgres_instance: Callable[[], PostgresInstance], make_store: Callable[[str], Any]
) -> None:
    instance = postgres_instance()
    instance.stop()
    store = make_store(instance.url(timeout=0.5))
    rec = record()
    error = assert_unavailable(lambda: store.insert(rec), instance)
    assert "refused" in str(error).lower(), "the connect failure is reported, not just a timeout"
    assert_unavailable(lambda: store.load(rec.key), instance)

    instance.start()
    assert store.load(rec.key) is None  # the table is created on this first successful use
    store.insert(rec)
    assert store.load(rec.key) is not None


@pytest.mark.fault
@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_a_restart_between_calls_is_invisible(
    postgres_instance: Callable[[], PostgresInstance],
    make_store: Callable[[str], Any],
    mode: str,
) -> None:
    """Connections idle in the pool die with the server; the next call must not trip on them."""
    instance = postgres_instance()
    store = make_store(instance.url(pool_min=4, pool_max=4))
    recs = [record() for _ in range(4)]
    for rec in recs:
        store.insert(rec)
    instance.stop(mode)
    instance.start()
    for rec in recs:  # every pooled connection was stale: each call must still succeed
        assert store.load(rec.key) is not None
    assert store.count_active(0, NOW) == 4


@pytest.mark.postgres
def test_jsonb_number_normalisation_is_as_documented(postgres_url: str) -> None:
    """docs/stores/postgres.md, Limits: what jsonb does to some numbers and to key order."""
    store = PostgresStore(postgres_url)
    try:
        rec = record(data={"zz": 1, "a": 2, "big": 1e16, "huge": 1.5e300, "neg0": -0.0, "f": 0.1})
        store.insert(rec)
        data = store.load(rec.key).data
    finally:
        store.close()
    assert data["big"] == 10**16 and type(data["big"]) is int
    assert type(data["huge"]) is int and data["huge"] != 1.5e300 and float(data["huge"]) == 1.5e300
    assert data["neg0"] == 0.0 and data["f"] == 0.1 and type(data["f"]) is float
    assert list(data) != list(rec.data) and data == {**rec.data, "huge": data["huge"]}


@pytest.mark.postgres
def test_async_store_moves_on_when_its_event_loop_is_gone(postgres_url: str) -> None:
    """A store kept across ``asyncio.run`` calls (or test clients) gets a new pool in the new
    loop: the old pool's workers died with their loop and could never reconnect.

    ``pool_min=0``: no connection is still being opened in the background when a loop ends
    (psycopg_pool's workers swallow the cancellation of a connect in flight, which would keep
    ``asyncio.run`` from returning; closing the store before its loop ends avoids that too)."""
    store = AsyncPostgresStore(postgres_url + "&pool_min=0")
    rec = record()
    asyncio.run(store.insert(rec))
    first_pool = store._pool
    loaded = asyncio.run(store.load(rec.key))
    assert loaded is not None and loaded.key == rec.key
    assert store._pool is not first_pool
    asyncio.run(store.close())
    assert asyncio.run(store.load(rec.key)) is not None
    asyncio.run(store.close())


@pytest.mark.postgres
def test_async_store_refuses_a_second_live_event_loop(postgres_url: str) -> None:
    store = AsyncPostgresStore(postgres_url)
    home = asyncio.new_event_loop()
    try:
        assert home.run_until_complete(store.load(record().key)) is None
        with pytest.raises(RuntimeError, match="another event loop"):
            asyncio.run(store.load(record().key))
        assert home.run_until_complete(store.load(record().key)) is None
    finally:
        home.run_until_complete(store.close())
        home.close()


# --- the idle stack and the lean load (connections parked by the store between calls) ---


def _terminate(application_name: str) -> int:
    """Have the server close every connection of ``application_name``; wait until they are gone."""
    with psycopg.connect(SHARED_DSN, autocommit=True) as admin:
        query = "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
        pids = [row[0] for row in admin.execute(query, (application_name,)).fetchall()]
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
        assert not admin.execute(query, (application_name,)).fetchall()
    return len(pids)


@pytest.mark.postgres
def test_a_parked_connection_the_server_closed_is_replaced_not_reported(
    postgres_url: str, make_store: Callable[[str], Any]
) -> None:
    name = f"cc_kill_{random.getrandbits(32):x}"
    store = make_store(f"{postgres_url}&pool_max=1&application_name={name}")
    rec = record(data={"k": 1})
    store.insert(rec)
    for call in (
        lambda: store.load(rec.key).data,
        lambda: store.update(rec.key, touch()) and store.load(rec.key).data,
        lambda: store.count_active(0, NOW) and store.load(rec.key).data,
    ):
        assert call() == {"k": 1}  # the connection is parked afterwards
        assert _terminate(name) == 1
        assert call() == {"k": 1}, "the dead parked connection was replaced, no outage"


@pytest.mark.postgres
def test_load_prepares_again_when_its_statement_was_deallocated(postgres_url: str) -> None:
    store = PostgresStore(postgres_url + "&pool_max=1")
    try:
        rec = record(data={"k": 1})
        store.insert(rec)
        assert store.load(rec.key) is not None
        (parked,) = store._idle
        parked.execute("DEALLOCATE ALL")  # as DISCARD ALL or a pooler would
        assert store.load(rec.key).data == {"k": 1}
        assert store._idle == [parked], "the same connection, not a new one"
    finally:
        store.close()


@pytest.mark.postgres
def test_loaded_record_round_trips_every_column(postgres_url: str) -> None:
    """The lean load decodes the binary row itself: every field comes back exactly."""
    store = PostgresStore(postgres_url)
    try:
        full = record(user_id="zoë", data={"ü": [1, 2.5, None, "\u2603"]})
        full.created_at = 1_700_000_000.123456789
        full.last_seen_at = 1_700_000_001.5e-3
        full.authenticated_at = 1_700_000_000.000001
        full.expires_at = 2.0**40 + 0.25
        full.user_agent = "agent ✓"
        full.version = 2**40
        full.remember = True
        bare = record(user_id=None, kind="api")
        bare.client_ip = bare.user_agent = None
        for rec in (full, bare):
            store.insert(rec)
            assert store.load(rec.key) == rec
            assert store.load_many([rec.key]) == [rec]
            if rec.user_id is not None:
                assert store.list_user(rec.user_id, 0) == [rec]
        assert store.load(record().key) is None
    finally:
        store.close()


@pytest.mark.postgres
def test_callers_waiting_for_the_pool_get_the_connections_back(postgres_url: str) -> None:
    """With every connection in use, a finished call hands its connection to a waiting caller
    instead of parking it (else the waiter would time out)."""
    rec = record()

    async def main() -> None:
        store = AsyncPostgresStore(postgres_url + "&pool_max=1&timeout=2")
        try:
            await store.insert(rec)
            calls = [store.load(rec.key) for _ in range(20)]
            calls += [store.update(rec.key, touch()) for _ in range(5)]
            calls += [store.count_active(0, NOW) for _ in range(5)]
            results = await asyncio.wait_for(asyncio.gather(*calls), 10)
            assert all(r is not None for r in results)
        finally:
            await store.close()

    asyncio.run(main())

    store = PostgresStore(postgres_url + "&pool_max=2&timeout=2")
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(30):
                assert store.load(rec.key) is not None
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        store.close()
    assert not errors, errors
    assert len(store._idle) == 0, "close() took the parked connections"


@pytest.mark.postgres
def test_a_load_cancelled_mid_query_does_not_poison_the_next_call(postgres_url: str) -> None:
    rec = record(data={"k": 1})

    async def main() -> None:
        store = AsyncPostgresStore(postgres_url + "&pool_max=1&timeout=5")
        try:
            await store.insert(rec)
            assert await store.load(rec.key) is not None
            table = store.options.table
            with psycopg.connect(SHARED_DSN) as blocker:  # a transaction holding the table
                blocker.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(store.load(rec.key), 0.3)
            # psycopg cancels the query and drains the connection: parked only if idle again
            idle = psycopg.pq.TransactionStatus.IDLE
            assert all(c.pgconn.transaction_status == idle for c in store._idle)
            loaded = await store.load(rec.key)
            assert loaded is not None and loaded.data == {"k": 1}
        finally:
            await store.close()

    asyncio.run(main())


@pytest.mark.postgres
def test_parked_connections_go_back_to_the_pool_and_close_with_it(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from coatcheck._sync.stores import postgres_pool as module

    store = PostgresStore(postgres_url)
    rec = record()
    store.insert(rec)
    assert store.load(rec.key) is not None
    (parked,) = store._idle
    store.close()
    assert parked.closed and store._idle == []

    monkeypatch.setattr(module, "PARK_SECONDS", 0.0)
    store = PostgresStore(postgres_url)
    try:
        for _ in range(3):
            assert store.load(rec.key) is not None
            assert store._idle == [], "past its parking time a connection returns to the pool"
    finally:
        store.close()


@pytest.mark.postgres
def test_a_caller_finding_every_connection_busy_waits_at_most_timeout(postgres_url: str) -> None:
    """The store hands connections from finished calls to waiting callers itself: a waiter that
    gets nothing within ``timeout`` fails like a pool timeout, a cancelled waiter leaks no slot."""
    rec = record(data={"k": 1})

    async def main() -> None:
        store = AsyncPostgresStore(postgres_url + "&pool_max=1&timeout=0.3")
        try:
            await store.insert(rec)
            with psycopg.connect(SHARED_DSN) as blocker:  # holds the table: loads block
                blocker.execute(f"LOCK TABLE {store.options.table} IN ACCESS EXCLUSIVE MODE")
                stuck = asyncio.ensure_future(store.load(rec.key))  # takes the one connection
                await asyncio.sleep(0.1)
                with pytest.raises(StoreUnavailable, match=r"no connection within 0\.3 s"):
                    await store.load(rec.key)
                cancelled = asyncio.ensure_future(store.load(rec.key))
                await asyncio.sleep(0.05)
                cancelled.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await cancelled
                assert not store._waiters
            loaded = await stuck  # the lock is gone
            assert loaded is not None and loaded.data == {"k": 1}
            assert store._out == 1 and len(store._idle) == 1
            results = await asyncio.gather(*(store.load(rec.key) for _ in range(10)))
            assert all(r is not None for r in results)
            assert store._out == 1
        finally:
            await store.close()

    asyncio.run(main())


# --- the short path on libpq's documented wrapper, and nothing undocumented ------------


def run_prepared(api: str, name: bytes, query: bytes, params: list[bytes]) -> list[Any]:
    """Runs ``query`` once per parameter through a store connection's short path (sync or
    async); each answer is the first column of the binary result, or the exception raised."""

    def answer(run: Callable[[], Any]) -> Any:
        try:
            res = run()
        except psycopg.Error as exc:
            return exc
        return res.get_value(0, 0)

    if api == "sync":
        with sync_connection.connection_class(Health()).connect(SHARED_DSN) as conn:
            answers = [answer(lambda p=p: conn.run_prepared(name, query, p)) for p in params]
            assert conn.execute("SELECT 1").fetchone() == (1,), "left idle"
        return answers

    async def main() -> list[Any]:
        make = async_connection.connection_class(Health()).connect
        async with await make(SHARED_DSN) as conn:
            answers = []
            for p in params:
                try:
                    answers.append((await conn.run_prepared(name, query, p)).get_value(0, 0))
                except psycopg.Error as exc:
                    answers.append(exc)
            assert await (await conn.execute("SELECT 1")).fetchone() == (1,), "left idle"
        return answers

    return asyncio.run(main())


@pytest.mark.postgres
def test_short_path_sends_what_the_socket_cannot_take_at_once(api: str) -> None:
    """A parameter far larger than a socket buffer: libpq's flush asks to wait until the socket
    takes more, which both faces do (event loop writer; poll)."""
    big = bytes(range(256)) * (16 * 4096)  # 16 MiB
    query = b"SELECT octet_length($1)::int8"
    answers = run_prepared(api, b"cc_len", query, [big, b"", big[:3]])
    assert [int.from_bytes(a, "big") for a in answers] == [len(big), 0, 3]


@pytest.mark.postgres
def test_short_path_raises_the_exception_psycopg_has_for_the_sqlstate(api: str) -> None:
    query = b"SELECT (1 / (octet_length($1) - 1))::int8"
    ok, failed, again = run_prepared(api, b"cc_div", query, [b"xx", b"x", b"xx"])
    assert int.from_bytes(ok, "big") == 1 and int.from_bytes(again, "big") == 1
    assert isinstance(failed, psycopg.errors.DivisionByZero)
    assert "division by zero" in str(failed)


@pytest.mark.postgres
def test_a_forked_child_leaves_the_connections_idle_in_the_pool_alone(postgres_url: str) -> None:
    """Not only the parked connections: those psycopg_pool holds idle are the parent's too.
    The child's clean-up (collecting them sends the server a Terminate) must not reach them."""
    store = PostgresStore(postgres_url + "&pool_min=3")
    try:
        assert store.load(record().key) is None
        assert store._pool is not None
        store._pool.wait(timeout=30)  # documented: until pool_min connections are open
        inherited = list(store._connection_class.made)
        assert len(inherited) >= 3 and len(store._idle) == 1

        def child() -> bool:
            for conn in inherited:  # as the child's interpreter would at exit
                conn.close()
            return store.load(record().key) is None

        assert in_a_forked_child(child)
        for conn in inherited:  # a Terminate from the child would have closed them first
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert store.load(record().key) is None
    finally:
        store.close()


PRIVATE = re.compile(
    r"psycopg\.generators|psycopg\.pq\.abc|psycopg\.waiting|error_from_result"
    r"|\bconn\.wait\(|\bpool\._[a-z]|# unasync:"
)


def test_the_store_uses_documented_driver_interfaces_only() -> None:
    """docs/stores/postgres.md: no private or undocumented psycopg / psycopg_pool names, and
    no generator markers (the twins differ only through postgres/backend.py)."""
    import coatcheck

    root = coatcheck.__path__[0]
    found = []
    for path in sorted(
        [
            *glob.glob(f"{root}/stores/postgres/*.py"),
            *glob.glob(f"{root}/_async/stores/postgres*.py"),
            *glob.glob(f"{root}/_sync/stores/postgres*.py"),
        ]
    ):
        with open(path, encoding="utf-8") as source:
            found += [f"{path}: {m.group(0)}" for m in PRIVATE.finditer(source.read())]
    assert len(found) == 0, found
