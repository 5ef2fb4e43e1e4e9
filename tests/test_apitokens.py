"""API tokens: the format on its own, then the behaviour on every store through both APIs.

Time moves only through the injected ``FakeClock``; store calls are counted where "no store
call" is the claim.
"""

from __future__ import annotations

import string
from typing import Any

import pytest
from harness import CountingStore, SyncView, logged_in

from coatcheck import FakeClock, Policy, SessionManager, Verdict
from coatcheck.apitokens import (
    API_TOKEN_LENGTH,
    API_TOKEN_PREFIX,
    NO_EXPIRY_HORIZON,
    ApiTokenError,
    ApiTokenInfo,
    ApiTokens,
    AsyncApiTokens,
    is_api_token,
    looks_like_api_token,
)
from coatcheck.core.apitokens import checksum
from coatcheck.core.errors import InvalidToken
from coatcheck.core.tokens import TokenCodec, new_token_key

DAY = 86400.0
ALPHABET = string.ascii_letters + string.digits + "-_"


def tokens_for(manager: Any, **options: Any) -> Any:
    """ApiTokens over a sync manager, or AsyncApiTokens over an async one (seen as sync)."""
    if isinstance(manager, SyncView):
        return SyncView(AsyncApiTokens(manager._target, **options), manager._loop)
    return ApiTokens(manager, **options)


@pytest.fixture
def tokens(manager: Any) -> Any:
    return tokens_for(manager)


@pytest.fixture
def counted(clock: FakeClock) -> tuple[ApiTokens, CountingStore]:
    store = CountingStore()
    return ApiTokens(SessionManager(store, clock=clock)), store  # type: ignore[arg-type]


# --- the format ---------------------------------------------------------------------------


def test_format_prefix_length_alphabet_and_checksum() -> None:
    codec = TokenCodec(new_token_key())
    token, key = codec.new_api_token("alice")
    assert token.startswith(API_TOKEN_PREFIX) and len(token) == API_TOKEN_LENGTH == 57
    assert all(c in ALPHABET for c in token[3:])
    assert token[-6:] == checksum(token[:-6])
    assert looks_like_api_token(token)
    assert codec.parse_api_token(token) == key
    assert key.shard == codec.user_shard("alice")


def test_two_tokens_of_one_user_share_no_visible_shard() -> None:
    codec = TokenCodec(new_token_key())
    first, second = (codec.new_api_token("alice")[0] for _ in range(2))
    assert first[3:9] != second[3:9]  # the masked shard differs, the real one is the same
    assert codec.parse_api_token(first).shard == codec.parse_api_token(second).shard


def test_every_one_character_change_is_refused_without_a_store_call(
    counted: tuple[ApiTokens, CountingStore],
) -> None:
    tokens, store = counted
    token, _ = tokens.create("alice", "ci")
    store.calls.clear()
    changed = 0
    for i in range(len(API_TOKEN_PREFIX), len(token)):
        for c in ("A", "z", "0", "-"):
            if token[i] == c:
                continue
            other = token[:i] + c + token[i + 1 :]
            assert not looks_like_api_token(other), (i, c)
            assert tokens.check(other) == (Verdict.UNKNOWN, None)
            changed += 1
    assert changed > 200
    assert store.calls == []
    assert tokens.check(token)[0] is Verdict.VALID
    assert "load" in store.calls


@pytest.mark.parametrize(
    "value",
    [
        None,
        7,
        b"cc_",
        "",
        "cc_",
        "cc_" + "A" * 54,
        "CC_" + "A" * 54,
        "cc_" + "A" * 200,
        "cc_é" * 19,
    ],
)
def test_garbage_is_not_an_api_token(value: object) -> None:
    assert not looks_like_api_token(value)
    with pytest.raises(InvalidToken):
        TokenCodec(new_token_key()).parse_api_token(value)


def test_session_tokens_and_api_tokens_never_name_each_other(manager: Any, tokens: Any) -> None:
    session_token = logged_in(manager, "alice")
    api_token, _ = tokens.create("alice", "ci")
    assert not looks_like_api_token(session_token)
    assert tokens.check(session_token) == (Verdict.UNKNOWN, None)
    assert manager.inspect(api_token) == (Verdict.UNKNOWN, None)
    assert manager.load(api_token).is_new
    assert tokens.check(api_token)[0] is Verdict.VALID
    assert not manager.load(session_token).is_new


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "tab\there"}, "name"),
        ({"scopes": ["Read"]}, "scope"),
        ({"scopes": "read"}, "list"),
        ({"scopes": [f"s{i}" for i in range(33)]}, "at most 32"),
        ({"expires_in": 0}, "expires_in"),
        ({"expires_in": -5}, "expires_in"),
        ({"expires_in": True}, "expires_in"),
        ({"expires_in": NO_EXPIRY_HORIZON}, "expires_in"),
    ],
)
def test_bad_requests_are_refused_clearly(
    counted: tuple[ApiTokens, CountingStore], options: dict[str, Any], message: str
) -> None:
    tokens, store = counted
    given = {"name": "ci", **options}
    name = given.pop("name")
    with pytest.raises(ApiTokenError, match=message):
        tokens.create("alice", name, **given)
    assert store.writes() == []


# --- every store ------------------------------------------------------------------------


def test_create_check_verify_and_scopes(tokens: Any, clock: FakeClock) -> None:
    token, info = tokens.create("alice", "deploy bot", scopes=["repo:read", "repo:write"])
    assert isinstance(info, ApiTokenInfo)
    assert info.user_id == "alice" and info.name == "deploy bot"
    assert info.scopes == ("repo:read", "repo:write")
    assert info.created_at == clock.now and info.expires_at is None and info.last_used_at is None
    assert token not in repr(info) and token not in str(info.summary())
    assert set(info.summary()) == {
        "id",
        "user_id",
        "name",
        "scopes",
        "created_at",
        "expires_at",
        "last_used_at",
    }
    verdict, checked = tokens.check(token)
    assert verdict is Verdict.VALID and checked.id == info.id
    assert tokens.verify(token, scope="repo:write").id == info.id
    assert tokens.verify(token, scope="admin") is None
    assert tokens.verify("cc_nonsense") is None


def test_a_token_outlives_the_session_policy(make_manager: Any, clock: FakeClock) -> None:
    manager = make_manager(Policy(idle_timeout=600, absolute_lifetime=3600, touch_interval=60))
    tokens = tokens_for(manager)
    token, _ = tokens.create("alice", "ci")
    clock.advance(30 * DAY)
    assert tokens.check(token)[0] is Verdict.VALID


def test_expiry_is_the_tokens_own(tokens: Any, clock: FakeClock) -> None:
    token, info = tokens.create("alice", "short", expires_in=DAY)
    assert info.expires_at == clock.now + DAY
    clock.advance(DAY - 1)
    assert tokens.check(token)[0] is Verdict.VALID
    assert [i.id for i in tokens.list_user("alice")] == [info.id]
    clock.advance(1)
    assert tokens.check(token) == (Verdict.EXPIRED_ABSOLUTE, None)
    assert tokens.list_user("alice") == []
    assert tokens.verify(token) is None


def test_stored_expiry_without_expiry_is_the_far_horizon(manager: Any, tokens: Any) -> None:
    token, info = tokens.create("alice", "forever")
    key = manager.token_codec().parse_api_token(token)
    record = manager.store.load(key)
    assert record.kind == "api" and is_api_token(record)
    assert record.expires_at == info.created_at + NO_EXPIRY_HORIZON
    assert token not in str(record.data)


def test_list_shows_tokens_only_and_sessions_can_filter_them(manager: Any, tokens: Any) -> None:
    logged_in(manager, "alice")
    _, first = tokens.create("alice", "one", scopes=["a"])
    _, second = tokens.create("alice", "two")
    tokens.create("bob", "other")
    assert {i.id for i in tokens.list_user("alice")} == {first.id, second.id}
    everything = manager.list_user("alice")
    assert len(everything) == 3
    assert [r.kind for r in everything if not is_api_token(r)] == ["browser"]


def test_api_tokens_are_exempt_from_the_session_limit(make_manager: Any) -> None:
    manager = make_manager(Policy(max_sessions_per_user=1, on_limit="refuse"))
    tokens = tokens_for(manager)
    logged_in(manager, "alice")
    first, _ = tokens.create("alice", "one")
    second, _ = tokens.create("alice", "two")
    assert tokens.check(first)[0] is tokens.check(second)[0] is Verdict.VALID


def test_revoke_by_id_leaves_a_tombstone(manager: Any, tokens: Any) -> None:
    token, info = tokens.create("alice", "ci")
    assert tokens.revoke(info.id, user_id="bob") is False  # not bob's
    assert tokens.check(token)[0] is Verdict.VALID
    assert tokens.revoke(info.id, user_id="alice") is True
    assert tokens.check(token) == (Verdict.REVOKED, None)
    key = manager.token_codec().parse_api_token(token)
    assert manager.store.tombstone(key).reason == "revoked_by_user"
    assert tokens.revoke(info.id, user_id="alice") is False
    assert tokens.revoke("not an id") is False


def test_operator_revoke_by_id_and_by_token(manager: Any, tokens: Any) -> None:
    token, info = tokens.create("alice", "ci")
    assert tokens.revoke(info.id.upper()) is True
    key = manager.token_codec().parse_api_token(token)
    assert manager.store.tombstone(key).reason == "revoked_by_admin"
    other, other_info = tokens.create("alice", "cd")
    revoked = tokens.revoke_token(other)
    assert revoked is not None and revoked.id == other_info.id
    assert tokens.check(other) == (Verdict.REVOKED, None)
    assert tokens.revoke_token(other) is None
    assert tokens.revoke_token("garbage") is None


def test_a_user_id_never_ends_a_session(manager: Any, tokens: Any) -> None:
    session_token = logged_in(manager, "alice")
    (record,) = manager.list_user("alice")
    assert tokens.revoke(record.public_id, user_id="alice") is False
    assert not manager.load(session_token).is_new


def test_an_operator_revoke_by_id_never_ends_a_session(manager: Any, tokens: Any) -> None:
    session_token = logged_in(manager, "alice")
    api_session, _ = manager.create("alice", kind="api", data={"k": 1})  # kind api, no token
    token, info = tokens.create("alice", "ci")
    sessions = [r for r in manager.list_user("alice") if not is_api_token(r)]
    assert len(sessions) == 2
    for record in sessions:
        assert tokens.revoke(record.public_id) is False
        assert tokens.revoke(record.public_id.upper(), reason="operator") is False
        assert manager.store.tombstone(record.key) is None
    assert not manager.load(session_token).is_new and not manager.load(api_session).is_new
    assert tokens.revoke(info.id) is True
    assert tokens.check(token) == (Verdict.REVOKED, None)


def test_revoke_user_ends_tokens_and_keeps_sessions(manager: Any, tokens: Any) -> None:
    session_token = logged_in(manager, "alice")
    first, one = tokens.create("alice", "one")
    second, two = tokens.create("alice", "two")
    bobs, _ = tokens.create("bob", "three")
    ended = tokens.revoke_user("alice")
    assert sorted(i.id for i in ended) == sorted([one.id, two.id])
    assert tokens.check(first)[0] is tokens.check(second)[0] is Verdict.REVOKED
    assert tokens.check(bobs)[0] is Verdict.VALID
    assert not manager.load(session_token).is_new
    assert tokens.revoke_user("alice") == []


def test_last_used_is_written_at_most_once_per_interval(
    make_manager: Any, clock: FakeClock
) -> None:
    manager = make_manager()
    tokens = tokens_for(manager, touch_interval=60)
    token, info = tokens.create("alice", "ci")
    key = manager.token_codec().parse_api_token(token)
    created = info.created_at
    clock.advance(5)
    assert tokens.check(token)[1].last_used_at == created + 5  # the first use is written
    version = manager.store.load(key).version
    for _ in range(3):
        clock.advance(10)
        assert tokens.check(token)[1].last_used_at == created + 5
    assert manager.store.load(key).version == version  # no write inside the interval
    clock.advance(30)  # 60 s after the last write
    assert tokens.check(token)[1].last_used_at == created + 65
    assert manager.store.load(key).version == version + 1
    (listed,) = tokens.list_user("alice")
    assert listed.last_used_at == created + 65
