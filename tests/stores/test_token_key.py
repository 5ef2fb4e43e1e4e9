"""The token key on every store: one key per store that every process agrees on, and the
sessions of ``cc1_`` tokens (issued before token version 2) still found by everything that
finds a user's sessions, until they expire.

A ``cc1_`` session is written the way coatcheck wrote it before version 2: through the store
contract on SQL and memory stores (nothing there depends on the shard), and as the raw Redis
layout of that version on Redis, where the store now refuses an unkeyed shard.
"""

from __future__ import annotations

import base64
import hashlib
import math
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import redis.cluster

from coatcheck import ConfigError, FakeClock, Policy, SessionLimitReached, open_store
from coatcheck._sync.stores.redis import RedisStore, parse_url
from coatcheck.core.policy import Verdict
from coatcheck.core.records import SessionRecord
from coatcheck.core.tokens import (
    TOKEN_KEY_ENV,
    V1_PREFIX,
    SessionKey,
    TokenCodec,
    new_token_key,
    unkeyed_user_shard,
)

HOUR = 3600.0


@pytest.fixture(autouse=True)
def no_configured_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_KEY_ENV, raising=False)


@pytest.fixture
def v1_session(store_url: str, manager: Any, clock: FakeClock) -> Iterator[Callable[..., str]]:
    """Writes a logged-in session of a ``cc1_`` token into the test's store; returns the token."""
    clients: list[Any] = []

    def write(user: str = "alice", *, age: float = HOUR, kind: str = "browser") -> str:
        shard = unkeyed_user_shard(user)
        token = V1_PREFIX + base64.urlsafe_b64encode(shard + secrets.token_bytes(32)).decode()
        created = clock.now - age
        record = SessionRecord(
            key=SessionKey(shard, hashlib.sha256(token.encode()).digest()),
            user_id=user,
            kind=kind,  # type: ignore[arg-type]
            created_at=created,
            last_seen_at=clock.now,
            authenticated_at=created,
            expires_at=clock.now + HOUR,
            data={"v": 1},
        )
        if store_url.startswith("redis"):
            clients.append(write_v1_redis(store_url, record))
        else:
            manager.store.insert(record)
        return token

    yield write
    for client in clients:
        client.close()


def write_v1_redis(url: str, record: SessionRecord) -> Any:
    """The Redis layout of token version 1: the session hash and the user's index under the
    unkeyed shard's tag, with the TTLs that version gave them."""
    options = parse_url(url)
    client: Any = (
        redis.cluster.RedisCluster(host=options.host, port=options.port)
        if options.cluster
        else redis.Redis(host=options.host, port=options.port, db=options.db)
    )
    tag, digest = record.key.shard.hex(), record.key.digest.hex()
    session = f"{options.prefix}{{{tag}}}:s:{digest}"
    index = f"{options.prefix}{{{tag}}}:u:{record.user_id}"
    at = math.ceil((record.expires_at + options.expired_grace) * 1000)
    fields: dict[str, Any] = {
        "kind": record.kind,
        "created": record.created_at,
        "seen": record.last_seen_at,
        "exp": record.expires_at,
        "v": record.version,
        "user": record.user_id,
        "auth": record.authenticated_at,
        **{f"d:{name}": value for name, value in record.data.items()},
    }
    client.hset(session, mapping=fields)
    client.pexpireat(session, at)
    client.zadd(index, {digest: record.created_at})
    client.pexpireat(index, at)
    return client


def digest_of(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def login(manager: Any, user: str = "alice") -> str:
    return str(manager.login(manager.load(None), user))


# --- one key per store ------------------------------------------------------------------


def test_every_manager_on_one_store_resolves_the_same_key(make_manager: Any) -> None:
    """Two processes on one store (two store objects on one SQLite file, PostgreSQL table or
    Redis prefix) agree on the key with no configuration: a user's sessions keep one shard."""
    a, b = make_manager(), make_manager()
    token = login(a)
    key = a.store.token_key()
    assert len(key) == 32 and b.store.token_key() == key
    assert a.token_codec().same_key(b.token_codec())
    assert b.token_codec().parse(token).shard == TokenCodec(key).user_shard("alice")
    assert not b.load(token).is_new
    second = login(b)
    assert {r.key.digest for r in a.list_user("alice")} == {
        digest_of(token),
        digest_of(second),
    }
    assert b.revoke_user("alice") == 2


def test_the_environment_key_wins_over_the_stores(
    make_manager: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    configured = new_token_key()
    monkeypatch.setenv(TOKEN_KEY_ENV, base64.urlsafe_b64encode(configured).decode())
    manager = make_manager()
    token = login(manager)
    assert manager.token_codec().same_key(TokenCodec(configured))
    assert manager.token_codec().parse(token).shard == TokenCodec(configured).user_shard("alice")
    assert manager.list_user("alice")[0].key.digest == digest_of(token)
    assert manager.revoke_user("alice") == 1


def test_migrate_stores_the_key_and_never_replaces_it(store_url: str) -> None:
    first = open_store(store_url)
    try:
        first.migrate()
        key = first.token_key()
        again = open_store(store_url)
        again.migrate()
        assert again.token_key() == key or store_url == "memory://"
        again.close()
    finally:
        first.close()


def test_revoke_all_keeps_the_key(make_manager: Any) -> None:
    manager = make_manager()
    login(manager)
    key = manager.store.token_key()
    manager.revoke_all()
    assert make_manager().store.token_key() == key


def test_what_changing_the_key_does(make_manager: Any, store_url: str) -> None:
    """docs/security.md: on Redis the sessions of the old key are no longer found (their
    tokens unmask to another shard, so the key names another slot); SQL and memory stores
    find records by digest alone and keep them."""
    token = login(make_manager())
    rekeyed = make_manager(token_key=new_token_key())
    assert rekeyed.load(token).is_new is store_url.startswith("redis")


# --- sessions of cc1_ tokens ------------------------------------------------------------


def test_a_v1_token_still_loads_and_saves(manager: Any, v1_session: Any) -> None:
    token = v1_session()
    session = manager.load(token)
    assert not session.is_new and session.user_id == "alice" and session["v"] == 1
    session["v"] = 2
    manager.save(session)
    assert manager.load(token)["v"] == 2


def test_list_and_logout_everywhere_find_v1_sessions(manager: Any, v1_session: Any) -> None:
    old = [v1_session(age=2 * HOUR), v1_session(age=HOUR)]
    new = login(manager)
    listed = manager.list_user("alice")
    assert [r.key.digest for r in listed] == [digest_of(t) for t in [*old, new]]
    assert manager.inspect(old[0])[0] is Verdict.VALID

    current = manager.load(new)
    assert manager.logout_other_sessions(current) == 2
    assert all(manager.load(t).is_new for t in old)
    assert [r.key.digest for r in manager.list_user("alice")] == [digest_of(new)]

    again = v1_session()
    assert manager.revoke_user("alice") == 2
    assert manager.load(again).is_new and manager.load(new).is_new
    assert manager.list_user("alice") == []


def test_the_per_user_limit_counts_and_evicts_v1_sessions(
    make_manager: Any, v1_session: Any
) -> None:
    manager = make_manager(Policy(max_sessions_per_user=2))
    oldest, older = v1_session(age=2 * HOUR), v1_session(age=HOUR)
    first = login(manager)
    assert manager.load(oldest).is_new, "the oldest (a v1 session) made room"
    assert not manager.load(older).is_new
    second = login(manager)
    assert manager.load(older).is_new
    assert {r.key.digest for r in manager.list_user("alice")} == {
        digest_of(first),
        digest_of(second),
    }


def test_the_refusing_limit_counts_v1_sessions(make_manager: Any, v1_session: Any) -> None:
    manager = make_manager(Policy(max_sessions_per_user=2, on_limit="refuse"))
    kept = [v1_session(age=2 * HOUR), v1_session(age=HOUR)]
    with pytest.raises(SessionLimitReached):
        login(manager)
    assert all(not manager.load(t).is_new for t in kept)
    v1_session("bob")  # another user's v1 session counts for bob only
    manager.revoke(kept[0])
    assert login(manager).startswith("cc2_")


def test_rotating_a_v1_session_moves_it_to_version_2(make_manager: Any, v1_session: Any) -> None:
    manager = make_manager(Policy(max_sessions_per_user=1))
    token = v1_session()
    session = manager.load(token)
    new = manager.rotate(session)
    assert new.startswith("cc2_") and manager.load(token).is_new
    assert manager.load(new)["v"] == 1
    assert [r.key.digest for r in manager.list_user("alice")] == [digest_of(new)]
    relogged = manager.login(manager.load(new), "alice")
    assert [r.key.digest for r in manager.list_user("alice")] == [digest_of(relogged)]


@pytest.mark.parametrize("kind", ["redis_url", "redis_cluster_url"])
def test_a_redis_store_refuses_a_second_codec(kind: str, request: pytest.FixtureRequest) -> None:
    store = RedisStore(str(request.getfixturevalue(kind)))
    try:
        store.use_tokens(TokenCodec(bytes(32)))
        store.use_tokens(TokenCodec(bytes(32)))  # the same key again: fine
        with pytest.raises(ConfigError, match="another token key"):
            store.use_tokens(TokenCodec(bytes(range(32))))
    finally:
        store.close()
