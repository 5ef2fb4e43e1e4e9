"""``inspect_many``: the answers ``inspect`` gives, for many tokens at once, on every store
and through both APIs; and one store round trip for all of them."""

from __future__ import annotations

from typing import Any

import pytest
from harness import CountingStore, logged_in

from coatcheck import FakeClock, Policy, SessionManager, Verdict
from coatcheck.core.tokens import PREFIX

MINUTE = 60.0


def _mix(manager: Any, clock: FakeClock) -> dict[str, object]:
    """One token of each kind a service is asked about, by name."""
    expired = logged_in(manager, "old")
    clock.advance(31 * MINUTE)  # past the default 30 min idle timeout
    live, other, revoked = (logged_in(manager, u) for u in ("alice", "bob", "carol"))
    manager.logout(manager.load(revoked))
    unknown, _ = manager.create("dave")
    manager.store.delete(manager.token_codec().parse(unknown))  # a plain delete: no tombstone
    anonymous = manager.load(None)
    anonymous["cart"] = 1
    manager.save(anonymous)
    return {
        "live": live,
        "other": other,
        "expired": expired,
        "revoked": revoked,
        "unknown": unknown,
        "anonymous": anonymous.token,
        "junk": "junk",
        "bad alphabet": PREFIX + "!" * 48,
        "empty": "",
        "not a string": 42,
    }


def test_inspect_many_answers_as_inspect_does(manager: Any, clock: FakeClock) -> None:
    tokens = list(_mix(manager, clock).values())
    # delete_expired=False: neither call changes the store, so both see the same state.
    many = manager.inspect_many(tokens, delete_expired=False)
    assert many == [manager.inspect(t, delete_expired=False) for t in tokens]
    verdicts = [verdict for verdict, _ in many]
    assert verdicts == [
        Verdict.VALID,
        Verdict.VALID,
        Verdict.EXPIRED_IDLE,
        Verdict.REVOKED,
        Verdict.UNKNOWN,
        Verdict.VALID,
        *[Verdict.UNKNOWN] * 4,
    ]
    assert [r.user_id for _, r in many[:2]] == ["alice", "bob"]


def test_inspect_many_deletes_what_it_finds_expired(manager: Any, clock: FakeClock) -> None:
    mix = _mix(manager, clock)
    tokens = [mix["expired"], mix["live"], mix["expired"]]  # given twice: judged once
    assert [v for v, _ in manager.inspect_many(tokens)] == [
        Verdict.EXPIRED_IDLE,
        Verdict.VALID,
        Verdict.EXPIRED_IDLE,
    ]
    assert manager.inspect(mix["expired"]) == (Verdict.UNKNOWN, None)  # deleted on the spot
    assert manager.inspect(mix["live"])[0] is Verdict.VALID


def test_inspect_many_judges_each_token_with_its_own_client_ip(
    make_manager: Any, clock: FakeClock
) -> None:
    manager = make_manager(Policy(bind_ip=True))
    token = manager.load(None, client_ip="10.0.0.1")
    token["x"] = 1
    manager.login(token, "alice")
    other = manager.load(None, client_ip="10.0.0.2")
    other["x"] = 1
    manager.login(other, "bob")
    tokens = [token.token, other.token, token.token, token.token]
    ips = ["10.0.0.1", "10.0.0.1", "10.0.0.9", "10.0.0.1"]  # the same token from elsewhere
    many = manager.inspect_many(tokens, client_ips=ips, delete_expired=False)
    verdicts = [v for v, _ in many]
    assert verdicts == [Verdict.VALID, Verdict.IP_MISMATCH, Verdict.IP_MISMATCH, Verdict.VALID]
    assert many == [
        manager.inspect(t, client_ip=ip, delete_expired=False)
        for t, ip in zip(tokens, ips, strict=True)
    ]


def test_inspect_many_is_one_store_call_plus_tombstones_for_the_missing() -> None:
    store = CountingStore()
    manager = SessionManager(store)  # type: ignore[arg-type]
    live = [logged_in(manager, f"user{i}") for i in range(3)]
    revoked = logged_in(manager)
    manager.revoke(revoked)
    store.calls.clear()
    answers = manager.inspect_many(["junk", *live, revoked, None])
    assert store.calls == ["load_many", "tombstone"]
    assert [v for v, _ in answers] == [
        Verdict.UNKNOWN,
        *[Verdict.VALID] * 3,
        Verdict.REVOKED,
        Verdict.UNKNOWN,
    ]
    store.calls.clear()
    assert manager.inspect_many(["junk", 7]) == [(Verdict.UNKNOWN, None)] * 2
    assert manager.inspect_many([]) == []
    assert store.calls == []


def test_inspect_many_wants_one_client_ip_per_token() -> None:
    manager = SessionManager(CountingStore())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="one client_ip per token"):
        manager.inspect_many(["a", "b"], client_ips=["10.0.0.1"])
