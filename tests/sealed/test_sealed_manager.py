"""The sealed-cookie manager through both APIs: timeouts, touch, login, rotation, size, and
revocation records on every store kind."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from harness import SyncView, alive, logged_in, managers

from coatcheck import (
    ConfigError,
    FakeClock,
    Policy,
    SessionRecord,
    SessionTooLarge,
    StoreUnavailable,
    Verdict,
    open_async_store,
    open_store,
)
from coatcheck.cookies import MAX_COOKIE_BYTES, CookieSettings, CookieTooLarge
from coatcheck.core.records import Patch
from coatcheck.sealed import (
    KEYS_ENV,
    AsyncSealedSessionManager,
    SealedRecord,
    SealedSessionManager,
    generate_key,
    revocation,
)
from coatcheck.sealed.codec import PREFIX, KeyRing, new_sid, seal
from coatcheck.stores.sqlite import SQLiteStore

MINUTE = 60.0
HOUR = 3600.0
KEYS = [generate_key()]


@pytest.fixture
def make(api: str, clock: FakeClock) -> Iterator[Callable[..., Any]]:
    """Builds sealed managers (sync, or async behind a synchronous view) on the test's clock."""
    with managers(api) as (loop, made):
        yield _builder(clock, loop, made)


def _builder(
    clock: FakeClock, loop: asyncio.AbstractEventLoop | None, made: list[Any]
) -> Callable[..., Any]:
    def build(
        policy: Policy | None = None,
        *,
        store_url: str | None = None,
        keys: Any = None,
        cookie: CookieSettings | None = None,
        **extra: Any,
    ) -> Any:
        options: dict[str, Any] = {"cookie": cookie, "clock": clock, **extra}
        if loop is None:
            store = open_store(store_url) if store_url else None
            made.append(SealedSessionManager(keys or KEYS, policy, store=store, **options))
            return made[-1]
        astore = open_async_store(store_url) if store_url else None
        made.append(AsyncSealedSessionManager(keys or KEYS, policy, store=astore, **options))
        return SyncView(made[-1], loop)

    return build


@pytest.fixture
def manager(make: Callable[..., Any]) -> Any:
    return make()


def new_cookie(manager: Any, **data: Any) -> str:
    session = manager.load(None)
    session.update(data)
    manager.save(session)
    return str(session.token)


# --- creating, reading, touching ---------------------------------------------------------------


def test_new_session_is_sealed_only_once_it_holds_something(manager: Any) -> None:
    session = manager.load(None)
    manager.save(session)
    assert session.is_new and session.token is None
    session["cart"] = [1, 2]
    manager.save(session)
    assert session.token.startswith(PREFIX) and not session.is_new
    again = manager.load(session.token, client_ip="198.51.100.1")
    assert again["cart"] == [1, 2] and again.user_id is None and again.kind == "browser"
    assert again.expired_reason is None


def test_record_is_a_session_record_keyed_by_the_session_id(manager: Any, clock: FakeClock) -> None:
    token = logged_in(manager, cart=1)
    record = manager.load(token).record
    assert isinstance(record, SessionRecord) and isinstance(record, SealedRecord)
    assert record.user_id == "alice" and record.authenticated_at == clock.now
    assert record.summary()["user_id"] == "alice"
    clock.advance(2 * MINUTE)
    session = manager.load(token)
    manager.save(session)  # touched: a new cookie, the same session
    assert session.token != token and session.record.key == record.key


def test_reads_inside_the_touch_interval_produce_no_new_cookie(
    manager: Any, clock: FakeClock
) -> None:
    token = new_cookie(manager, cart=1)
    clock.advance(30)
    session = manager.load(token)
    assert session["cart"] == 1
    manager.save(session)
    assert session.token is None  # nothing to send: the browser keeps its cookie

    clock.advance(30)  # the touch interval (60 s) has passed since the cookie was sealed
    session = manager.load(token)
    manager.save(session)
    assert session.token and session.token != token
    assert manager.load(session.token).record.last_seen_at == clock.now


def test_a_change_inside_the_touch_interval_produces_a_new_cookie(
    manager: Any, clock: FakeClock
) -> None:
    token = new_cookie(manager, cart=1)
    clock.advance(1)
    session = manager.load(token)
    session["cart"] = 2
    del session["cart"]
    session["note"] = "hi"
    manager.save(session)
    assert manager.load(session.token).snapshot() == {"note": "hi"}


def test_idle_timeout_from_the_sealed_timestamps(
    make: Callable[..., Any], clock: FakeClock
) -> None:
    manager = make(Policy(idle_timeout=10 * MINUTE, touch_interval=MINUTE))
    token = logged_in(manager)
    clock.advance(9 * MINUTE)
    session = manager.load(token)
    manager.save(session)  # the touch slides the idle deadline
    touched = session.token
    clock.advance(9 * MINUTE)
    assert alive(manager, touched)
    expired = manager.load(token)
    assert expired.is_new and expired.expired_reason is Verdict.EXPIRED_IDLE


@pytest.mark.parametrize("cache", [0, 1024])
def test_timeouts_hold_for_cookies_opened_from_the_cache(
    make: Callable[..., Any], clock: FakeClock, cache: int
) -> None:
    manager = make(Policy(idle_timeout=10 * MINUTE, absolute_lifetime=HOUR), opened_cache=cache)
    token = logged_in(manager)
    if cache:
        assert len(manager.opened) == 1  # sealed here: its session is kept
    else:
        assert manager.opened is None
    assert alive(manager, token)
    clock.advance(11 * MINUTE)
    expired = manager.load(token)
    assert expired.is_new and expired.expired_reason is Verdict.EXPIRED_IDLE


def test_absolute_lifetime_however_active(make: Callable[..., Any], clock: FakeClock) -> None:
    manager = make(Policy(idle_timeout=30 * MINUTE, absolute_lifetime=HOUR))
    token = logged_in(manager)
    for _ in range(5):
        clock.advance(15 * MINUTE)
        session = manager.load(token)
        if session.is_new:
            break
        manager.save(session)
        token = session.token
    assert session.is_new and session.expired_reason is Verdict.EXPIRED_ABSOLUTE


def test_ip_binding(make: Callable[..., Any]) -> None:
    manager = make(Policy(bind_ip=True))
    session = manager.load(None, client_ip="203.0.113.1")
    token = manager.login(session, "alice")
    assert alive(manager, token) is False  # no IP presented
    assert not manager.load(token, client_ip="203.0.113.1").is_new
    moved = manager.load(token, client_ip="198.51.100.9")
    assert moved.is_new and moved.expired_reason is Verdict.IP_MISMATCH


def test_junk_cookies_give_an_anonymous_session(manager: Any) -> None:
    for junk in ["", "cc1_" + "A" * 48, "cs1.AAAA", "cs1." + "x" * 5000, "\x00\xff"]:
        session = manager.load(junk)
        assert session.is_new
        assert session.expired_reason is (Verdict.UNKNOWN if junk else None)


def test_create_seals_a_session_directly(manager: Any) -> None:
    token, record = manager.create("svc", kind="api", data={"scope": "read"}, client_ip="::1")
    loaded = manager.load(token)
    assert loaded.user_id == "svc" and loaded.kind == "api" and loaded["scope"] == "read"
    assert loaded.record == record


def test_user_agent_is_truncated(manager: Any) -> None:
    session = manager.load(None, user_agent="U" * 5000)
    token = manager.login(session, "alice")
    assert manager.load(token).record.user_agent == "U" * 200


# --- login and rotation ------------------------------------------------------------------------


def test_login_is_a_fresh_session_carrying_only_named_keys(manager: Any, clock: FakeClock) -> None:
    anonymous = manager.load(None)
    anonymous["_csrf"] = "pre-login"
    anonymous["cart"] = [1]
    manager.save(anonymous)
    before = anonymous.token
    clock.advance(5)
    session = manager.load(before)
    token = manager.login(session, "alice", carry=["cart"])
    assert token == session.token != before
    loaded = manager.load(token)
    assert loaded.snapshot() == {"cart": [1]}
    assert loaded.user_id == "alice" and loaded.authenticated_at == clock.now
    assert loaded.record.created_at == clock.now
    assert loaded.record.sid != manager.load(before).record.sid
    # Documented limit: the pre-login cookie cannot be deleted; it stays the anonymous
    # session it was and never becomes the logged-in one.
    replay = manager.load(before)
    assert replay.user_id is None and replay["_csrf"] == "pre-login"


def test_login_defaults_and_other_users_data(manager: Any) -> None:
    token = logged_in(manager, "alice", cart=[1])
    assert manager.load(token)["cart"] == [1]  # carry=True by default, as in server mode
    session = manager.load(token)
    bob = manager.login(session, "bob")
    assert manager.load(bob).snapshot() == {} and manager.load(bob).user_id == "bob"


def test_rotate_keeps_user_data_and_deadlines(manager: Any, clock: FakeClock) -> None:
    token = logged_in(manager, role="user")
    first = manager.load(token).record
    clock.advance(10 * MINUTE)
    session = manager.load(token)
    session["role"] = "admin"
    rotated = manager.rotate(session)
    record = manager.load(rotated).record
    assert record.sid != first.sid and record.user_id == "alice"
    assert manager.load(rotated)["role"] == "admin"
    assert (record.created_at, record.issued_at) == (first.created_at, first.issued_at)
    assert record.authenticated_at == first.authenticated_at

    clock.advance(MINUTE)
    session = manager.load(rotated)
    stepped_up = manager.load(manager.rotate(session, reauthenticated=True)).record
    assert stepped_up.authenticated_at == stepped_up.created_at == clock.now


def test_logout_without_a_store_only_ends_the_cookie_in_this_browser(manager: Any) -> None:
    token = logged_in(manager)
    session = manager.load(token)
    manager.logout(session)
    assert session.ended and session.token is None and session.record is None
    manager.save(session)  # nothing to do
    # Documented limit: a copy of the cookie stays valid until its timeouts.
    assert manager.load(token).user_id == "alice"


def test_revocation_without_a_store_is_a_clear_error(manager: Any) -> None:
    with pytest.raises(ConfigError, match="cannot be revoked one by one"):
        manager.revoke_user("alice")
    session = manager.load(logged_in(manager))
    with pytest.raises(ConfigError, match="store"):
        manager.logout_other_sessions(session)
    assert manager.logout_other_sessions(manager.load(None)) == 0


def test_per_user_limits_are_refused_in_sealed_mode() -> None:
    with pytest.raises(ConfigError, match="server mode"):
        SealedSessionManager(KEYS, Policy(max_sessions_per_user=1))


# --- size --------------------------------------------------------------------------------------


def test_oversized_cookie_is_a_clear_error_and_changes_nothing(manager: Any) -> None:
    token = logged_in(manager, note="small")
    session = manager.load(token)
    session["blob"] = "x" * 2500
    manager.save(session)  # fits
    fits = session.token
    session = manager.load(fits)
    session["blob"] = "x" * 4000
    with pytest.raises(SessionTooLarge) as info:
        manager.save(session)
    message = str(info.value)
    assert "server mode" in message and f"{MAX_COOKIE_BYTES} bytes" in message
    size = int(message.split("would be ")[1].split(" bytes")[0])
    assert size > MAX_COOKIE_BYTES
    assert session.token is None and session.modified  # nothing sealed, nothing lost
    assert manager.load(fits)["blob"] == "x" * 2500  # the previous cookie still works


def test_size_counts_the_cookie_attributes(make: Callable[..., Any]) -> None:
    long_domain = "a" * 60 + ".example"
    plain = make()
    scoped = make(cookie=CookieSettings(name="__Secure-s", domain=long_domain, persistent=True))
    data = {"blob": "x" * 2870}
    assert plain.create("alice", data=data)[0]
    with pytest.raises(SessionTooLarge):
        scoped.create("alice", data=data)


@pytest.mark.parametrize("persistent", [False, True])
def test_the_size_limit_is_exact_at_4096_bytes(
    make: Callable[..., Any], clock: FakeClock, persistent: bool
) -> None:
    """A Set-Cookie of exactly 4096 bytes is kept, one byte more is refused, and the error
    reports the exact size, whatever the attributes (a non-ASCII path counts in bytes, Max-Age
    only when persistent). Four name lengths cover every value length modulo 4."""
    ring = KeyRing(KEYS)
    max_age = int(Policy().absolute_lifetime)  # the clock does not move during the test

    def value_for(data: dict[str, Any]) -> str:
        """A value as long as the one create() seals (its length depends on the payload only)."""
        now = clock()
        record = SealedRecord(
            user_id="alice",
            kind="browser",
            created_at=now,
            last_seen_at=now,
            authenticated_at=None,
            expires_at=now,
            data=data,
            sid_text=new_sid(),
            issued_at=now,
        )
        return seal(ring, record, "any name")

    def header_bytes(cookie: CookieSettings, value: str) -> int:
        try:
            return len(cookie.set_cookie(value, max_age).encode())
        except CookieTooLarge as exc:  # the header builder's own count
            return int(str(exc).split("would be ")[1].split(" bytes")[0])

    seen: set[int] = set()
    for name in ("__Secure-s", "__Secure-se", "__Secure-ses", "__Secure-sess"):
        cookie = CookieSettings(name=name, path="/caf\u00e9", persistent=persistent)
        manager = make(cookie=cookie)
        for n in range(2700, 3100):
            data = {"blob": "x" * n}
            expected = header_bytes(cookie, value_for(data))
            if abs(expected - MAX_COOKIE_BYTES) > 6:
                continue
            seen.add(expected)
            if expected <= MAX_COOKIE_BYTES:
                token, _ = manager.create("alice", data=data)
                assert len(cookie.set_cookie(token, max_age).encode()) == expected
            else:
                with pytest.raises(SessionTooLarge, match=f"would be {expected} bytes"):
                    manager.create("alice", data=data)
    assert {MAX_COOKIE_BYTES, MAX_COOKIE_BYTES + 1} <= seen


def test_the_size_follows_a_replaced_cookie_setting(make: Callable[..., Any]) -> None:
    manager = make()
    data = {"blob": "x" * 2870}
    assert manager.create("alice", data=data)[0]
    long_domain = "a" * 60 + ".example"
    scoped = CookieSettings(name="__Secure-s", domain=long_domain, persistent=True)
    getattr(manager, "_target", manager).cookie = scoped  # SyncView wraps the async one
    with pytest.raises(SessionTooLarge):
        manager.create("alice", data=data)


# --- keys and cookie names --------------------------------------------------------------------


def test_key_rotation_through_the_manager(make: Callable[..., Any], clock: FakeClock) -> None:
    old, new = generate_key(), generate_key()
    before, during, after = make(keys=[old]), make(keys=[new, old]), make(keys=[new])
    token = logged_in(before, cart=1)
    session = during.load(token)
    assert session.user_id == "alice"  # old cookies keep working during the rotation
    clock.advance(2 * MINUTE)
    during.save(session)  # the next touch re-seals with the new key
    assert after.load(session.token)["cart"] == 1
    assert before.load(session.token).is_new
    dropped = after.load(token)  # once the old key is dropped, its cookies are dead
    assert dropped.is_new and dropped.expired_reason is Verdict.UNKNOWN


def test_keys_as_a_comma_separated_string_or_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = generate_key()
    monkeypatch.setenv(KEYS_ENV, key)
    token, _ = SealedSessionManager().create("alice")
    assert SealedSessionManager(f"{key},{generate_key()}").load(token).user_id == "alice"
    monkeypatch.delenv(KEYS_ENV)
    with pytest.raises(ConfigError, match=KEYS_ENV):
        AsyncSealedSessionManager()


def test_the_cookie_name_is_sealed_in(make: Callable[..., Any]) -> None:
    shop = make(cookie=CookieSettings(name="__Host-shop"))
    blog = make(cookie=CookieSettings(name="__Host-blog"))
    token = logged_in(shop)
    assert shop.load(token).user_id == "alice"
    assert blog.load(token).expired_reason is Verdict.UNKNOWN


def test_logs_never_carry_the_cookie(manager: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="coatcheck.session")
    token = logged_in(manager)
    manager.logout(manager.load(token))
    assert caplog.records
    text = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert token not in text and token[len(PREFIX) : len(PREFIX) + 20] not in text


def test_saves_are_logged_at_their_level_with_the_session_key(
    manager: Any, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="coatcheck.session")
    token = logged_in(manager)
    session = manager.load(token)
    session["cart"] = [1]
    manager.save(session)  # "extended" is a DEBUG event: not logged at INFO
    assert [r.event for r in caplog.records] == ["logged_in"]  # type: ignore[attr-defined]
    caplog.clear()
    caplog.set_level(logging.DEBUG, logger="coatcheck.session")
    session = manager.load(session.token)
    session["cart"] = [2]
    manager.save(session)
    [record] = caplog.records
    assert record.event == "extended"  # type: ignore[attr-defined]
    assert record.session == manager.events.session_id(session.record.key)  # type: ignore[attr-defined]


# --- revocation records on every store ---------------------------------------------------------


def test_logout_everywhere_keeps_only_the_current_session(
    make: Callable[..., Any], store_url: str, clock: FakeClock
) -> None:
    manager = make(store_url=store_url)
    here, there, bob = logged_in(manager), logged_in(manager), logged_in(manager, "bob")
    created = manager.load(here).record.created_at
    clock.advance(10 * MINUTE)

    session = manager.load(here)
    session["pending"] = True
    assert manager.logout_other_sessions(session) == 0
    manager.save(session)  # the request's own change is kept
    current = session.token
    assert current and current != here
    assert manager.load(current)["pending"] is True
    # Re-issued with a fresh issued_at, but the absolute deadline is not extended.
    assert manager.load(current).record.created_at == created

    for dead in (here, there):
        refused = manager.load(dead)
        assert refused.is_new and refused.expired_reason is Verdict.UNKNOWN
    assert manager.load(bob).user_id == "bob"
    clock.advance(1)
    assert alive(manager, logged_in(manager))  # logging in again works


def test_load_many_is_load_for_each_value(
    make: Callable[..., Any], store_url: str, clock: FakeClock
) -> None:
    manager = make(store_url=store_url)
    ended, alice, bob = logged_in(manager), logged_in(manager), logged_in(manager, "bob")
    anonymous = new_cookie(manager, cart=1)
    manager.logout(manager.load(ended))
    clock.advance(1)
    values = ["junk", ended, alice, None, bob, "", anonymous, alice]
    found = manager.load_many(values)
    expected = [manager.load(value) for value in values]
    assert [(s.user_id, s.is_new, s.expired_reason, dict(s)) for s in found] == [
        (s.user_id, s.is_new, s.expired_reason, dict(s)) for s in expected
    ]
    assert [s.user_id for s in found] == [None, None, "alice", None, "bob", None, None, "alice"]
    assert found[2] is not found[7]


def test_load_many_reads_the_revocation_records_in_one_store_call() -> None:
    from harness import CountingStore

    store = CountingStore()
    manager = SealedSessionManager(KEYS, store=store)  # type: ignore[arg-type]
    values = [logged_in(manager), logged_in(manager, "bob"), logged_in(manager), "junk"]
    store.calls.clear()
    assert [s.user_id for s in manager.load_many(values)] == ["alice", "bob", "alice", None]
    assert store.calls == ["load_many"]
    store.calls.clear()
    manager.load_many([new_cookie(manager, cart=1), "junk"])
    assert store.calls == [], "anonymous sessions cannot be revoked: nothing to read"


def test_revoke_user_refuses_every_session_issued_before(
    make: Callable[..., Any], store_url: str, clock: FakeClock
) -> None:
    manager = make(store_url=store_url)
    tokens = [logged_in(manager) for _ in range(3)]
    bob = logged_in(manager, "bob")
    anonymous = new_cookie(manager, cart=1)
    in_flight = manager.load(tokens[0])
    clock.advance(1)
    assert manager.revoke_user("alice") == 0
    assert not any(alive(manager, t) for t in tokens)
    assert alive(manager, bob) and alive(manager, anonymous)
    # A request that loaded the session before the revocation cannot launder it into a
    # new cookie: the chain keeps its issued_at.
    in_flight["x"] = 1
    manager.save(in_flight)
    assert not alive(manager, in_flight.token)
    clock.advance(1)
    assert alive(manager, logged_in(manager))
    assert manager.revoke_user("alice") == 0  # again: the record is updated, not duplicated
    assert not any(alive(manager, t) for t in tokens)


def test_logout_and_rotation_end_copies_of_the_cookie(
    make: Callable[..., Any], store_url: str
) -> None:
    manager = make(store_url=store_url)
    token = logged_in(manager)
    other = logged_in(manager)
    manager.logout(manager.load(token))
    assert manager.load(token).expired_reason is Verdict.UNKNOWN
    assert alive(manager, other)  # only that session ended

    rotated = manager.rotate(manager.load(other))
    assert alive(manager, rotated) and not alive(manager, other)
    as_bob = manager.login(manager.load(rotated), "bob")
    assert alive(manager, as_bob) and not alive(manager, rotated)


def test_revocation_records_are_invisible_to_per_user_operations_and_expire(
    make: Callable[..., Any], store_url: str, clock: FakeClock
) -> None:
    manager = make(store_url=store_url)
    manager.revoke_user("alice")
    manager.logout(manager.load(logged_in(manager)))
    store = manager.store
    key = revocation.revocation_key("alice")
    stored = store.load(key)
    assert stored is not None and stored.user_id is None
    assert revocation.NOT_BEFORE in stored.data
    assert store.list_user("alice", clock.now) == []
    assert store.delete_user("alice") == 0 and store.load(key) is not None

    clock.advance(manager.policy.absolute_lifetime + 1)
    assert store.purge_expired(clock.now) == 1 and store.load(key) is None


def test_ended_entries_are_pruned_once_their_session_is_dead(
    make: Callable[..., Any], store_url: str, clock: FakeClock
) -> None:
    manager = make(store_url=store_url)
    manager.logout(manager.load(logged_in(manager)))
    clock.advance(manager.policy.absolute_lifetime + 1)
    manager.logout(manager.load(logged_in(manager)))
    entries = [k for k in manager.store.load(revocation.revocation_key("alice")).data]
    assert len(entries) == 1 and entries[0].startswith(revocation.ENDED)


def test_a_store_outage_fails_closed(make: Callable[..., Any]) -> None:
    token = logged_in(make())
    anonymous = new_cookie(make(), cart=1)
    broken = make(store_url="postgresql://postgres@127.0.0.1:1/test?timeout=1")  # nobody there
    with pytest.raises(StoreUnavailable):
        broken.load(token)
    assert broken.load(anonymous)["cart"] == 1  # anonymous sessions need no store


def test_a_lost_race_to_create_the_revocation_record_merges_into_the_winner(
    tmp_path: Any, clock: FakeClock
) -> None:
    class RacingStore(SQLiteStore):
        """Another process inserts this user's first revocation record just before we do."""

        def insert(self, record: SessionRecord, **kwargs: Any) -> list[bytes]:
            if record.key == revocation.revocation_key("alice") and self.load(record.key) is None:
                winner = replace(record, data={revocation.NOT_BEFORE: clock.now - 5})
                super().insert(winner)
            return super().insert(record, **kwargs)

    manager = SealedSessionManager(
        KEYS, store=RacingStore(f"sqlite:///{tmp_path}/s.db"), clock=clock
    )
    token = logged_in(manager)
    clock.advance(1)
    manager.revoke_user("alice")
    stored = manager.store.load(revocation.revocation_key("alice"))
    assert stored.data[revocation.NOT_BEFORE] == clock.now
    assert not alive(manager, token)
    manager.close()


# --- the revocation rules on their own ---------------------------------------------------------


def test_revocation_plan_moves_forward_only_and_prunes() -> None:
    record = revocation.new_record("alice", {revocation.NOT_BEFORE: 100.0}, 100.0, 200.0)
    record.data["ended:old"] = 50.0
    record.data["ended:live"] = 500.0
    assert revocation.plan(record, {revocation.NOT_BEFORE: 90.0}, 40.0, 150.0) is None
    plan = revocation.plan(record, {revocation.NOT_BEFORE: 110.0}, 110.0, 300.0)
    assert plan is not None
    assert plan.patch == Patch({revocation.NOT_BEFORE: "110.0"}, frozenset({"ended:old"}))
    assert plan.expires_at == 300.0


def test_well_formed_values_are_told_from_junk_without_decrypting(manager: Any) -> None:
    """What the web layer keeps among several cookies of one name before opening any."""
    sealed = new_cookie(manager, cart=1)
    foreign = new_cookie(SealedSessionManager([generate_key()]), cart=1)  # opens as nothing
    assert manager.is_well_formed(sealed) and SealedSessionManager.is_well_formed(foreign)
    for junk in ("", "junk", PREFIX, PREFIX + "A" * 42, PREFIX + "!" * 60, "cc2_" + "A" * 48, 7):
        assert not manager.is_well_formed(junk), junk
    assert not manager.is_well_formed(PREFIX + "A" * MAX_COOKIE_BYTES)
