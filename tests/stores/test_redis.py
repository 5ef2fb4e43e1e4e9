"""What only the Redis store has to prove: URL options, key layout and slots, TTLs, the user
index cleaning itself, cross-slot login on a cluster, and failures that heal by themselves.

The shared behaviour (limits, rotation, patches, purge ...) is in test_conformance.py.
"""

from __future__ import annotations

import asyncio
import base64
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import redis.cluster
from fixtures_redis import RedisServer
from redis.crc import key_slot

from coatcheck import (
    ConfigError,
    SessionConflict,
    SessionGone,
    SessionLimitReached,
    StoreUnavailable,
    open_async_store,
    open_store,
)
from coatcheck._async.stores.redis import AsyncRedisStore
from coatcheck._sync.stores.redis import RedisStore
from coatcheck.core.policy import WritePlan
from coatcheck.core.records import (
    Patch,
    Revocation,
    SessionRecord,
    Tombstone,
    UserLimit,
    public_id_bytes,
)
from coatcheck.core.tokens import TOKEN_KEY_ENV, SessionKey, TokenCodec
from coatcheck.stores.redis.url import parse_url

HOUR = 3600.0
# Every store in these tests derives user shards from this key (COATCHECK_TOKEN_KEY, set below),
# as the manager of an application would give it the manager's own.
TOKEN_KEY = bytes(range(32))
TOKENS = TokenCodec(TOKEN_KEY)
# The async store pipelines its per-request commands on one connection by default; with
# multiplex=false (and with RESP3) it takes a connection per command (the lane).
APIS = ["sync", "async", "async-lane"]
LANE = "&multiplex=false"
Raw = redis.Redis | redis.cluster.RedisCluster


def make_record(
    user: str | None = None,
    *,
    kind: str = "browser",
    now: float | None = None,
    ttl: float = HOUR,
    data: dict[str, Any] | None = None,
    client_ip: str | None = None,
    user_agent: str | None = None,
) -> SessionRecord:
    """A fresh record with real-time timestamps (Redis TTLs run on the server's clock)."""
    now = time.time() if now is None else now
    _, key = TOKENS.new_token(user)
    return SessionRecord(
        key=key,
        user_id=user,
        kind=kind,  # type: ignore[arg-type]
        created_at=now,
        last_seen_at=now,
        authenticated_at=now if user is not None else None,
        expires_at=now + ttl,
        client_ip=client_ip,
        user_agent=user_agent,
        data=dict(data or {}),
    )


def anonymous_in_other_slot(user: str) -> SessionRecord:
    """An anonymous record whose hash slot differs from ``user``'s slot."""
    user_slot = key_slot(TOKENS.user_shard(user).hex().encode())
    while True:
        candidate = make_record()
        if key_slot(candidate.key.shard.hex().encode()) != user_slot:
            return candidate


def raw_client(url: str) -> Raw:
    """A plain redis-py client on the store's server(s), bytes in and out."""
    options = parse_url(url)
    if options.cluster:
        return redis.cluster.RedisCluster(host=options.host, port=options.port)
    return redis.Redis(host=options.host, port=options.port, db=options.db)


def raw_node_slots(node: RedisServer) -> list[list[Any]]:
    """CLUSTER SLOTS as this node answers it."""
    client = node.client()
    try:
        own = f"{node.port}"
        return [
            entry for entry in client.execute_command("CLUSTER SLOTS") if str(entry[2][1]) == own
        ]
    finally:
        client.close()


def pexpiretime(raw: Raw, name: str) -> int:
    return int(raw.execute_command("PEXPIRETIME", name))


@pytest.fixture(autouse=True)
def token_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_KEY_ENV, base64.urlsafe_b64encode(TOKEN_KEY).decode())


@pytest.fixture(params=["redis", "cluster"])
def url(request: pytest.FixtureRequest) -> str:
    fixture = "redis_url" if request.param == "redis" else "redis_cluster_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def store(url: str) -> Iterator[RedisStore]:
    s = RedisStore(url)
    s.use_tokens(TOKENS)
    yield s
    s.close()


@pytest.fixture
def raw(url: str) -> Iterator[Raw]:
    client = raw_client(url)
    yield client
    client.close()


# --- URL -------------------------------------------------------------------------------


def test_url_defaults() -> None:
    o = parse_url("redis://cache.internal")
    assert (o.host, o.port, o.db, o.cluster, o.tls) == ("cache.internal", 6379, 0, False, False)
    assert o.prefix == "coatcheck:" and o.protocol == 2
    assert o.socket_timeout == 2.0 and o.socket_connect_timeout == 2.0
    assert o.max_connections is None and o.username is None and o.password is None


def test_url_with_every_option() -> None:
    o = parse_url(
        "rediss://app:s%40cret@10.0.0.5:6380/3?prefix=shop:&protocol=3&socket_timeout=0.5"
        "&socket_connect_timeout=1&max_connections=20&ssl_ca_certs=/etc/ca.pem"
        "&ssl_cert_reqs=optional"
    )
    assert (o.host, o.port, o.db, o.tls, o.cluster) == ("10.0.0.5", 6380, 3, True, False)
    assert (o.username, o.password) == ("app", "s@cret")
    assert (o.prefix, o.protocol, o.socket_timeout, o.socket_connect_timeout) == (
        "shop:",
        3,
        0.5,
        1.0,
    )
    assert o.max_connections == 20 and o.ssl_ca_certs == "/etc/ca.pem"
    assert o.ssl_cert_reqs == "optional"


def test_cluster_url() -> None:
    o = parse_url("redis+cluster://node-a:7000?prefix=p:")
    assert (o.cluster, o.host, o.port, o.db, o.prefix) == (True, "node-a", 7000, 0, "p:")
    assert parse_url("rediss+cluster://node-a:7000/0").tls


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://h?colour=blue", "unknown Redis store URL option 'colour'"),
        ("redis://h?ssl_ca_certs=/ca.pem", "need rediss://"),
        ("redis://h?prefix=a:&prefix=b:", "given twice"),
        ("redis://h?prefix=app{1}:", "must not contain"),
        ("redis://h?protocol=4", "protocol must be 2 or 3"),
        ("redis://h?socket_timeout=-1", "socket_timeout must be positive"),
        ("redis://h?socket_timeout=soon", "socket_timeout must be a number"),
        ("redis://h?max_connections=0", "max_connections must be positive"),
        ("redis://h/zero", "database must be a number"),
        ("redis+cluster://h:7000/1", "only database 0"),
        ("rediss://h?ssl_cert_reqs=maybe", "ssl_cert_reqs"),
        ("redis://h:99999", "malformed"),
        ("memcached://h", "must start with redis://"),
    ],
)
def test_bad_urls_are_config_errors(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_url(url)


def test_password_never_shows_in_messages_or_repr() -> None:
    url = "redis://app:hunter2@127.0.0.1:1/0"
    store = RedisStore(url)
    try:
        assert "hunter2" not in repr(store) and "hunter2" not in store.options.where
        assert "127.0.0.1:1" in store.options.where
    finally:
        store.close()


def test_urls_open_the_redis_store_without_connecting() -> None:
    sync = open_store("redis://127.0.0.1:1/0?prefix=x:")
    asynchronous = open_async_store("redis+cluster://127.0.0.1:1?prefix=x:")
    assert isinstance(sync, RedisStore) and isinstance(asynchronous, AsyncRedisStore)
    sync.close()
    asyncio.run(asynchronous.close())


# --- key layout, slots, TTL ------------------------------------------------------------


def test_session_is_one_hash_under_its_shard_tag(store: RedisStore, raw: Raw) -> None:
    rec = make_record(
        "alice", data={"cart": [1, 2], "n": None}, client_ip="192.0.2.1", user_agent="ua"
    )
    store.insert(rec)
    name = store.session_key(rec.key)
    assert name == f"{store.prefix}{{{rec.key.shard.hex()}}}:s:{rec.key.digest.hex()}"
    fields = raw.hgetall(name)
    assert set(fields) == {
        b"user",
        b"kind",
        b"created",
        b"seen",
        b"auth",
        b"exp",
        b"ip",
        b"ua",
        b"v",
        b"pk",
        b"d:cart",
        b"d:n",
    }
    assert fields[b"d:cart"] == b"[1,2]" and fields[b"d:n"] == b"null"
    assert fields[b"user"] == b"alice" and fields[b"v"] == b"1"
    assert store.load(rec.key) == rec


def test_anonymous_sessions_are_in_no_index(store: RedisStore, raw: Raw) -> None:
    rec = make_record(data={"x": 1})
    store.insert(rec)
    assert set(raw.hgetall(store.session_key(rec.key))) == {
        b"kind",
        b"created",
        b"seen",
        b"exp",
        b"v",
        b"pk",
        b"d:x",
    }
    assert list(raw.scan_iter(match=store.prefix + "*:u:*")) == []
    assert store.load(rec.key) == rec


def test_a_users_sessions_and_index_share_one_slot(url: str, store: RedisStore, raw: Raw) -> None:
    for user in ("alice", "bob", "carol@example.com", "用户"):
        rec = make_record(user)
        store.insert(rec)
        index = store.index_key(user)
        assert raw.zscore(index, rec.key.digest.hex()) == rec.created_at
        slots = {
            int(raw.execute_command("CLUSTER KEYSLOT", name))
            if parse_url(url).cluster
            else key_slot(name.encode())
            for name in (store.session_key(rec.key), index)
        }
        assert len(slots) == 1


def test_ttl_is_expires_at_plus_grace_and_the_index_follows_the_latest(
    store: RedisStore, raw: Raw
) -> None:
    now = time.time()
    grace = store.options.expired_grace
    assert grace == 3600, "expired sessions linger an hour by default"
    long = make_record("alice", now=now, ttl=2 * HOUR)
    short = make_record("alice", now=now + 1, ttl=HOUR)
    store.insert(long)
    store.insert(short)
    index = store.index_key("alice")
    assert pexpiretime(raw, store.session_key(long.key)) == math.ceil(
        (long.expires_at + grace) * 1000
    )
    assert pexpiretime(raw, store.session_key(short.key)) == math.ceil(
        (short.expires_at + grace) * 1000
    )
    assert pexpiretime(raw, index) == math.ceil((long.expires_at + grace) * 1000), "never pulled in"
    later = now + 3 * HOUR
    assert store.update(short.key, WritePlan(Patch(), now + 2, later)) == 2
    assert pexpiretime(raw, store.session_key(short.key)) == math.ceil((later + grace) * 1000)
    assert pexpiretime(raw, index) == math.ceil((later + grace) * 1000), (
        "pushed out with its member"
    )


def test_public_id_key_lives_and_dies_with_its_session(
    url: str, store: RedisStore, raw: Raw
) -> None:
    """The :p: key is in the session's slot, has the session's expiry at every write, and
    goes with the session on every path that deletes one."""
    now = time.time()

    def public(rec: SessionRecord) -> str:
        return store.public_key(public_id_bytes(rec.key))

    recs = [make_record("alice", now=now + i) for i in range(4)] + [make_record(data={"x": 1})]
    for rec in recs:
        store.insert(rec)
        session = store.session_key(rec.key)
        assert raw.hget(session, "pk") == public(rec).encode()
        assert raw.get(public(rec)) == session.encode()
        assert pexpiretime(raw, public(rec)) == pexpiretime(raw, session)
        if parse_url(url).cluster:
            assert raw.execute_command("CLUSTER KEYSLOT", public(rec)) == raw.execute_command(
                "CLUSTER KEYSLOT", session
            )
        assert key_slot(public(rec).encode()) == key_slot(session.encode())
    later = now + 3 * HOUR
    store.update(recs[0].key, WritePlan(Patch(), now + 5, later))
    assert pexpiretime(raw, public(recs[0])) == pexpiretime(raw, store.session_key(recs[0].key))
    assert pexpiretime(raw, public(recs[0])) == math.ceil(
        (later + store.options.expired_grace) * 1000
    )
    # delete, rotation, eviction by the limit, delete_user, purge, delete_all
    store.delete(recs[0].key)
    rotated = make_record("alice", now=now + 10)
    store.insert(rotated, replaces=recs[1].key)
    evicting = make_record("alice", now=now + 11)
    store.insert(evicting, limit=UserLimit(3))  # recs[2] is the oldest of three
    assert [raw.exists(public(r)) for r in recs[:4]] == [0, 0, 0, 1]
    assert store.delete_by_public_id(public_id_bytes(recs[3].key), user_id="bob") is None
    assert store.delete_by_public_id(public_id_bytes(recs[3].key), user_id="alice") == recs[3].key
    assert not raw.exists(public(recs[3]))
    store.delete_user("alice")
    assert not raw.exists(public(rotated)) and not raw.exists(public(evicting))
    assert store.purge_expired(later + 2 * HOUR) == 1
    assert not raw.exists(public(recs[4]))
    store.insert(recs[4])
    assert store.delete_all() == 1
    assert list(raw.scan_iter(match=store.prefix + "*")) in (
        [],
        [store.prefix.encode() + b"token_key"],
    )


def test_tombstone_is_a_hash_in_the_sessions_slot_expiring_with_the_session(
    store: RedisStore, raw: Raw
) -> None:
    now = time.time()
    rec = make_record("alice", now=now, ttl=HOUR)
    other = make_record("alice", now=now + 1, ttl=2 * HOUR)
    for r in (rec, other):
        store.insert(r)
    assert store.delete(rec.key, revoked=Revocation("logout", now + 5))
    tomb = store.tombstone_key(rec.key)
    assert tomb == store.session_key(rec.key).replace(":s:", ":t:")
    assert key_slot(tomb.encode()) == key_slot(store.session_key(rec.key).encode())
    assert raw.hgetall(tomb) == {
        b"reason": b"logout",
        b"at": repr(now + 5).encode(),
        b"exp": repr(rec.expires_at).encode(),
    }
    assert pexpiretime(raw, tomb) == math.ceil(rec.expires_at * 1000)
    assert store.tombstone(rec.key) == Tombstone("logout", now + 5, rec.expires_at)
    assert store.delete(rec.key, revoked=Revocation("revoked_by_admin", now + 6)) is False
    assert store.tombstone(rec.key).reason == "logout", "nothing written for a gone session"
    store.delete(other.key)  # no revocation: no tombstone
    assert not raw.exists(store.tombstone_key(other.key))
    assert store.delete_all() == 0 and raw.exists(tomb), "delete_all leaves tombstones"


def test_index_cleans_itself(store: RedisStore, raw: Raw) -> None:
    now = time.time()
    first, second, third = (make_record("alice", now=now + i) for i in range(3))
    for rec in (first, second, third):
        store.insert(rec)
    index = store.index_key("alice")
    # A session key vanishing on its own (its TTL) leaves a stale index member ...
    raw.delete(store.session_key(first.key))
    assert raw.zcard(index) == 3
    # ... that reads skip, the next limited insert drops, and purge drops too.
    assert [r.key for r in store.list_user("alice", now)] == [second.key, third.key]
    fourth = make_record("alice", now=now + 3)
    assert store.insert(fourth, limit=UserLimit(3)) == []
    assert raw.zscore(index, first.key.digest.hex()) is None
    raw.delete(store.session_key(second.key))
    assert store.purge_expired(now) == 0
    assert sorted(raw.zrange(index, 0, -1)) == sorted(
        r.key.digest.hex().encode() for r in (third, fourth)
    )
    # Deleting the last sessions deletes the index with them.
    assert store.delete_user("alice") == 2
    assert raw.exists(index) == 0


def test_vanished_sessions_do_not_count_against_the_limit(store: RedisStore, raw: Raw) -> None:
    now = time.time()
    kept, vanished = make_record("alice", now=now), make_record("alice", now=now + 1)
    store.insert(kept)
    store.insert(vanished)
    raw.delete(store.session_key(vanished.key))
    assert store.insert(make_record("alice", now=now + 2), limit=UserLimit(2)) == []
    assert store.load(kept.key) is not None


def test_shard_must_match_the_user(store: RedisStore, raw: Raw) -> None:
    rec = make_record("alice")
    rec.key = SessionKey(b"\0\0\0\0", rec.key.digest)
    with pytest.raises(ValueError, match="user_shard"):
        store.insert(rec)
    assert list(raw.scan_iter(match=store.prefix + "*")) == []


def test_patches_larger_than_one_lua_unpack(store: RedisStore) -> None:
    rec = make_record("alice", data={f"old{i}": i for i in range(1500)})
    store.insert(rec)
    patch = Patch(
        {f"new{i}": str(i) for i in range(2500)},
        frozenset(f"old{i}" for i in range(1200)),
    )
    assert store.update(rec.key, WritePlan(patch, rec.created_at, rec.expires_at)) == 2
    loaded = store.load(rec.key)
    assert loaded is not None
    assert loaded.data == {
        **{f"old{i}": i for i in range(1200, 1500)},
        **{f"new{i}": i for i in range(2500)},
    }


def test_delete_all_and_purge_stay_inside_their_prefix(url: str, raw: Raw) -> None:
    # A prefix that is also a glob pattern, and a neighbour that pattern would match.
    base = parse_url(url).prefix
    mine = RedisStore(url.replace(f"prefix={base}", f"prefix={base}a*"))
    neighbour = RedisStore(url.replace(f"prefix={base}", f"prefix={base}abc"))
    try:
        now = time.time()
        theirs = [make_record("alice"), make_record()]
        for rec in theirs:
            neighbour.insert(rec)
        mine.insert(make_record("alice"))
        mine.insert(make_record())
        raw.set(mine.prefix + "unrelated", b"x")
        assert mine.purge_expired(now + 2 * HOUR) == 2
        mine.insert(make_record("alice"))
        mine.insert(make_record())
        assert mine.delete_all() == 2
        assert all(neighbour.load(rec.key) is not None for rec in theirs)
        assert neighbour.count_active(0, now) == 2
        assert raw.get(mine.prefix + "unrelated") == b"x"
    finally:
        mine.close()
        neighbour.close()


def test_migrate_loads_the_scripts(store: RedisStore, raw: Raw) -> None:
    store.migrate()
    shas = [s.sha for s in (store._conn.update_script, store._conn.insert_script)]
    assert all(raw.script_exists(*shas))


# --- no resurrection -------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
def test_update_after_delete_does_not_resurrect(url: str, raw: Raw, api: str) -> None:
    rec = make_record("alice", data={"k": 1})

    async def scenario(store: Any) -> None:
        await maybe(store.insert(rec))
        loaded = await maybe(store.load(rec.key))
        assert loaded is not None
        assert await maybe(store.delete(rec.key))
        plan = WritePlan(Patch({"late": "true"}), loaded.last_seen_at + 1, loaded.expires_at)
        with pytest.raises(SessionGone):
            await maybe(store.update(rec.key, plan))
        with pytest.raises(SessionGone):
            await maybe(store.update(rec.key, plan, expected_version=loaded.version))
        assert await maybe(store.load(rec.key)) is None

    run(api, url, scenario)
    names = RedisStore(url)
    names.use_tokens(TOKENS)
    assert raw.exists(names.session_key(rec.key), names.index_key("alice")) == 0
    names.close()


def test_version_conflict_changes_nothing(store: RedisStore) -> None:
    rec = make_record("alice", data={"n": 0})
    store.insert(rec)
    with pytest.raises(SessionConflict):
        store.update(
            rec.key,
            WritePlan(Patch({"n": "1"}), rec.created_at, rec.expires_at),
            expected_version=7,
        )
    assert store.load(rec.key) == rec


# --- rotation across slots on a cluster ------------------------------------------------


@pytest.fixture
def cluster_store(redis_cluster_url: str) -> Iterator[RedisStore]:
    s = RedisStore(redis_cluster_url)
    yield s
    s.close()


@pytest.mark.cluster
def test_cluster_login_rotation_across_slots(cluster_store: RedisStore) -> None:
    store = cluster_store
    anon = anonymous_in_other_slot("alice")
    store.insert(anon)
    earlier = make_record("alice", now=time.time() - 1)
    store.insert(earlier)
    user = make_record("alice")
    assert store.insert(user, replaces=anon.key, limit=UserLimit(1)) == [earlier.key.digest]
    assert store.load(anon.key) is None and store.load(earlier.key) is None
    assert [r.key for r in store.list_user("alice", time.time())] == [user.key]


@pytest.mark.cluster
def test_cluster_rotation_of_a_missing_session_changes_nothing(cluster_store: RedisStore) -> None:
    store = cluster_store
    anon = anonymous_in_other_slot("alice")  # never stored
    other = make_record("alice", now=time.time() - 1)
    store.insert(other)
    user = make_record("alice")
    with pytest.raises(SessionGone):
        store.insert(user, replaces=anon.key, limit=UserLimit(1))
    assert store.load(user.key) is None
    assert store.load(other.key) is not None, "nothing evicted for a rotation that failed"


@pytest.mark.cluster
def test_cluster_rotation_refused_by_the_limit_keeps_the_old_session(
    cluster_store: RedisStore,
) -> None:
    store = cluster_store
    anon = anonymous_in_other_slot("alice")
    store.insert(anon)
    other = make_record("alice", now=time.time() - 1)
    store.insert(other)
    user = make_record("alice")
    with pytest.raises(SessionLimitReached):
        store.insert(user, replaces=anon.key, limit=UserLimit(1, refuse=True))
    assert store.load(anon.key) is not None and store.load(other.key) is not None
    assert store.load(user.key) is None


@pytest.mark.cluster
def test_cluster_rotation_compensates_when_the_old_session_vanishes_midway(
    cluster_store: RedisStore, redis_cluster_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old session is deleted between the insert (new slot) and the take-over (old
    slot): the new record is taken back and the caller gets SessionGone."""
    store = cluster_store
    anon = anonymous_in_other_slot("alice")
    store.insert(anon)
    user = make_record("alice")
    insert_in_one_slot = store._insert

    def insert_then_lose_the_old_one(*args: Any, **kwargs: Any) -> list[bytes]:
        evicted = insert_in_one_slot(*args, **kwargs)
        assert store.load(user.key) is not None
        other = RedisStore(redis_cluster_url)  # e.g. a concurrent logout
        other.delete(anon.key)
        other.close()
        return evicted

    monkeypatch.setattr(store, "_insert", insert_then_lose_the_old_one)
    with pytest.raises(SessionGone):
        store.insert(user, replaces=anon.key)
    monkeypatch.undo()
    assert store.load(user.key) is None and store.load(anon.key) is None
    assert store.list_user("alice", time.time()) == []


@pytest.mark.cluster
def test_cluster_same_slot_rotation_is_one_step(cluster_store: RedisStore) -> None:
    store = cluster_store
    old = make_record("alice", data={"k": 1})
    store.insert(old)
    new = make_record("alice", data={"k": 1})
    assert store.insert(new, replaces=old.key, limit=UserLimit(1)) == []
    assert store.load(old.key) is None
    assert [r.key for r in store.list_user("alice", time.time())] == [new.key]


@pytest.mark.cluster
def test_first_use_of_an_async_cluster_store_may_be_concurrent(redis_cluster_url: str) -> None:
    """redis.asyncio's cluster client fails some of many first commands issued at once
    unless its slot map was loaded first; the store does that once, up front."""

    async def scenario() -> None:
        store = AsyncRedisStore(redis_cluster_url)
        try:
            keys = [make_record().key for _ in range(50)]
            assert await asyncio.gather(*(store.load(k) for k in keys)) == [None] * 50
        finally:
            await store.close()

    asyncio.run(scenario())


# --- failures --------------------------------------------------------------------------


@pytest.mark.fault
@pytest.mark.parametrize("api", APIS)
def test_server_down_then_back(redis_instance: Callable[[], RedisServer], api: str) -> None:
    server = redis_instance()
    url = f"redis://127.0.0.1:{server.port}/0?prefix=fault:"
    where = f"127.0.0.1:{server.port}"

    async def scenario(store: Any) -> None:
        rec = make_record("alice", data={"k": 1})
        await maybe(store.insert(rec))
        server.stop()
        plan = WritePlan(Patch({"k": "2"}), rec.created_at, rec.expires_at)
        for call in (
            lambda: store.load(rec.key),
            lambda: store.update(rec.key, plan),
            lambda: store.insert(make_record("alice")),
            lambda: store.delete(rec.key),
            lambda: store.list_user("alice", rec.created_at),
            lambda: store.purge_expired(rec.created_at),
        ):
            with pytest.raises(StoreUnavailable, match=where) as caught:
                await maybe(call())
            assert isinstance(caught.value.__cause__, redis.exceptions.ConnectionError)
        server.start()  # a fresh, empty server: no data, no scripts
        client = server.client()
        try:
            assert client.script_exists(store._conn.insert_script.sha) == [False]
        finally:
            client.close()
        again = make_record("alice", data={"k": 1})
        await maybe(store.insert(again))  # NOSCRIPT -> loaded again
        assert await maybe(store.update(again.key, plan)) == 2
        loaded = await maybe(store.load(again.key))
        assert loaded is not None and loaded.data == {"k": 2}

    run(api, url, scenario)


@pytest.mark.fault
def test_unreachable_cluster_seed_is_unavailable() -> None:
    from servers import free_port

    port = free_port()
    store = RedisStore(f"redis+cluster://127.0.0.1:{port}?socket_connect_timeout=1")
    try:
        with pytest.raises(StoreUnavailable, match=f"127.0.0.1:{port}"):
            store.load(make_record().key)
    finally:
        store.close()


@pytest.mark.fault
def test_cluster_url_on_a_plain_server_is_a_config_error(
    redis_instance: Callable[[], RedisServer],
) -> None:
    server = redis_instance()
    store = RedisStore(f"redis+cluster://127.0.0.1:{server.port}")
    try:
        with pytest.raises(ConfigError, match="cluster mode is not enabled"):
            store.load(make_record().key)
    finally:
        store.close()


@pytest.mark.cluster
def test_plain_url_on_a_cluster_node_is_a_config_error(redis_cluster: list[RedisServer]) -> None:
    store = RedisStore(f"redis://127.0.0.1:{redis_cluster[0].port}/0?prefix=cctest:moved:")
    try:
        # A third of the slots live on this node; find a key that lives elsewhere.
        here = {
            slot
            for start, end, *_ in raw_node_slots(redis_cluster[0])
            for slot in range(start, end + 1)
        }
        elsewhere = next(
            rec
            for rec in iter(make_record, None)
            if key_slot(rec.key.shard.hex().encode()) not in here
        )
        with pytest.raises(ConfigError, match="use redis\\+cluster://"):
            store.load(elsewhere.key)
    finally:
        store.close()


def test_logic_errors_are_not_disguised(store: RedisStore, raw: Raw) -> None:
    rec = make_record("alice")
    raw.set(store.session_key(rec.key), b"not a hash")
    with pytest.raises(redis.exceptions.ResponseError, match="WRONGTYPE"):
        store.load(rec.key)
    with pytest.raises(redis.exceptions.ResponseError, match="WRONGTYPE"):
        store.update(rec.key, WritePlan(Patch(), rec.created_at, rec.expires_at))
    raw.delete(store.session_key(rec.key))
    raw.hset(store.session_key(rec.key), mapping={"v": 1})
    with pytest.raises(ValueError, match="not a coatcheck session"):
        store.load(rec.key)
    with pytest.raises(ValueError, match=r"not a coatcheck session \(no field kind, created"):
        store.load(rec.key, data=False)
    with pytest.raises(ValueError, match="not a coatcheck session"):
        store.load_many([rec.key], data=False)
    raw.hset(store.session_key(rec.key), mapping={"kind": "x", "created": 1, "seen": 1, "exp": 2})
    with pytest.raises(ValueError, match=r"not a coatcheck session \(KeyError"):
        store.load(rec.key, data=False)
    raw.delete(store.session_key(rec.key))
    raw.hset(store.session_key(rec.key), mapping={"other": "program"})
    assert store.load(rec.key, data=False) is None, "none of a session's fields: no session"


# --- helpers ---------------------------------------------------------------------------


async def maybe(value: Any) -> Any:
    """Awaits what the async store returns; passes the sync store's results through."""
    if asyncio.iscoroutine(value):
        return await value
    return value


def run(api: str, url: str, scenario: Callable[[Any], Any]) -> None:
    """Runs ``scenario(store)`` against the sync or the async store on ``url``."""
    if api == "async-lane":
        url += LANE
    if api == "sync":
        store = RedisStore(url)
        try:
            asyncio.run(scenario(store))
        finally:
            store.close()
        return

    async def with_async_store() -> None:
        store = AsyncRedisStore(url)
        try:
            await scenario(store)
        finally:
            await store.close()

    asyncio.run(with_async_store())


def test_expired_grace_option() -> None:
    assert parse_url("redis://h/0?expired_grace=0").expired_grace == 0
    assert parse_url("redis://h/0").expired_grace == 3600
    with pytest.raises(ConfigError, match="expired_grace"):
        parse_url("redis://h/0?expired_grace=-1")


@pytest.mark.parametrize("api", APIS)
def test_a_hung_server_is_unavailable_not_a_hang(
    api: str, redis_instance: Callable[[], RedisServer]
) -> None:
    """A server that accepts but never answers (SIGSTOP) costs socket_timeout, then 503."""
    import os
    import signal

    server = redis_instance()
    assert server.process is not None
    url = f"redis://{server.address}/0?prefix=hung:&socket_timeout=0.3"
    _, key = TOKENS.new_token("alice")
    if api == "sync":
        store: Any = RedisStore(url)
        run: Callable[[Any], Any] = lambda result: result  # noqa: E731
    else:
        loop = asyncio.new_event_loop()
        store = AsyncRedisStore(url + (LANE if api == "async-lane" else ""))
        run = loop.run_until_complete
    try:
        assert run(store.load(key)) is None
        os.kill(server.process.pid, signal.SIGSTOP)
        try:
            with pytest.raises(StoreUnavailable):
                run(store.load(key))
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
        assert run(store.load(key)) is None, "the same store works again"
    finally:
        run(store.close())
        if api != "sync":
            loop.close()


@pytest.mark.parametrize("api", APIS)
def test_connections_killed_while_idle_are_replaced_not_reported(
    redis_instance: Callable[[], RedisServer], api: str
) -> None:
    """The per-request path keeps idle connections; one the server closed meanwhile (timeout,
    CLIENT KILL, a failover) is dropped at checkout, so the next request still succeeds.
    A private server: killing every client of the shared one would hit other test runs."""
    redis_url = f"redis://{redis_instance().address}/0?prefix=killed:"

    async def scenario(store: Any) -> None:
        rec = make_record("alice", data={"k": 1})
        await maybe(store.insert(rec))
        assert (await maybe(store.load(rec.key))).data == {"k": 1}
        killer = raw_client(redis_url)
        try:
            assert killer.execute_command("CLIENT KILL TYPE normal SKIPME yes") >= 1
        finally:
            killer.close()
        await asyncio.sleep(0.05)  # let the event loop see the close, as between requests
        for _ in range(3):
            loaded = await maybe(store.load(rec.key))
            assert loaded is not None and loaded.data == {"k": 1}
        plan = WritePlan(Patch({"k": "2"}), rec.created_at, rec.expires_at)
        assert await maybe(store.update(rec.key, plan)) == 2

    run(api, redis_url, scenario)
