"""ClientCache's rules on their own: what is kept, for how long, and what drops it (the
service's answers come from the real service in test_cache_service.py)."""

from __future__ import annotations

import pytest

from coatcheck import ConfigError, FakeClock
from coatcheck.client import ClientCache, Introspection
from coatcheck.client.cache import cache_key
from coatcheck.client.events import EventListener, EventParser, StreamEvent

TOKEN = "cc2_" + "A" * 48
OTHER = "cc2_" + "B" * 48


def active(
    public_id: str = "0123456789abcdef", user: str = "alice", expires_at: float | None = None
) -> Introspection:
    return Introspection(
        active=True, token_type="session", id=public_id, user_id=user, expires_at=expires_at
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_000_000.0)


@pytest.fixture
def cache(clock: FakeClock) -> ClientCache:
    made = ClientCache(max_age=30.0, max_entries=3, clock=clock)
    made.connected()
    return made


def test_key_is_the_digest_never_the_token(cache: ClientCache) -> None:
    key = cache_key(TOKEN)
    assert len(key) == 32 and TOKEN.encode() not in key
    assert cache.put(key, active(), cache.ticket())
    assert cache.get(key) == active()
    assert TOKEN not in repr(cache)


def test_an_answer_for_one_address_serves_that_address_alone(cache: ClientCache) -> None:
    key = cache_key(TOKEN)
    assert cache.put(key, active(), cache.ticket(), "192.0.2.1")
    assert cache.get(key, "192.0.2.1") == active()
    assert cache.get(key, "192.0.2.2") is None and cache.get(key) is None


def test_only_active_answers_are_kept(cache: ClientCache) -> None:
    key = cache_key(TOKEN)
    assert not cache.put(key, Introspection(active=False), cache.ticket())
    assert cache.get(key) is None and len(cache) == 0


def test_bypassed_until_connected_and_while_disconnected(clock: FakeClock) -> None:
    cache = ClientCache(clock=clock)
    key = cache_key(TOKEN)
    assert not cache.live
    assert not cache.put(key, active(), cache.ticket())
    cache.connected()
    assert cache.put(key, active(), cache.ticket())
    cache.disconnected()
    assert cache.get(key) is None and len(cache) == 0
    assert not cache.put(key, active(), cache.ticket())
    cache.connected()
    assert cache.get(key) is None  # a reconnection starts empty


def test_max_age_bounds_every_entry(cache: ClientCache, clock: FakeClock) -> None:
    key = cache_key(TOKEN)
    cache.put(key, active(), cache.ticket())
    clock.advance(29.9)
    assert cache.get(key) is not None
    clock.advance(0.1)
    assert cache.get(key) is None


def test_the_sessions_own_expiry_bounds_it_sooner(cache: ClientCache, clock: FakeClock) -> None:
    key = cache_key(TOKEN)
    cache.put(key, active(expires_at=clock.now + 5), cache.ticket())
    clock.advance(5)
    assert cache.get(key) is None
    assert not cache.put(key, active(expires_at=clock.now), cache.ticket())


def test_the_oldest_entry_makes_room(cache: ClientCache) -> None:
    keys = [cache_key(f"cc2_{n:048d}") for n in range(4)]
    for n, key in enumerate(keys):
        cache.put(key, active(public_id=f"{n:016x}"), cache.ticket())
    assert len(cache) == 3
    assert cache.get(keys[0]) is None and cache.get(keys[3]) is not None


def test_drops_by_public_id_prefix_and_user(cache: ClientCache) -> None:
    one, two, three = cache_key(TOKEN), cache_key(OTHER), cache_key("cc2_" + "C" * 48)
    cache.put(one, active("000000000000000a"), cache.ticket())
    cache.put(two, active("000000000000000b"), cache.ticket())
    cache.put(three, active("000000000000000c", user="bob"), cache.ticket())
    assert cache.drop(public_id="000000000000000a") == 1
    assert cache.get(one) is None and cache.get(two) is not None
    assert cache.drop(prefix=two[:8].hex()) == 1
    assert cache.get(two) is None
    assert cache.drop(prefix="not hex at all!!") == 0  # names nothing: drops nothing
    cache.put(one, active("000000000000000a"), cache.ticket())
    assert cache.drop(user_id="bob", keep=None) == 1
    assert cache.get(three) is None and cache.get(one) is not None
    assert cache.drop(user_id="alice", keep=one) == 0
    assert cache.get(one) is not None


def test_an_answer_in_flight_during_its_revocation_is_not_kept(cache: ClientCache) -> None:
    key, other = cache_key(TOKEN), cache_key(OTHER)
    ticket = cache.ticket()  # read before asking the service ...
    cache.drop(public_id="0123456789abcdef")  # ... the revocation arrives meanwhile
    assert not cache.put(key, active(), ticket)
    assert cache.put(other, active(public_id="fedcba9876543210"), ticket)  # another session
    ticket = cache.ticket()
    cache.flush()
    assert not cache.put(key, active(public_id="1111111111111111"), ticket)


def test_settings_are_checked() -> None:
    for bad in (0, -1, float("inf"), float("nan"), "30", True):
        with pytest.raises(ConfigError, match="max_age"):
            ClientCache(max_age=bad)  # type: ignore[arg-type]
    for bad_entries in (0, 1.5, True):
        with pytest.raises(ConfigError, match="max_entries"):
            ClientCache(max_entries=bad_entries)  # type: ignore[arg-type]


def test_stream_parser_reads_events_comments_and_ids() -> None:
    parser = EventParser()
    lines = [
        "retry: 2000",
        "",
        ": keep-alive",
        "",
        "id: 7",
        "event: revoked",
        'data: {"id": "0123456789abcdef",',
        'data:  "digest_prefix": null}',
        "",
    ]
    events = [e for e in map(parser.feed, lines) if e is not None]
    assert events == [
        StreamEvent("revoked", '{"id": "0123456789abcdef",\n "digest_prefix": null}', "7")
    ]
    assert parser.last_id == "7"


def test_listener_applies_revoked_reset_and_unreadable(cache: ClientCache) -> None:
    listener = EventListener(cache, "http://service.test/v1/events", {})
    key, other = cache_key(TOKEN), cache_key(OTHER)
    cache.put(key, active("000000000000000a"), cache.ticket())
    cache.put(other, active("000000000000000b"), cache.ticket())
    listener.apply(StreamEvent("revoked", '{"id": "000000000000000a", "digest_prefix": null}', "1"))
    assert cache.get(key) is None and cache.get(other) is not None
    prefix = other[:8].hex()
    listener.apply(
        StreamEvent("revoked", f'{{"id": "ffffffffffffffff", "digest_prefix": "{prefix}"}}', "2")
    )
    assert cache.get(other) is None
    cache.put(key, active("000000000000000a"), cache.ticket())
    listener.apply(StreamEvent("reset", "{}", "3"))
    assert len(cache) == 0
    cache.put(key, active("000000000000000a"), cache.ticket())
    listener.apply(StreamEvent("revoked", "not json", "4"))  # unreadable: flush to be safe
    assert len(cache) == 0
    assert listener.last_event_id == "4"
