"""The pure decisions behind the flow: when a token is due, the pending logins a browser may
have, which sessions a logout token names, the form field of a back-channel POST."""

from __future__ import annotations

from coatcheck._async.oidc.flow import form_value
from coatcheck.oidc.record import (
    LEASE_KEY,
    MAX_PENDING,
    add_pending,
    holds,
    logged_out_by,
    needs_refresh,
    read_lease,
    take_pending,
)

NOW = 1_000_000.0


def test_a_token_is_due_within_the_skew() -> None:
    oidc = {"expires_at": NOW + 100, "received_at": NOW - 200}
    assert not needs_refresh(oidc, 30, NOW)
    assert needs_refresh(oidc, 30, NOW + 70)
    assert needs_refresh(oidc, 30, NOW + 500)


def test_the_skew_is_cut_to_half_a_short_lifetime() -> None:
    """A 5-s token with the default 30-s skew is not refreshed on every request."""
    oidc = {"expires_at": NOW + 5, "received_at": NOW}
    assert not needs_refresh(oidc, 30, NOW + 2)
    assert needs_refresh(oidc, 30, NOW + 2.5)


def test_no_expiry_or_no_record_is_never_due() -> None:
    assert not needs_refresh({"expires_at": None}, 30, NOW)
    assert not needs_refresh(None, 30, NOW)
    assert not needs_refresh({"expires_at": True}, 30, NOW)


def test_pending_logins_are_few_and_expire() -> None:
    pending: object = None
    for i in range(MAX_PENDING + 2):
        pending = add_pending(pending, f"s{i}", {"started": NOW + i}, NOW + i, 600)
    assert isinstance(pending, dict)
    assert sorted(pending) == [f"s{i}" for i in range(2, MAX_PENDING + 2)]
    later = add_pending(pending, "new", {"started": NOW + 603.5}, NOW + 603.5, 600)
    assert sorted(later) == ["new", "s4", "s5"], "those started over 600 s ago are dropped"


def test_a_pending_login_is_taken_once_and_only_by_its_state() -> None:
    pending = {"abc": {"started": NOW}, "def": {"started": NOW}}
    entry, rest = take_pending(pending, "abc")
    assert entry == {"started": NOW}
    assert rest == {"def": {"started": NOW}}
    assert take_pending(rest, "abc") == (None, rest)
    assert take_pending(pending, None)[0] is None
    assert take_pending(pending, "ab")[0] is None
    assert take_pending("junk", "abc") == (None, {})


def test_a_logout_token_names_sessions_by_iss_and_sid_or_sub() -> None:
    alice_1 = {"iss": "https://op", "sub": "alice", "sid": "s1"}
    alice_2 = {"iss": "https://op", "sub": "alice", "sid": "s2"}
    assert logged_out_by(alice_1, "https://op", "s1", None)
    assert not logged_out_by(alice_2, "https://op", "s1", None)
    assert logged_out_by(alice_2, "https://op", None, "alice")
    assert not logged_out_by(alice_1, "https://other", "s1", "alice")
    assert not logged_out_by(alice_1, "https://op", "s1", "bob"), "both given: both must match"
    assert not logged_out_by(alice_1, "https://op", None, None)
    assert not logged_out_by(None, "https://op", "s1", None)


def test_a_malformed_lease_counts_as_none() -> None:
    assert read_lease({LEASE_KEY: {"holder": 3, "until": NOW}}) is None
    assert read_lease({LEASE_KEY: "x"}) is None
    assert not holds({LEASE_KEY: {"holder": "h", "until": "soon"}}, "h")
    assert holds({LEASE_KEY: {"holder": "h", "until": NOW}}, "h")


def test_the_back_channel_form_is_read_without_raising() -> None:
    assert form_value(b"logout_token=a.b.c&x=1", "logout_token") == "a.b.c"
    assert form_value(b"x=1", "logout_token") is None
    assert form_value(b"\xff\xfe", "logout_token") is None
