"""One behavioural contract, run against every store and through both the sync and async API.

Each test gets an empty store of one kind (memory, SQLite, PostgreSQL, Redis, Redis Cluster)
and an injected clock: timeouts are crossed by moving the clock, never by sleeping.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

import pytest
from harness import alive, logged_in

from coatcheck import (
    ConfigError,
    FakeClock,
    InvalidSessionId,
    Policy,
    SessionConflict,
    SessionDataError,
    SessionGone,
    SessionLimitReached,
    SessionTooLarge,
    Verdict,
)
from coatcheck.core.apitokens import API_TOKEN_KEY, is_api_token
from coatcheck.core.policy import WritePlan
from coatcheck.core.records import (
    Patch,
    Revocation,
    Tombstone,
    cluster_slot,
    public_id,
    public_id_bytes,
)
from coatcheck.core.tokens import PREFIX, TOKEN_LENGTH

MINUTE = 60.0
HOUR = 3600.0


# --- creation and loading --------------------------------------------------------------


def test_new_session_is_not_stored_until_it_holds_something(manager: Any) -> None:
    session = manager.load(None)
    manager.save(session)
    assert session.is_new and session.token is None
    session["cart"] = [1, 2]
    manager.save(session)
    assert not session.is_new
    token = session.token
    assert token.startswith(PREFIX) and len(token) == TOKEN_LENGTH
    again = manager.load(token)
    assert again["cart"] == [1, 2]
    assert again.user_id is None and again.kind == "browser"


def test_store_holds_only_the_digest_of_the_token(manager: Any) -> None:
    token, record = manager.create("alice")
    assert record.key == manager.token_codec().parse(token)
    loaded = manager.store.load(manager.token_codec().parse(token))
    assert loaded is not None and loaded.key.digest == manager.token_codec().parse(token).digest
    assert token.encode() not in repr(loaded).encode()


def test_values_round_trip_as_json(manager: Any) -> None:
    values = {
        "int": 7,
        "float": 2.5,
        "text": "grüß dich ✓",
        "none": None,
        "bool": True,
        "nested": {"a": [1, {"b": None}], "c": "x"},
        "odd:key with spaces": "v",
        "": "empty key",
    }
    token = logged_in(manager, **values)
    loaded = manager.load(token)
    assert loaded.snapshot() == values


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "x",
        "cc1_",
        PREFIX + "A" * 47,
        PREFIX + "A" * 49,
        "cc3_" + "A" * 48,  # a version that does not exist
        PREFIX + "!" * 48,
        PREFIX + "A" * 47 + "=",
        PREFIX + "\u00e9" * 48,
        PREFIX + "A" * 100_000,
        "\x00" * 52,
    ],
)
def test_malformed_tokens_give_a_new_session(manager: Any, bad: str) -> None:
    session = manager.load(bad)
    assert session.is_new
    assert session.expired_reason in (None, Verdict.UNKNOWN)
    verdict, record = manager.inspect(bad)
    assert verdict is Verdict.UNKNOWN and record is None


def test_well_formed_but_unknown_token_is_unknown(manager: Any) -> None:
    token, _ = manager.create("alice")
    manager.revoke(token)
    session = manager.load(token)
    assert session.is_new and session.expired_reason is Verdict.UNKNOWN


def test_non_json_value_is_refused_naming_the_key(manager: Any) -> None:
    session = manager.load(None)
    with pytest.raises(SessionDataError, match="'when'"):
        session["when"] = object()
    with pytest.raises(SessionDataError, match="'nan'"):
        session["nan"] = float("nan")
    with pytest.raises(TypeError):
        session["s"] = {1, 2}
    assert "when" not in session


def test_oversized_data_is_refused_and_nothing_is_written(make_manager: Any) -> None:
    manager = make_manager(Policy(max_data_bytes=1000))
    token = logged_in(manager, small="x")
    session = manager.load(token)
    session["big"] = "x" * 2000
    with pytest.raises(SessionTooLarge, match="1000"):
        manager.save(session)
    fresh = manager.load(token)
    assert "big" not in fresh and fresh["small"] == "x"
    with pytest.raises(SessionTooLarge):
        logged_in(manager, big="y" * 5000)


def test_size_is_checked_whenever_a_write_can_grow_the_data(make_manager: Any) -> None:
    """The whole document is measured only when a patch can grow it; growing an existing
    value, adding a key and growing one key while shrinking another are all caught."""
    manager = make_manager(Policy(max_data_bytes=300))
    token = logged_in(manager, a="x" * 100, b="y" * 100)
    for change in (
        {"a": "x" * 250},  # an existing value grows
        {"c": "z" * 150},  # a new key
        {"a": "", "b": "y" * 290},  # one shrinks, the other grows past the limit
    ):
        session = manager.load(token)
        session.update(change)
        with pytest.raises(SessionTooLarge, match="300"):
            manager.save(session)
    session = manager.load(token)
    session["a"] = "w" * 100  # same length: cannot grow
    del session["b"]
    manager.save(session)
    assert manager.load(token).snapshot() == {"a": "w" * 100}


def test_store_load_many_answers_each_key_in_order(manager: Any, clock: FakeClock) -> None:
    first = logged_in(manager, n=1)
    second = logged_in(manager, "bob", n=2)
    missing = manager.token_codec().parse(manager.create("carol")[0])
    manager.store.delete(missing)
    keys = [
        manager.token_codec().parse(second),
        missing,
        manager.token_codec().parse(first),
        manager.token_codec().parse(second),
    ]
    records = manager.store.load_many(keys)
    assert [r and r.user_id for r in records] == ["bob", None, "alice", "bob"]
    assert [r.data for r in records if r] == [{"n": 2}, {"n": 1}, {"n": 2}]
    assert records[0] is not records[3], "a repeated key gets a record of its own"
    assert records[2] == manager.store.load(manager.token_codec().parse(first))
    assert manager.store.load_many([]) == []


def test_store_load_many_returns_expired_records_as_they_are(
    manager: Any, clock: FakeClock
) -> None:
    token = logged_in(manager)
    clock.advance(31 * MINUTE)
    (record,) = manager.store.load_many([manager.token_codec().parse(token)])
    assert record is not None and record.expires_at <= clock.now


def test_store_load_many_spans_many_keys(manager: Any) -> None:
    """Keys of many users (on a cluster: many slots and nodes), more than one SQL chunk."""
    tokens = [manager.create(f"user{i}")[0] for i in range(40)]
    keys = [manager.token_codec().parse(t) for t in tokens]
    unknown = [manager.token_codec().parse(manager.create(None)[0]) for _ in range(3)]
    for key in unknown:
        manager.store.delete(key)
    records = manager.store.load_many(keys + unknown)
    assert [r.user_id for r in records[:40]] == [f"user{i}" for i in range(40)]
    assert records[40:] == [None, None, None]


def test_store_load_without_data_gives_everything_but_the_data(
    make_manager: Any, clock: FakeClock
) -> None:
    manager = make_manager(REMEMBER)
    token, _ = manager.create(
        "alice",
        data={"cart": ["a", 1], "pad": "x" * 150},
        client_ip="192.0.2.7",
        user_agent="agent/1.0",
        remember=True,
    )
    bare, _ = manager.create("bob")  # no optional field set
    plain = manager.token_codec().parse(token)
    minimal = manager.token_codec().parse(bare)
    for key in (plain, minimal):
        full = manager.store.load(key)
        facts = manager.store.load(key, data=False)
        assert facts is not None and facts.data == {}
        assert facts == dataclasses.replace(full, data={})
        assert full.data or key is minimal, "data=False changes nothing stored"
    missing = manager.token_codec().parse(manager.create("carol")[0])
    manager.store.delete(missing)
    assert manager.store.load(missing, data=False) is None
    records = manager.store.load_many([minimal, missing, plain], data=False)
    assert [r and r.user_id for r in records] == ["bob", None, "alice"]
    assert records[2] == dataclasses.replace(manager.store.load(plain), data={})
    assert manager.store.load_many([], data=False) == []
    clock.advance(31 * MINUTE)  # expired records come back as they are, as with the data
    expired = manager.store.load(minimal, data=False)
    assert expired is not None and expired.expires_at <= clock.now


def test_inspect_without_data_judges_as_inspect(manager: Any, clock: FakeClock) -> None:
    live = logged_in(manager, n=1)
    revoked = logged_in(manager, "bob")
    manager.logout(manager.load(revoked))
    tokens = [live, revoked, "junk"]
    for token in tokens:
        verdict, record = manager.inspect(token)
        assert manager.inspect(token, data=False) == (
            verdict,
            record and dataclasses.replace(record, data={}),
        )
    many = manager.inspect_many(tokens, data=False)
    assert [verdict for verdict, _ in many] == [Verdict.VALID, Verdict.REVOKED, Verdict.UNKNOWN]
    assert many[0][1].user_id == "alice" and many[0][1].data == {}
    clock.advance(31 * MINUTE)
    assert manager.inspect(live, data=False) == (Verdict.EXPIRED_IDLE, None)
    assert manager.store.load(manager.token_codec().parse(live)) is None, "deleted as expired"


def test_manager_load_many_has_the_semantics_of_load(manager: Any, clock: FakeClock) -> None:
    stale = logged_in(manager, "old")
    clock.advance(20 * MINUTE)
    live = logged_in(manager, cart=["book"])
    revoked = logged_in(manager, "bob")
    manager.revoke(revoked)
    clock.advance(15 * MINUTE)  # stale is now 35 minutes idle; live is 15
    tokens = [None, "", "junk", PREFIX + "!" * 48, revoked, stale, live, live]
    sessions = manager.load_many(tokens, client_ip="192.0.2.1", user_agent="agent")
    assert len(sessions) == len(tokens)
    expected = [manager.load(t) for t in tokens[:5]]
    for got, want in zip(sessions[:5], expected, strict=True):
        assert got.is_new and got.expired_reason is want.expired_reason
    assert sessions[0].expired_reason is None and sessions[2].expired_reason is Verdict.UNKNOWN
    assert sessions[5].is_new and sessions[5].expired_reason is Verdict.EXPIRED_IDLE
    assert manager.store.load(manager.token_codec().parse(stale)) is None, (
        "expired: deleted, as load does"
    )
    assert not sessions[6].is_new and sessions[6]["cart"] == ["book"]
    assert sessions[6].client_ip == "192.0.2.1" and sessions[6].user_agent == "agent"
    assert sessions[7].record is not sessions[6].record
    sessions[6]["n"] = 1
    manager.save(sessions[6])
    assert manager.load(live)["n"] == 1
    assert manager.load_many([]) == []


def test_manager_load_many_refuses_another_ip_without_deleting(make_manager: Any) -> None:
    manager = make_manager(Policy(bind_ip=True))
    token = manager.login(manager.load(None, client_ip="198.51.100.7"), "alice")
    other = manager.login(manager.load(None, client_ip="203.0.113.9"), "bob")
    moved, bob = manager.load_many([token, other], client_ip="203.0.113.9")
    assert moved.is_new and moved.expired_reason is Verdict.IP_MISMATCH
    assert not bob.is_new and bob.user_id == "bob"
    assert not manager.load(token, client_ip="198.51.100.7").is_new


# --- timeouts and touching -------------------------------------------------------------


def test_idle_timeout_ends_the_session(manager: Any, clock: FakeClock) -> None:
    token = logged_in(manager, k=1)
    clock.advance(30 * MINUTE - 1)
    assert alive(manager, token)
    clock.advance(30 * MINUTE + 1)
    session = manager.load(token)
    assert session.is_new and session.expired_reason is Verdict.EXPIRED_IDLE
    # Expired means gone: the record was deleted, so the next look is "unknown".
    assert manager.load(token).expired_reason is Verdict.UNKNOWN


def test_activity_slides_the_idle_deadline(manager: Any, clock: FakeClock) -> None:
    token = logged_in(manager)
    for _ in range(6):
        clock.advance(20 * MINUTE)
        session = manager.load(token)
        assert not session.is_new
        manager.save(session)
    assert alive(manager, token)


def test_absolute_lifetime_ends_even_an_active_session(manager: Any, clock: FakeClock) -> None:
    token = logged_in(manager)
    elapsed = 0.0
    while elapsed < 12 * HOUR - 20 * MINUTE:
        clock.advance(10 * MINUTE)
        elapsed += 10 * MINUTE
        session = manager.load(token)
        assert not session.is_new, f"died early at {elapsed / HOUR:.2f} h"
        manager.save(session)
    clock.advance(30 * MINUTE)
    session = manager.load(token)
    assert session.is_new and session.expired_reason is Verdict.EXPIRED_ABSOLUTE


def test_a_stricter_policy_applies_to_sessions_already_stored(
    make_manager: Any, clock: FakeClock
) -> None:
    token = logged_in(make_manager())
    clock.advance(10 * MINUTE)
    strict = make_manager(Policy(idle_timeout=5 * MINUTE, touch_interval=30))
    assert strict.load(token).expired_reason is Verdict.EXPIRED_IDLE


def test_read_inside_touch_interval_writes_nothing(manager: Any, clock: FakeClock) -> None:
    token = logged_in(manager, k=1)
    version = manager.load(token).record.version
    for _ in range(5):
        clock.advance(10)
        session = manager.load(token)
        assert session["k"] == 1
        manager.save(session)
    assert manager.load(token).record.version == version
    clock.advance(15)  # 65 s since the last write: past the 60 s touch interval
    session = manager.load(token)
    manager.save(session)
    touched = manager.load(token).record
    assert touched.version == version + 1
    assert touched.last_seen_at == clock.now


def test_write_inside_touch_interval_is_saved(manager: Any, clock: FakeClock) -> None:
    token = logged_in(manager)
    clock.advance(1)
    session = manager.load(token)
    session["n"] = 1
    manager.save(session)
    assert manager.load(token)["n"] == 1


# --- login, rotation, logout -----------------------------------------------------------


def test_login_rotates_the_token_and_kills_the_old_one(manager: Any, clock: FakeClock) -> None:
    anon = manager.load(None)
    anon["cart"] = ["book"]
    manager.save(anon)
    before = anon.token
    clock.advance(5)
    after = manager.login(anon, "alice")
    assert after != before
    assert manager.load(before).is_new
    logged_in = manager.load(after)
    assert logged_in.user_id == "alice"
    assert logged_in.authenticated_at == clock.now
    assert logged_in["cart"] == ["book"]
    assert logged_in.record.key.shard != manager.token_codec().parse(before).shard or True


def test_login_can_drop_or_pick_carried_data(manager: Any) -> None:
    for carry, expected in [(False, {}), (["keep"], {"keep": 1}), (True, {"keep": 1, "x": 2})]:
        session = manager.load(None)
        session["keep"] = 1
        session["x"] = 2
        token = manager.login(session, "bob", carry=carry)
        assert manager.load(token).snapshot() == expected


def test_another_users_data_is_never_carried(manager: Any) -> None:
    token = logged_in(manager, "alice", secret="alice's")
    session = manager.load(token)
    new = manager.login(session, "mallory")
    assert "secret" not in manager.load(new)
    assert manager.load(token).is_new


def test_rotate_keeps_user_and_data(manager: Any) -> None:
    token = logged_in(manager, role="user")
    session = manager.load(token)
    session["role"] = "admin"
    new = manager.rotate(session)
    assert manager.load(token).is_new
    rotated = manager.load(new)
    assert rotated.user_id == "alice" and rotated["role"] == "admin"


def test_logout_deletes_server_side(manager: Any) -> None:
    token = logged_in(manager)
    session = manager.load(token)
    manager.logout(session)
    assert manager.store.load(manager.token_codec().parse(token)) is None
    assert manager.load(token).is_new
    manager.save(session)  # saving an ended session is a no-op, not a resurrection
    assert manager.store.load(manager.token_codec().parse(token)) is None


# --- no resurrection, no lost updates --------------------------------------------------


def test_slow_request_after_revocation_does_not_resurrect(make_manager: Any) -> None:
    a, b = make_manager(), make_manager()
    token = logged_in(a, k=1)
    slow = a.load(token)
    b.revoke(token)
    slow["late"] = True
    with pytest.raises(SessionGone):
        a.save(slow)
    assert a.store.load(a.token_codec().parse(token)) is None


def test_slow_request_after_rotation_does_not_resurrect(make_manager: Any) -> None:
    a, b = make_manager(), make_manager()
    token = logged_in(a, k=1)
    slow = a.load(token)
    fresh = b.rotate(b.load(token))
    slow["late"] = True
    with pytest.raises(SessionGone):
        a.save(slow)
    assert a.load(token).is_new
    assert "late" not in a.load(fresh)


def test_slow_touch_after_logout_does_not_resurrect(make_manager: Any, clock: FakeClock) -> None:
    a, b = make_manager(), make_manager()
    token = logged_in(a)
    clock.advance(2 * MINUTE)
    slow = a.load(token)  # due for a touch
    b.logout(b.load(token))
    with pytest.raises(SessionGone):
        a.save(slow)
    assert a.store.load(a.token_codec().parse(token)) is None


def test_concurrent_changes_to_different_keys_both_survive(make_manager: Any) -> None:
    a, b = make_manager(), make_manager()
    token = logged_in(a, shared=0, doomed=1)
    first, second = a.load(token), b.load(token)
    first["from_a"] = "a"
    del first["doomed"]
    second["from_b"] = "b"
    a.save(first)
    b.save(second)
    final = a.load(token).snapshot()
    assert final == {"shared": 0, "from_a": "a", "from_b": "b"}


def test_same_key_last_save_wins(make_manager: Any) -> None:
    a, b = make_manager(), make_manager()
    token = logged_in(a)
    first, second = a.load(token), b.load(token)
    first["color"] = "red"
    second["color"] = "blue"
    a.save(first)
    b.save(second)
    assert a.load(token)["color"] == "blue"


def test_version_checked_update_detects_a_concurrent_write(manager: Any, clock: FakeClock) -> None:
    token, record = manager.create("alice", data={"n": 0})
    key = manager.token_codec().parse(token)
    plan = WritePlan(Patch({"n": "1"}), clock.now, clock.now + 60)
    version = manager.store.update(key, plan, expected_version=record.version)
    assert version == record.version + 1
    with pytest.raises(SessionConflict):
        manager.store.update(key, plan, expected_version=record.version)
    assert manager.store.load(key).version == version


def test_update_of_missing_record_writes_nothing(manager: Any, clock: FakeClock) -> None:
    token, _ = manager.create("alice")
    key = manager.token_codec().parse(token)
    manager.store.delete(key)
    with pytest.raises(SessionGone):
        manager.store.update(key, WritePlan(Patch({"x": "1"}), clock.now, clock.now + 60))
    assert manager.store.load(key) is None
    assert manager.list_user("alice") == []


# --- per-user limits and logout everywhere ---------------------------------------------


def test_limit_evicts_the_oldest_browser_session(make_manager: Any, clock: FakeClock) -> None:
    manager = make_manager(Policy(max_sessions_per_user=2))
    tokens = []
    for _ in range(3):
        tokens.append(logged_in(manager))
        clock.advance(1)
    assert [alive(manager, t) for t in tokens] == [False, True, True]
    api_token, _ = manager.create("alice", kind="api")
    assert alive(manager, api_token), "api sessions are exempt from the limit"
    assert all(alive(manager, t) for t in tokens[1:])
    other = logged_in(manager, "bob")
    assert alive(manager, other) and alive(manager, tokens[2])


def test_limit_of_one_keeps_only_the_newest(make_manager: Any, clock: FakeClock) -> None:
    manager = make_manager(Policy(max_sessions_per_user=1))
    first = logged_in(manager)
    clock.advance(1)
    second = logged_in(manager)
    assert not alive(manager, first) and alive(manager, second)
    # Re-login from the surviving session rotates it; the limit does not count it twice.
    third = manager.login(manager.load(second), "alice")
    assert alive(manager, third) and not alive(manager, second)


def test_limit_refuse_keeps_everything_as_it_was(make_manager: Any, clock: FakeClock) -> None:
    manager = make_manager(Policy(max_sessions_per_user=2, on_limit="refuse"))
    tokens = [logged_in(manager), logged_in(manager)]
    anon = manager.load(None)
    anon["cart"] = "x"
    manager.save(anon)
    pre_login = anon.token
    with pytest.raises(SessionLimitReached):
        manager.login(anon, "alice")
    assert all(alive(manager, t) for t in tokens)
    assert manager.load(pre_login)["cart"] == "x", "a refused login leaves the old session"
    # Expired sessions do not count against the limit.
    clock.advance(31 * MINUTE)
    assert alive(manager, logged_in(manager))


def test_logout_other_sessions(manager: Any) -> None:
    mine = logged_in(manager)
    others = [logged_in(manager) for _ in range(3)]
    bobs = logged_in(manager, "bob")
    ended = manager.logout_other_sessions(manager.load(mine))
    assert ended == 3
    assert alive(manager, mine) and alive(manager, bobs)
    assert not any(alive(manager, t) for t in others)


def test_revoke_user_and_revoke_all(manager: Any) -> None:
    alices = [logged_in(manager) for _ in range(2)]
    alices.append(manager.create("alice", kind="api")[0])
    bob = logged_in(manager, "bob")
    assert manager.revoke_user("alice") == 3
    assert not any(alive(manager, t) for t in alices) and alive(manager, bob)
    anon = manager.load(None)
    anon["x"] = 1
    manager.save(anon)
    assert manager.revoke_all() >= 2
    assert not alive(manager, bob) and not alive(manager, anon.token)


def test_list_user_sessions_oldest_first(manager: Any, clock: FakeClock) -> None:
    tokens = []
    for agent in ("firefox", "chrome", "curl"):
        session = manager.load(None, client_ip="192.0.2.1", user_agent=agent)
        tokens.append(manager.login(session, "alice"))
        clock.advance(1)
    logged_in(manager, "bob")
    listed = manager.list_user("alice")
    assert [r.user_agent for r in listed] == ["firefox", "chrome", "curl"]
    assert [r.key for r in listed] == [manager.token_codec().parse(t) for t in tokens]
    assert all(r.client_ip == "192.0.2.1" and r.user_id == "alice" for r in listed)
    clock.advance(31 * MINUTE)
    assert manager.list_user("alice") == []


# --- IP binding ------------------------------------------------------------------------


def test_ip_binding_refuses_another_address(make_manager: Any) -> None:
    manager = make_manager(Policy(bind_ip=True))
    session = manager.load(None, client_ip="198.51.100.7")
    token = manager.login(session, "alice")
    assert not manager.load(token, client_ip="198.51.100.7").is_new
    moved = manager.load(token, client_ip="203.0.113.9")
    assert moved.is_new and moved.expired_reason is Verdict.IP_MISMATCH
    assert not manager.load(token, client_ip="198.51.100.7").is_new, "not deleted by a stranger"


def test_ip_binding_is_off_by_default(manager: Any) -> None:
    token = manager.login(manager.load(None, client_ip="198.51.100.7"), "alice")
    assert not manager.load(token, client_ip="203.0.113.9").is_new


# --- purge, stats ----------------------------------------------------------------------


def test_purge_removes_expired_sessions_in_batches(manager: Any, clock: FakeClock) -> None:
    for i in range(7):
        logged_in(manager, f"user{i}")
    clock.advance(20 * MINUTE)
    keep = logged_in(manager, "fresh")
    clock.advance(15 * MINUTE)
    assert manager.purge(batch_size=2) == 7
    assert manager.purge(batch_size=2) == 0
    assert alive(manager, keep)


def test_count_active_since(manager: Any, clock: FakeClock) -> None:
    start = clock.now
    logged_in(manager, "a")
    clock.advance(10 * MINUTE)
    logged_in(manager, "b")
    logged_in(manager, "c")
    assert manager.count_active(start) == 3
    assert manager.count_active(start + 5 * MINUTE) == 2
    clock.advance(25 * MINUTE)
    assert manager.count_active(start) == 2, "the first one has expired"


# --- events ----------------------------------------------------------------------------


def test_lifecycle_events_are_logged_without_the_token(
    make_manager: Any, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    manager = make_manager(Policy(max_sessions_per_user=1))
    caplog.set_level(logging.DEBUG, logger="coatcheck.session")
    anon = manager.load(None)
    anon["x"] = 1
    manager.save(anon)
    first = manager.login(anon, "alice")
    clock.advance(1)
    second = logged_in(manager)
    manager.logout(manager.load(second))
    token3 = logged_in(manager)
    clock.advance(HOUR)
    manager.load(token3)
    seen = [getattr(r, "event", None) for r in caplog.records]
    for event in ("created", "rotated", "logged_in", "evicted", "revoked", "expired"):
        assert event in seen, f"no {event!r} event in {seen}"
    text = "\n".join(r.getMessage() + json.dumps(r.__dict__, default=str) for r in caplog.records)
    for token in (anon.token, first, second, token3):
        if token:
            assert token not in text
            assert manager.token_codec().parse(token).hex not in text
    revoked = next(r for r in caplog.records if getattr(r, "event", None) == "revoked")
    assert revoked.reason == "logout" and len(revoked.session) == 16


def test_limit_counts_only_sessions_live_now_when_rotating(
    make_manager: Any, clock: FakeClock
) -> None:
    """Rotation keeps the old creation time; the limit must still judge liveness at *now*."""
    manager = make_manager(Policy(max_sessions_per_user=2, on_limit="refuse"))
    first = logged_in(manager)
    clock.advance(1)
    logged_in(manager)  # abandoned: dies of idleness 30 minutes from now
    clock.advance(20 * MINUTE)
    manager.save(manager.load(first))  # keeps the first one alive
    clock.advance(20 * MINUTE)
    third = logged_in(manager)
    rotated = manager.rotate(manager.load(first))
    assert alive(manager, rotated) and alive(manager, third)


def test_purge_refuses_an_empty_batch(manager: Any) -> None:
    with pytest.raises(ConfigError, match="batch_size"):
        manager.purge(batch_size=0)


# --- revoke by public id ---------------------------------------------------------------


def test_listings_show_a_public_id_that_reveals_neither_token_nor_key(manager: Any) -> None:
    token, record = manager.create("alice")
    (listed,) = manager.list_user("alice")
    public = listed.summary()["id"]
    assert public == record.public_id == public_id(record.key)
    assert len(public) == 16 and int(public, 16) >= 0
    for secret in (token, record.key.digest.hex(), record.key.shard.hex()):
        assert public[:8] not in secret and public[8:] not in secret
    assert int(public[:4], 16) == cluster_slot(record.key.shard)


def test_revoke_session_by_public_id_ends_exactly_that_session(
    manager: Any, clock: FakeClock
) -> None:
    tokens = []
    for _ in range(3):
        tokens.append(logged_in(manager))
        clock.advance(1)
    ids = [r.public_id for r in manager.list_user("alice")]
    assert len(set(ids)) == 3
    assert manager.revoke_session(ids[1].upper()) is True
    assert [alive(manager, t) for t in tokens] == [True, False, True]
    assert [r.public_id for r in manager.list_user("alice")] == [ids[0], ids[2]]
    assert manager.revoke_session(ids[1]) is False, "already gone"


def test_revoke_session_with_a_user_ends_only_that_users_session(manager: Any) -> None:
    alice = logged_in(manager)
    bob = logged_in(manager, "bob")
    anonymous, _ = manager.create(None, data={"cart": 1})
    (alices,) = manager.list_user("alice")
    (bobs,) = manager.list_user("bob")
    anonymous_id = manager.load(anonymous).record.public_id
    assert manager.revoke_session(bobs.public_id, user_id="alice") is False
    assert manager.revoke_session(anonymous_id, user_id="alice") is False
    assert alive(manager, bob) and alive(manager, anonymous)
    assert manager.revoke_session(alices.public_id, user_id="alice") is True
    assert not alive(manager, alice)
    assert manager.revoke_session(anonymous_id) is True, "an operator may end any session"
    assert not alive(manager, anonymous)


@pytest.mark.parametrize(
    "junk",
    ["", "xyz", "0" * 15, "0" * 17, "g" * 16, " " * 16, "ffff000000000000", "00ff-0000000000"],
)
def test_revoke_session_refuses_junk_clearly(manager: Any, junk: str) -> None:
    token = logged_in(manager)
    with pytest.raises(InvalidSessionId, match="session id"):
        manager.revoke_session(junk)
    assert alive(manager, token)


def test_public_id_follows_rotation_and_outlives_touches(manager: Any, clock: FakeClock) -> None:
    token = logged_in(manager)
    old_id = manager.load(token).record.public_id
    new = manager.rotate(manager.load(token))
    new_id = manager.load(new).record.public_id
    assert new_id != old_id
    assert manager.revoke_session(old_id) is False, "the rotated-away id names nothing"
    for _ in range(4):  # each touch slides the session's (and its id's) expiry
        clock.advance(20 * MINUTE)
        manager.save(manager.load(new))
    assert manager.revoke_session(new_id) is True
    assert not alive(manager, new)


def test_a_slow_request_after_revoke_session_does_not_resurrect(make_manager: Any) -> None:
    a, b = make_manager(), make_manager()
    token = logged_in(a, k=1)
    slow = a.load(token)
    assert b.revoke_session(slow.record.public_id, user_id="alice")
    slow["late"] = True
    with pytest.raises(SessionGone):
        a.save(slow)
    assert not alive(a, token)


def test_delete_by_public_id_can_keep_to_api_tokens_or_to_everything_else(
    manager: Any,
) -> None:
    """``api_token`` True deletes only what ``is_api_token`` calls a token, False only what it
    does not: kind ``api`` alone, the reserved key on a browser session, or a value under the
    key that is not an object do not make a token."""
    meta = {"name": "ci", "scopes": [], "expires_at": None}
    made = {
        "token": manager.create("alice", kind="api", data={API_TOKEN_KEY: meta}),
        "api session": manager.create("alice", kind="api", data={"k": 1}),
        "browser with the key": manager.create("alice", data={API_TOKEN_KEY: meta}),
        "api with a list": manager.create("alice", kind="api", data={API_TOKEN_KEY: [meta]}),
        "api with text": manager.create("alice", kind="api", data={API_TOKEN_KEY: "{}"}),
        "browser": manager.create("alice", data={"cart": 1}),
    }
    store, when = manager.store, manager.clock()
    for what, (_, record) in made.items():
        wanted = what == "token"
        assert is_api_token(record) is wanted, what
        public = public_id_bytes(record.key)
        revoked = Revocation("revoked_by_admin", when)
        assert store.delete_by_public_id(public, api_token=not wanted, revoked=revoked) is None
        assert store.load(record.key) is not None, what
        assert store.tombstone(record.key) is None, "a refused delete leaves no tombstone"
        assert store.delete_by_public_id(public, user_id="bob", api_token=wanted) is None
        assert store.delete_by_public_id(public, api_token=wanted, revoked=revoked) == record.key
        assert store.load(record.key) is None, what
        assert store.tombstone(record.key).reason == "revoked_by_admin"
        assert store.delete_by_public_id(public, api_token=wanted) is None, "already gone"


def test_revoke_session_by_kind_keeps_the_default_of_ending_any_record(manager: Any) -> None:
    meta = {"name": "ci", "scopes": [], "expires_at": None}
    _, record = manager.create("alice", kind="api", data={API_TOKEN_KEY: meta})
    session = logged_in(manager)
    (listed,) = [r for r in manager.list_user("alice") if not is_api_token(r)]
    assert manager.revoke_session(record.public_id, api_token=False) is False
    assert manager.revoke_session(listed.public_id, user_id="alice", api_token=True) is False
    assert manager.store.load(record.key) is not None and alive(manager, session)
    assert manager.revoke_session(listed.public_id, user_id="alice", api_token=False) is True
    assert manager.revoke_session(record.public_id) is True, "None: whatever has the id"
    assert manager.store.load(record.key) is None and not alive(manager, session)


# --- revoked is not unknown: tombstones ------------------------------------------------


def test_a_logged_out_token_is_revoked_with_its_reason_until_it_would_have_expired(
    manager: Any, clock: FakeClock
) -> None:
    token = logged_in(manager)
    session = manager.load(token)
    expires_at = session.record.expires_at
    clock.advance(5)
    manager.logout(session)
    assert manager.inspect(token) == (Verdict.REVOKED, None)
    tombstone = manager.revocation(token)
    assert tombstone == Tombstone("logout", clock.now, expires_at)
    # A request sees what it always saw (no second look-up on its path): a new session.
    fresh = manager.load(token)
    assert fresh.is_new and fresh.expired_reason is Verdict.UNKNOWN
    clock.advance(expires_at - clock.now - 1)
    assert manager.inspect(token)[0] is Verdict.REVOKED
    clock.advance(1)
    assert manager.inspect(token) == (Verdict.UNKNOWN, None)
    assert manager.revocation(token) is None


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("revoke", "revoked_by_admin"),
        ("revoke_session", "revoked_by_admin"),
        ("revoke_session_of_user", "revoked_by_user"),
        ("revoke_user", "revoked_by_admin"),
        ("logout_other_sessions", "revoked_by_user"),
    ],
)
def test_each_way_of_revoking_leaves_its_reason(manager: Any, how: str, reason: str) -> None:
    token, kept = logged_in(manager), logged_in(manager)
    record = manager.load(token).record
    if how == "revoke":
        assert manager.revoke(token)
    elif how == "revoke_session":
        assert manager.revoke_session(record.public_id)
    elif how == "revoke_session_of_user":
        assert manager.revoke_session(record.public_id, user_id="alice")
    elif how == "revoke_user":
        assert manager.revoke_user("alice", keep=manager.load(kept).record.key) == 1
    else:
        assert manager.logout_other_sessions(manager.load(kept)) == 1
    assert manager.inspect(token)[0] is Verdict.REVOKED
    assert manager.revocation(token).reason == reason
    assert manager.inspect(kept)[0] is Verdict.VALID and manager.revocation(kept) is None


def test_an_evicted_session_is_revoked_by_the_limit(make_manager: Any, clock: FakeClock) -> None:
    manager = make_manager(Policy(max_sessions_per_user=1))
    first = logged_in(manager)
    expires_at = manager.load(first).record.expires_at
    clock.advance(1)
    logged_in(manager)
    assert manager.inspect(first)[0] is Verdict.REVOKED
    assert manager.revocation(first) == Tombstone("limit_eviction", clock.now, expires_at)


def test_rotation_expiry_and_never_issued_tokens_are_not_revoked(
    manager: Any, clock: FakeClock
) -> None:
    token = logged_in(manager)
    rotated = manager.rotate(manager.load(token))
    assert manager.inspect(token) == (Verdict.UNKNOWN, None), "rotated away, not revoked"
    clock.advance(31 * MINUTE)
    assert manager.inspect(rotated)[0] is Verdict.EXPIRED_IDLE  # deleted on the spot
    assert manager.inspect(rotated)[0] is Verdict.UNKNOWN
    never, _ = manager.create("alice")
    manager.store.delete(manager.token_codec().parse(never))  # a plain delete: no tombstone
    for unknown in (never, rotated, "junk"):
        assert manager.revocation(unknown) is None


def test_a_tombstone_never_brings_a_session_back(make_manager: Any, clock: FakeClock) -> None:
    a, b = make_manager(), make_manager()
    token = logged_in(a, k=1)
    slow = a.load(token)
    clock.advance(2 * MINUTE)  # due for a touch too
    b.revoke(token)
    slow["late"] = True
    with pytest.raises(SessionGone):
        a.save(slow)
    key = slow.record.key
    with pytest.raises(SessionGone):
        a.store.update(key, WritePlan(Patch({"x": "1"}), clock.now, clock.now + 60))
    assert a.store.load(key) is None and a.store.load_many([key]) == [None]
    assert a.list_user("alice") == [] and a.count_active(0) == 0
    assert a.revoke(token) is False, "a second revocation finds nothing"
    assert a.revocation(token).reason == "revoked_by_admin", "and changes nothing"
    assert a.revoke_session(slow.record.public_id) is False
    new = a.login(a.load(token), "alice")  # the old cookie's request logs in afresh
    assert alive(a, new) and not alive(a, token)


def test_purge_removes_expired_tombstones(manager: Any, clock: FakeClock) -> None:
    gone = logged_in(manager)
    key = manager.load(gone).record.key
    manager.revoke(gone)
    clock.advance(20 * MINUTE)
    recent = logged_in(manager, "bob")
    recent_key = manager.load(recent).record.key
    manager.logout(manager.load(recent))
    assert manager.store.tombstone(key) is not None
    clock.advance(15 * MINUTE)  # the first tombstone is past its session's expiry
    manager.purge()
    assert manager.store.tombstone(key) is None
    assert manager.store.tombstone(recent_key).reason == "logout"
    assert manager.inspect(recent)[0] is Verdict.REVOKED


# --- remember me ------------------------------------------------------------------------

DAY = 24 * HOUR
REMEMBER = Policy(remember_absolute_lifetime=30 * DAY, remember_idle_timeout=7 * DAY)


def test_remember_me_is_refused_clearly_when_the_policy_has_it_off(manager: Any) -> None:
    anon = manager.load(None)
    anon["cart"] = 1
    manager.save(anon)
    with pytest.raises(ConfigError, match="remember_absolute_lifetime"):
        manager.login(anon, "alice", remember=True)
    assert manager.load(anon.token)["cart"] == 1, "nothing changed"
    with pytest.raises(ConfigError, match="remember"):
        manager.create("alice", remember=True)
    assert manager.list_user("alice") == []


def test_a_remembered_session_outlives_the_normal_limits(
    make_manager: Any, clock: FakeClock
) -> None:
    manager = make_manager(REMEMBER)
    remembered = manager.login(manager.load(None), "alice", remember=True)
    normal = manager.login(manager.load(None), "alice")
    record = manager.load(remembered).record
    assert record.remember is True and record.expires_at == clock.now + 7 * DAY
    assert manager.load(normal).record.remember is False
    assert sorted(r.summary()["remember"] for r in manager.list_user("alice")) == [False, True]
    clock.advance(6 * DAY)  # far past the 30 minutes of idleness
    assert not manager.load(remembered).is_new
    assert manager.load(normal).is_new
    manager.save(manager.load(remembered))  # the touch slides to the remember deadline
    assert manager.load(remembered).record.expires_at == clock.now + 7 * DAY
    for _ in range(3):  # active for 18 more days (24 in all): the remember lifetime is 30
        clock.advance(6 * DAY)
        session = manager.load(remembered)
        assert not session.is_new
        manager.save(session)
    assert manager.load(remembered).record.expires_at == clock.now + 6 * DAY  # day 30
    clock.advance(6 * DAY)
    assert manager.load(remembered).expired_reason is Verdict.EXPIRED_ABSOLUTE


def test_remember_survives_rotation_and_not_a_new_login(
    make_manager: Any, clock: FakeClock
) -> None:
    manager = make_manager(REMEMBER)
    token = manager.login(manager.load(None), "alice", remember=True)
    rotated = manager.rotate(manager.load(token))
    assert manager.load(rotated).record.remember is True
    again = manager.login(manager.load(rotated), "alice")  # logs in anew, without remember me
    assert manager.load(again).record.remember is False
    created, _ = manager.create("bob", remember=True)
    assert manager.load(created).record.remember is True
    clock.advance(HOUR)
    assert alive(manager, created) and not alive(manager, again)


def test_turning_remember_me_off_shortens_remembered_sessions_at_once(
    make_manager: Any, clock: FakeClock
) -> None:
    token = make_manager(REMEMBER).login(make_manager(REMEMBER).load(None), "alice", remember=True)
    clock.advance(HOUR)
    assert alive(make_manager(REMEMBER), token)
    assert make_manager().load(token).expired_reason is Verdict.EXPIRED_IDLE
