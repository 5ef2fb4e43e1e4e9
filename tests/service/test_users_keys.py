"""Local users, service keys, the login throttle and revocation events over real service data
(SQLite and Redis; the data contract itself is tested on every kind in test_data.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher, extract_parameters
from argon2.profiles import RFC_9106_LOW_MEMORY

from coatcheck.core.errors import ConfigError, InvalidSessionId
from coatcheck.service.data import MemoryServiceData, ServiceData, ServiceDataError
from coatcheck.service.events import EventBatch, RevocationEvent, RevocationEvents
from coatcheck.service.keys import (
    ServiceKeyError,
    ServiceKeyExists,
    ServiceKeys,
    looks_like_service_key,
)
from coatcheck.service.throttle import LoginThrottle
from coatcheck.service.users import LocalUser, LocalUsers, UnknownUser, UserError, UserExists

from .test_data import Opened, url_for

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
NOW = 1_700_000_000.0


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as runner:
        yield runner


@pytest.fixture(params=["sqlite", "redis"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, runner: asyncio.Runner
) -> Iterator[Opened]:
    made = Opened(url_for(request.param, request, tmp_path), runner)
    yield made
    for data in made.made:
        runner.run(data.close())


class CountingData(MemoryServiceData):
    """Memory service data that counts calls: proves a refusal made no store call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def get(self, key: str) -> str | None:
        self.calls += 1
        return await super().get(key)


# Users


def test_users_add_authenticate_list(store: Opened) -> None:
    users = LocalUsers(store.open(), hasher=FAST)

    async def scenario() -> None:
        alice = await users.add("alice", "correct horse", now=NOW)
        assert alice == LocalUser("alice", NOW, False)
        await users.add("bob.b@example-1_x", "pw", now=NOW + 1)
        assert await users.authenticate("alice", "correct horse") == alice
        assert await users.authenticate("alice", "wrong") is None
        assert await users.authenticate("alice", "") is None
        assert await users.check_password("alice", "correct horse") is True
        assert await users.check_password("alice", "Correct horse") is False
        assert await users.get("alice") == alice
        assert await users.get("nobody") is None
        assert await users.get("bad name") is None
        assert [u.name for u in await users.list()] == ["alice", "bob.b@example-1_x"]
        with pytest.raises(UserExists, match="'alice' already exists"):
            await users.add("alice", "other")
        assert await users.authenticate("alice", "correct horse") == alice

    store.run(scenario())


def test_users_store_argon2id_hashes_never_the_password(store: Opened) -> None:
    data = store.open()
    users = LocalUsers(data)  # the default parameters

    async def scenario() -> None:
        await users.add("alice", "s3cret-pass")
        raw = await data.get("user:alice")
        assert raw is not None
        assert "s3cret-pass" not in raw
        stored = json.loads(raw)["hash"]
        assert stored.startswith("$argon2id$")
        params = extract_parameters(stored)
        wanted = RFC_9106_LOW_MEMORY
        assert (params.time_cost, params.memory_cost, params.parallelism) == (
            wanted.time_cost,
            wanted.memory_cost,
            wanted.parallelism,
        )

    store.run(scenario())


def test_users_rehash_on_login_with_new_parameters(store: Opened) -> None:
    data = store.open()

    async def scenario() -> None:
        await LocalUsers(data, hasher=FAST).add("alice", "pw-one")
        before = json.loads(await data.get("user:alice") or "{}")["hash"]
        stronger = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1)
        assert stronger.check_needs_rehash(before)
        users = LocalUsers(data, hasher=stronger)
        assert await users.authenticate("alice", "pw-one") is not None
        after = json.loads(await data.get("user:alice") or "{}")["hash"]
        assert after != before
        assert not stronger.check_needs_rehash(after)
        assert await users.authenticate("alice", "pw-one") is not None

    store.run(scenario())


def test_users_disabled_and_deleted(store: Opened) -> None:
    users = LocalUsers(store.open(), hasher=FAST)

    async def scenario() -> None:
        await users.add("alice", "pw", now=NOW)
        assert await users.set_disabled("alice", True) is True
        assert await users.get("alice") == LocalUser("alice", NOW, True)
        assert await users.authenticate("alice", "pw") is None
        assert await users.check_password("alice", "pw") is False
        assert await users.set_disabled("alice", False) is True
        assert await users.authenticate("alice", "pw") is not None
        assert await users.set_disabled("nobody", True) is False
        await users.set_password("alice", "new-pw")
        assert await users.authenticate("alice", "pw") is None
        assert await users.authenticate("alice", "new-pw") is not None
        assert await users.delete("alice") is True
        assert await users.delete("alice") is False
        assert await users.authenticate("alice", "new-pw") is None
        with pytest.raises(UnknownUser, match="no user named 'alice'"):
            await users.set_password("alice", "x")

    store.run(scenario())


@pytest.mark.parametrize("name", ["", "a b", "x" * 65, "ünï", "a/b", "a:b", 42, None])
def test_users_refuse_bad_names(name: Any) -> None:
    users = LocalUsers(MemoryServiceData(), hasher=FAST)
    with pytest.raises(UserError, match="not a valid user name"):
        asyncio.run(users.add(name, "pw"))


@pytest.mark.parametrize("password", ["", "x" * 1025, None, b"bytes"])
def test_users_refuse_bad_passwords(password: Any) -> None:
    users = LocalUsers(MemoryServiceData(), hasher=FAST)
    with pytest.raises(UserError, match="password"):
        asyncio.run(users.add("alice", password))


def test_unknown_and_bad_names_take_the_same_verification_path() -> None:
    """Unknown, malformed and disabled names each run one argon2 verification."""

    class CountingHasher(PasswordHasher):
        verified = 0

        def verify(self, hash: str | bytes, password: str | bytes) -> bool:
            CountingHasher.verified += 1
            return super().verify(hash, password)

    hasher = CountingHasher(time_cost=1, memory_cost=1024, parallelism=1)
    users = LocalUsers(MemoryServiceData(), hasher=hasher)

    async def scenario() -> None:
        await users.add("alice", "pw")
        await users.add("carol", "pw")
        await users.set_disabled("carol", True)
        for name, password in [
            ("alice", "pw"),
            ("alice", "wrong"),
            ("nobody", "pw"),
            ("bad name!", "pw"),
            (None, "pw"),
            ("carol", "pw"),
            ("alice", None),
        ]:
            before = CountingHasher.verified
            await users.authenticate(name, password)
            assert CountingHasher.verified == before + 1, name

    asyncio.run(scenario())


# Service keys


def test_service_keys_create_authenticate_revoke(store: Opened) -> None:
    data = store.open()
    keys = ServiceKeys(data)

    async def scenario() -> None:
        key, info = await keys.create("billing", "introspect", now=NOW)
        assert key.startswith("cck_")
        assert len(key) == 4 + 43
        assert looks_like_service_key(key)
        assert info.scope == "introspect"
        assert len(info.id) == 16
        assert int(info.id, 16) >= 0
        assert info.revoked_at is None
        admin_key, admin = await keys.create("ops", "admin", now=NOW + 1)
        assert await keys.authenticate(key) == info
        assert await keys.authenticate(admin_key) == admin
        assert key not in json.dumps(await data.scan(""))  # only digests are stored
        assert await keys.list() == [info, admin]
        with pytest.raises(ServiceKeyExists, match="'billing' exists"):
            await keys.create("billing", "admin")
        assert await keys.revoke("billing", now=NOW + 2) is True
        assert await keys.authenticate(key) is None
        assert await keys.revoke("billing") is False
        assert await keys.revoke(admin.id, now=NOW + 3) is True
        assert await keys.authenticate(admin_key) is None
        assert [k.revoked_at for k in await keys.list()] == [NOW + 2, NOW + 3]
        again, renewed = await keys.create("billing", "introspect")  # the name is free again
        assert await keys.authenticate(again) == renewed
        assert await keys.revoke("nobody") is False

    store.run(scenario())


@pytest.mark.parametrize(
    "garbage",
    [
        None,
        42,
        b"cck_" + b"a" * 43,
        "",
        "cck_",
        "cck_" + "a" * 42,
        "cck_" + "a" * 44,
        "cck_" + "a" * 42 + "!",
        "ccx_" + "a" * 43,
        "Bearer cck_" + "a" * 43,
    ],
)
def test_garbage_service_keys_refused_without_store_call(garbage: Any) -> None:
    data = CountingData()
    assert asyncio.run(ServiceKeys(data).authenticate(garbage)) is None
    assert data.calls == 0


def test_well_formed_unknown_key_is_looked_up_and_refused() -> None:
    data = CountingData()
    assert asyncio.run(ServiceKeys(data).authenticate("cck_" + "a" * 43)) is None
    assert data.calls == 1


@pytest.mark.parametrize(
    ("name", "scope"), [("ok", "root"), ("ok", ""), ("a b", "admin"), ("", "admin")]
)
def test_service_keys_refuse_bad_names_and_scopes(name: str, scope: str) -> None:
    with pytest.raises(ServiceKeyError, match=r"scope must be|not a valid service key name"):
        asyncio.run(ServiceKeys(MemoryServiceData()).create(name, scope))


# Login throttle


def test_throttle_locks_an_account_after_its_limit(store: Opened) -> None:
    data = store.open()
    throttle = LoginThrottle(data, per_account=(3, 300.0), per_ip=(100, 300.0))
    start = 1_700_000_100.0  # window [1_700_000_100, 1_700_000_400)

    async def scenario() -> None:
        for i in range(2):
            assert await throttle.retry_after("alice", "10.0.0.1", start + i) is None
            await throttle.failed("alice", "10.0.0.1", start + i)
        assert await throttle.retry_after("alice", "10.0.0.1", start + 2) is None
        await throttle.failed("alice", "10.0.0.1", start + 2)
        assert await throttle.retry_after("alice", "10.0.0.1", start + 10) == 290.0
        assert await throttle.retry_after("alice", "10.9.9.9", start + 10) == 290.0
        assert await throttle.retry_after("bob", "10.0.0.1", start + 10) is None
        assert await throttle.retry_after("alice", "10.0.0.1", start + 300) is None
        await throttle.failed("alice", "10.0.0.1", start + 301)  # a new window: count 1
        assert await throttle.retry_after("alice", None, start + 302) is None
        assert "alice" not in json.dumps(await data.scan(""))

    store.run(scenario())


def test_throttle_locks_an_ip_across_accounts(store: Opened) -> None:
    throttle = LoginThrottle(store.open(), per_account=(100, 300.0), per_ip=(4, 60.0))
    start = 1_700_000_040.0  # 60 s windows: this one ends at 1_700_000_100

    async def scenario() -> None:
        for i, name in enumerate(["a", "b", "c", "d"]):
            await throttle.failed(name, "192.0.2.7", start + i)
        assert await throttle.retry_after("e", "192.0.2.7", start + 10) == 50.0
        assert await throttle.retry_after("e", "192.0.2.8", start + 10) is None
        assert await throttle.retry_after("e", None, start + 10) is None

    store.run(scenario())


def test_throttle_success_clears_the_account(store: Opened) -> None:
    throttle = LoginThrottle(store.open(), per_account=(3, 300.0))
    start = 1_700_000_100.0

    async def scenario() -> None:
        await throttle.failed("alice", "10.0.0.1", start)
        await throttle.failed("alice", "10.0.0.1", start + 1)
        await throttle.succeeded("alice")
        await throttle.failed("alice", "10.0.0.1", start + 2)
        await throttle.failed("alice", "10.0.0.1", start + 3)
        assert await throttle.retry_after("alice", "10.0.0.1", start + 4) is None
        await throttle.failed("alice", "10.0.0.1", start + 4)
        assert await throttle.retry_after("alice", "10.0.0.1", start + 5) == 295.0

    store.run(scenario())


@pytest.mark.parametrize("limit", [(0, 300.0), (5, 0), (5, -1.0), (5,), "5/300", (True, 300.0)])
def test_throttle_refuses_bad_limits(limit: Any) -> None:
    with pytest.raises(ConfigError, match="per_account"):
        LoginThrottle(MemoryServiceData(), per_account=limit)


# Revocation events


def test_events_publish_and_read(store: Opened) -> None:
    events = RevocationEvents(store.open())

    async def scenario() -> None:
        assert await events.oldest_id() is None
        assert await events.newest_id() is None
        first = await events.publish("0123456789abcdef", "fedcba9876543210", now=NOW)
        second = await events.publish("0123456789ABCDEF", None, now=NOW + 1)
        assert second > first
        got = await events.after(0)
        assert got == [
            RevocationEvent(first, "0123456789abcdef", "fedcba9876543210", NOW),
            RevocationEvent(second, "0123456789abcdef", None, NOW + 1),
        ]
        assert json.loads(got[0].payload()) == {
            "id": "0123456789abcdef",
            "digest_prefix": "fedcba9876543210",
        }
        assert json.loads(got[1].payload()) == {"id": "0123456789abcdef", "digest_prefix": None}
        assert await events.after(first) == got[1:]
        assert await events.oldest_id() == first
        assert await events.newest_id() == second
        assert await events.wait(second, 0.2) == EventBatch((), second, 0)
        assert (await events.wait(first, 0)).events == tuple(got[1:])

    store.run(scenario())


def test_events_wait_wakes_on_publish(store: Opened) -> None:
    waiting_side, publishing_side = RevocationEvents(store.open()), RevocationEvents(store.open())

    async def scenario() -> None:
        last = await publishing_side.publish("0123456789abcdef", now=NOW)
        waiter = asyncio.create_task(waiting_side.wait(last, 600))
        await asyncio.sleep(0.3)
        assert not waiter.done()
        new = await publishing_side.publish("00ff00ff00ff00ff", bytes(range(32)), now=NOW)
        got = await asyncio.wait_for(waiter, 30)
        assert [(e.id, e.public_id, e.digest_prefix) for e in got.events] == [
            (new, "00ff00ff00ff00ff", bytes(range(8)).hex())
        ]
        assert (got.last_id, got.unreadable) == (new, 0)

    store.run(scenario())


@pytest.mark.parametrize(
    ("public_id", "prefix", "error"),
    [
        ("xyz", None, InvalidSessionId),
        ("0123456789abcde", None, InvalidSessionId),
        ("0123456789abcdef", "short", ServiceDataError),
        ("0123456789abcdef", "FEDCBA9876543210", ServiceDataError),
    ],
)
def test_events_refuse_bad_ids(public_id: str, prefix: str | None, error: type[Exception]) -> None:
    data: ServiceData = MemoryServiceData()
    with pytest.raises(error):
        asyncio.run(RevocationEvents(data).publish(public_id, prefix))
    assert asyncio.run(data.events_after(0)) == []


def test_events_skip_unreadable_payloads() -> None:
    data = MemoryServiceData()

    async def scenario() -> list[RevocationEvent]:
        await data.append_event("not json", NOW)
        await data.append_event('{"no": "id"}', NOW)
        good = await RevocationEvents(data).publish("0123456789abcdef", now=NOW)
        got = await RevocationEvents(data).after(0)
        assert [e.id for e in got] == [good]
        return got

    asyncio.run(scenario())


def test_events_wait_moves_past_unreadable_payloads(store: Opened) -> None:
    """A wait that read only payloads it cannot decode still says how far it read, so the
    next wait starts after them (before, it started at the same place and returned at once,
    for ever)."""
    data = store.open()
    events = RevocationEvents(data)

    async def scenario() -> None:
        first = await events.publish("0123456789abcdef", now=NOW)
        garbage = [await data.append_event(raw, NOW) for raw in ("not json", '{"no": "id"}')]
        batch = await events.wait(first, 600)  # events are kept: returns at once
        assert batch == EventBatch((), garbage[-1], 2)
        assert await events.wait(batch.last_id, 0) == EventBatch((), garbage[-1], 0)
        good = await events.publish("00ff00ff00ff00ff", now=NOW)
        mixed = await data.append_event("[]", NOW)
        batch = await events.wait(batch.last_id, 600)
        assert [e.id for e in batch.events] == [good]
        assert (batch.last_id, batch.unreadable) == (mixed, 1)

    store.run(scenario())
