"""The policy's decisions as pure functions, checked over many generated records and clocks."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from coatcheck import ConfigError, Policy, Verdict
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
    ],
)
def test_nonsense_policies_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        Policy(**kwargs)  # type: ignore[arg-type]
