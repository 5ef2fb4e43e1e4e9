"""The pure decisions behind the flow: when a token is due, the pending logins a browser may
have, which sessions a logout token names, the form field of a back-channel POST."""

from __future__ import annotations

from coatcheck._async.oidc.flow import form_value
from coatcheck.oidc.record import (
    LEASE_KEY,
    MAX_PENDING,
    holds,
    logged_out_by,
    needs_refresh,
    pending_key,
    pending_to_drop,
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
    data: dict[str, object] = {"app": 1}
    for i in range(MAX_PENDING + 2):
        for key in pending_to_drop(data, NOW + i, 600):
            del data[key]
        data[pending_key(f"s{i}")] = {"started": NOW + i}
    assert sorted(data) == ["app", *(pending_key(f"s{i}") for i in range(2, MAX_PENDING + 2))]
    assert pending_to_drop(data, NOW + 603.5, 600) == [pending_key("s2"), pending_key("s3")], (
        "those started over 600 s ago go, then the oldest beyond the limit"
    )
    assert pending_to_drop({pending_key("x"): "junk", "app": 1}, NOW, 600) == [pending_key("x")]


def test_a_pending_login_is_found_only_by_its_state() -> None:
    data = {pending_key("abc"): {"started": NOW}, pending_key("def"): {"started": NOW}, "x": 1}
    assert take_pending(data, "abc") == (pending_key("abc"), {"started": NOW})
    assert take_pending(data, None) == (None, None)
    assert take_pending(data, "ab") == (None, None)
    assert take_pending(data, "x") == (None, None), "other session keys are no states"
    assert take_pending({pending_key("abc"): "junk"}, "abc") == (pending_key("abc"), None)


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
