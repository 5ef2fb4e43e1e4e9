"""The policy's decisions as pure functions, checked over many generated records and clocks."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from coatcheck import ConfigError, Policy, SessionTooLarge, Verdict
from coatcheck.core.policy import choose_evictions
from coatcheck.core.records import Patch, SessionRecord, UserLimit
from coatcheck.core.tokens import TokenCodec, new_token_key

times = st.floats(min_value=0, max_value=1e7, allow_nan=False)
durations = st.floats(min_value=1, max_value=1e6, allow_nan=False)


def record(
    created: float, seen: float, *, kind: str = "browser", ip: str | None = None
) -> SessionRecord:
    _, key = TokenCodec(new_token_key()).new_token("u")
    return SessionRecord(key, "u", kind, created, seen, created, seen + 1, ip)  # type: ignore[arg-type]


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    idle = draw(durations)
    return Policy(
        idle_timeout=idle,
        absolute_lifetime=draw(durations),
        touch_interval=draw(st.floats(min_value=0, max_value=idle, exclude_max=True)),
    )


@given(policies(), times, st.floats(0, 1e6), st.floats(0, 2e6))
def test_verdict_matches_the_two_deadlines(
    policy: Policy, created: float, since_created: float, since_seen: float
) -> None:
    assume(since_seen <= since_created)
    now = created + since_created
    r = record(created, now - since_seen)
    verdict = policy.verdict(r, now)
    dead_abs = now >= r.created_at + policy.absolute_lifetime
    dead_idle = now >= r.last_seen_at + policy.idle_timeout
    if dead_abs:
        assert verdict is Verdict.EXPIRED_ABSOLUTE
    elif dead_idle:
        assert verdict is Verdict.EXPIRED_IDLE
    else:
        assert verdict is Verdict.VALID
        assert now < policy.expires_at(r.created_at, r.last_seen_at)


@given(policies(), times, st.floats(0, 1e6))
def test_a_read_writes_only_past_the_touch_interval(
    policy: Policy, seen: float, elapsed: float
) -> None:
    r = record(seen, seen)
    now = seen + elapsed
    plan = policy.plan_write(r, Patch(), now)
    assert (plan is not None) == (now - seen >= policy.touch_interval)
    changed = policy.plan_write(r, Patch({"k": "1"}), now)
    assert changed is not None and changed.last_seen_at == now
    assert changed.expires_at <= r.created_at + policy.absolute_lifetime


@given(policies(), times)
def test_expiry_never_exceeds_the_absolute_lifetime(policy: Policy, created: float) -> None:
    for later in (0.0, policy.idle_timeout, policy.absolute_lifetime * 2):
        assert policy.expires_at(created, created + later) <= created + policy.absolute_lifetime


@given(
    st.lists(st.tuples(st.floats(0, 100), st.sampled_from(["browser", "api"])), max_size=12),
    st.integers(1, 5),
    st.booleans(),
)
def test_evictions_make_exactly_enough_room(
    sessions: list[tuple[float, str]], limit: int, refuse: bool
) -> None:
    now = 50.0
    records = [record(c, c, kind=k) for c, k in sessions]
    for r in records:
        r.expires_at = r.created_at + 10
    live = [r for r in records if r.kind == "browser" and r.expires_at > now]
    chosen = choose_evictions(records, UserLimit(limit, refuse), now)
    if len(live) < limit:
        assert chosen == []
    elif refuse:
        assert chosen is None
    else:
        assert chosen is not None and len(live) - len(chosen) == limit - 1
        survivors = [r for r in live if r not in chosen]
        assert all(v.created_at <= s.created_at for v in chosen for s in survivors)
        assert all(v.kind == "browser" for v in chosen)


def test_ip_binding() -> None:
    r = record(0, 0, ip="192.0.2.1")
    assert Policy(bind_ip=True).verdict(r, 1, "192.0.2.1") is Verdict.VALID
    assert Policy(bind_ip=True).verdict(r, 1, "192.0.2.2") is Verdict.IP_MISMATCH
    assert Policy().verdict(r, 1, "192.0.2.2") is Verdict.VALID


@pytest.mark.parametrize(
    "kwargs",
    [
        {"idle_timeout": 0},
        {"absolute_lifetime": -1},
        {"touch_interval": 3600, "idle_timeout": 60},
        {"max_sessions_per_user": 0},
        {"on_limit": "drop"},
        {"max_data_bytes": 0},
        {"remember_absolute_lifetime": 3600},  # below the 12 h absolute lifetime
        {"remember_idle_timeout": 60},  # below the 30 min idle timeout
        {"remember_idle_timeout": -1},
    ],
)
def test_nonsense_policies_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        Policy(**kwargs)  # type: ignore[arg-type]


# --- remember me ---------------------------------------------------------------------------

REMEMBER = Policy(remember_absolute_lifetime=30 * 86400, remember_idle_timeout=7 * 86400)


def remembered(created: float, seen: float) -> SessionRecord:
    r = record(created, seen)
    r.remember = True
    return r


def test_remember_me_is_off_unless_a_remember_limit_is_set() -> None:
    assert not Policy().remember_enabled
    assert Policy(remember_idle_timeout=3600).remember_enabled
    assert Policy(remember_absolute_lifetime=86400).remember_enabled
    # Equal to the normal ones is allowed (and the same as not remembering).
    assert Policy(remember_absolute_lifetime=12 * 3600, remember_idle_timeout=1800).limits(
        True
    ) == (
        12 * 3600,
        1800,
    )


def test_limits_of_a_remembered_session() -> None:
    assert REMEMBER.limits() == (12 * 3600, 1800)
    assert REMEMBER.limits(True) == (30 * 86400, 7 * 86400)
    # One remember limit set: the other stays at the normal value.
    assert Policy(remember_idle_timeout=86400).limits(True) == (12 * 3600, 86400)
    assert Policy(remember_absolute_lifetime=86400).limits(True) == (86400, 1800)
    # A policy without remember limits judges a remembered session by the normal ones.
    assert Policy().limits(True) == Policy().limits(False)


@given(times, st.floats(0, 40 * 86400), st.floats(0, 10 * 86400))
def test_a_remembered_session_lives_by_the_remember_limits(
    created: float, since_created: float, since_seen: float
) -> None:
    assume(since_seen <= since_created)
    now = created + since_created
    r = remembered(created, now - since_seen)
    verdict = REMEMBER.verdict(r, now)
    if since_created >= 30 * 86400:
        assert verdict is Verdict.EXPIRED_ABSOLUTE
    elif since_seen >= 7 * 86400:
        assert verdict is Verdict.EXPIRED_IDLE
    else:
        assert verdict is Verdict.VALID
        assert now < REMEMBER.expires_at(r.created_at, r.last_seen_at, True)
    plain = record(created, now - since_seen)
    assert REMEMBER.verdict(plain, now) is Policy().verdict(plain, now)
    assert Policy().verdict(r, now) is Policy().verdict(plain, now), "remember off: normal limits"


def test_a_remembered_sessions_touch_slides_to_the_remember_deadline() -> None:
    r = remembered(0.0, 0.0)
    plan = REMEMBER.plan_write(r, Patch(), 3600)
    assert plan is not None and plan.expires_at == 3600 + 7 * 86400
    assert REMEMBER.expires_at(0.0, 29 * 86400, True) == 30 * 86400
    plain = REMEMBER.plan_write(record(0.0, 0.0), Patch(), 3600)
    assert plain is not None and plain.expires_at == 3600 + 1800


# --- deadlines, cookie Max-Age, data size ----------------------------------------------------


@given(policies(), times, st.floats(0, 1e6), st.booleans())
def test_the_deadline_is_expires_at_and_the_verdict_it_then_gives(
    policy: Policy, created: float, since_created: float, remember: bool
) -> None:
    seen = created + since_created
    moment, verdict = policy.deadline(created, seen, remember)
    assert moment == policy.expires_at(created, seen, remember)
    r = record(created, seen)
    r.remember = remember
    assert policy.verdict(r, moment) is verdict


@given(
    policies(),
    times,
    st.floats(0, 1e6),
    st.none() | st.floats(1, 1e6),
    st.none() | st.floats(0, 2e7),
)
def test_a_sessions_own_limits_only_shorten_the_policys(
    policy: Policy, created: float, since_created: float, idle: float | None, end: float | None
) -> None:
    seen = created + since_created
    moment, verdict = policy.deadline(created, seen, idle_timeout=idle, ends_at=end)
    deadlines = [
        (policy.expires_at(created, seen), policy.deadline(created, seen)[1]),
        (seen + idle if idle is not None else float("inf"), Verdict.EXPIRED_IDLE),
        (end if end is not None else float("inf"), Verdict.EXPIRED_ABSOLUTE),
    ]
    earliest = min(d for d, _ in deadlines)
    assert moment == earliest
    assert (moment, verdict) in deadlines


def test_an_own_idle_timeout_slides_and_a_fixed_end_does_not() -> None:
    policy = Policy()  # 30 min idle, 12 h absolute
    assert policy.deadline(0.0, 100.0, idle_timeout=60) == (160.0, Verdict.EXPIRED_IDLE)
    assert policy.deadline(0.0, 100.0, ends_at=120.0) == (120.0, Verdict.EXPIRED_ABSOLUTE)
    assert policy.deadline(0.0, 100.0, idle_timeout=86400) == (1900.0, Verdict.EXPIRED_IDLE)
    assert policy.deadline(0.0, 100.0, ends_at=1e9) == (1900.0, Verdict.EXPIRED_IDLE)
    late = 12 * 3600 - 60.0  # the absolute deadline comes before the idle one
    assert policy.deadline(0.0, late) == (12 * 3600, Verdict.EXPIRED_ABSOLUTE)


@given(policies(), times, st.floats(0, 1e6))
def test_the_cookie_lives_until_the_absolute_deadline(
    policy: Policy, created: float, elapsed: float
) -> None:
    now = created + elapsed
    assert policy.cookie_max_age(created, now) == int(created + policy.absolute_lifetime - now)
    assert policy.cookie_max_age(created, now, True) == policy.cookie_max_age(created, now)


def test_a_remembered_cookie_lives_for_the_remember_lifetime() -> None:
    assert REMEMBER.cookie_max_age(0.0, 0.0) == 12 * 3600
    assert REMEMBER.cookie_max_age(0.0, 0.0, True) == 30 * 86400
    assert REMEMBER.cookie_max_age(1000.0, 1600.5, True) == 30 * 86400 - 601
    # The idle timeout does not shorten it: a touch slides that without a new cookie.
    assert Policy(idle_timeout=60, touch_interval=0).cookie_max_age(0.0, 0.0) == 12 * 3600


def test_data_up_to_max_data_bytes_is_accepted_and_one_byte_more_refused() -> None:
    policy = Policy(max_data_bytes=100)
    policy.check_data_size(0)
    policy.check_data_size(100)
    with pytest.raises(SessionTooLarge, match=r"101 bytes as JSON, over the limit of 100"):
        policy.check_data_size(101)


@given(policies(), times, st.floats(0, 1e6), st.booleans())
def test_no_session_outlives_its_absolute_deadline(
    policy: Policy, created: float, since_created: float, remember: bool
) -> None:
    seen = created + since_created
    deadline = policy.absolute_deadline(created, remember)
    assert deadline == created + policy.limits(remember)[0]
    assert policy.expires_at(created, seen, remember) <= deadline
    assert policy.cookie_max_age(created, seen, remember) == int(deadline - seen)
