"""Token format and parsing (version 2, and version 1 until those expire), the token key and
how a manager resolves it, including properties over arbitrary input."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import secrets
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coatcheck import AsyncSessionManager, ConfigError, InvalidToken, SessionManager
from coatcheck.core import tokens
from coatcheck.core.tokens import (
    PREFIX,
    SECRET_BYTES,
    TOKEN_KEY_ENV,
    TOKEN_LENGTH,
    V1_PREFIX,
    TokenCodec,
    configured_token_key,
    decode_token_key,
    is_well_formed,
    token_digest,
    unkeyed_user_shard,
)
from coatcheck.stores.memory import MemoryStore
from coatcheck.stores.sqlite import SQLiteStore
from coatcheck.stores.threaded import AsyncOverSync

KEY_A = bytes(range(32))
KEY_B = bytes(range(32, 64))
USERS = ["alice", "bob", "carol", "42", "a@example.com"]


def body(token: str) -> bytes:
    return base64.urlsafe_b64decode(token[len(PREFIX) :])


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def known_token(key: bytes, shard: bytes, random: bytes) -> str:
    """A version-2 token with chosen random bytes, built from the format's definition."""
    mask = hmac.digest(key, b"coatcheck-mask\0" + random, "sha256")[:4]
    masked = bytes(a ^ b for a, b in zip(shard, mask, strict=True))
    return PREFIX + base64.urlsafe_b64encode(masked + random).decode()


def v1_token(shard: bytes) -> str:
    return V1_PREFIX + base64.urlsafe_b64encode(shard + secrets.token_bytes(32)).decode()


# --- the format -------------------------------------------------------------------------


def test_token_shape_and_entropy() -> None:
    codec = TokenCodec(KEY_A)
    token, key = codec.new_token()
    assert token.startswith("cc2_") and len(token) == TOKEN_LENGTH == 52
    assert len(body(token)) - len(key.shard) == SECRET_BYTES == 32  # 256 random bits
    assert key.digest == hashlib.sha256(token.encode()).digest()
    assert len({codec.new_token()[0] for _ in range(1000)}) == 1000


def test_the_true_shard_is_recovered_from_every_token() -> None:
    codec = TokenCodec(KEY_A)
    for user in USERS:
        for _ in range(5):
            token, key = codec.new_token(user)
            assert key.shard == codec.user_shard(user) == codec.parse(token).shard
            assert TokenCodec(KEY_A).parse(token) == key  # another process, same key
    token, key = codec.new_token()  # anonymous: a random shard, recovered as well
    assert codec.parse(token) == key


def test_the_shard_is_keyed_by_the_token_key() -> None:
    a, b = TokenCodec(KEY_A), TokenCodec(KEY_B)
    for user in USERS:
        assert (
            a.user_shard(user)
            == hmac.digest(KEY_A, b"coatcheck-shard\0" + user.encode(), "sha256")[:4]
        )
        assert a.user_shard(user) != b.user_shard(user) != unkeyed_user_shard(user)


def test_two_tokens_of_one_user_share_no_visible_bytes() -> None:
    """Known keys and chosen random parts: deterministic. A version-1 token carried the user's
    shard in bytes 0-3 of every token; a version-2 token masks it with its own random part."""
    randoms = [bytes([i]) * 32 for i in range(12)]
    same = compared = 0
    for key, user in itertools.product((KEY_A, KEY_B), USERS):
        codec = TokenCodec(key)
        shard = codec.user_shard(user)
        heads = [body(known_token(key, shard, r))[:4] for r in randoms]
        for x, y in itertools.combinations(heads, 2):
            assert x != y
            same += sum(p == q for p, q in zip(x, y, strict=True))
            compared += 4
        assert all(h != shard and h != unkeyed_user_shard(user) for h in heads)
        for r in randoms:  # and the server still recovers the user's shard from each
            assert codec.parse(known_token(key, shard, r)).shard == shard
    # Byte by byte, two heads agree as often as two random bytes do (1 in 256), not always.
    assert same < compared // 50


def test_fresh_tokens_of_one_user_are_unlinkable() -> None:
    """The same with real random parts (a collision of 32-bit heads among these is below one
    in ten million)."""
    codec = TokenCodec(KEY_A)
    for user in USERS:
        heads = [body(codec.new_token(user)[0])[:4] for _ in range(12)]
        assert len(set(heads)) == len(heads)
        assert codec.user_shard(user) not in heads and unkeyed_user_shard(user) not in heads


def test_a_guessed_user_id_cannot_be_confirmed_without_the_key() -> None:
    """Whoever holds a cookie sees 36 bytes; the unkeyed shard is not among them, and a codec
    with another key (an attacker's guess) recovers something else than its user shard."""
    randoms = [bytes([i]) * 32 for i in range(8)]
    for user in USERS:
        shard = TokenCodec(KEY_A).user_shard(user)
        for r in randoms:
            token = known_token(KEY_A, shard, r)
            assert body(token)[:4] != unkeyed_user_shard(user)
            guess = TokenCodec(KEY_B)
            assert guess.parse(token).shard != guess.user_shard(user)


def test_version_1_tokens_still_parse_with_their_shard_in_the_clear() -> None:
    shard = unkeyed_user_shard("alice")
    token = v1_token(shard)
    for codec in (TokenCodec(KEY_A), TokenCodec(KEY_B)):
        key = codec.parse(token)
        assert key.shard == shard and key.digest == hashlib.sha256(token.encode()).digest()
    assert is_well_formed(token) and token_digest(token) == key.digest


@given(st.binary(min_size=36, max_size=36))
def test_every_36_byte_body_round_trips(raw: bytes) -> None:
    codec = TokenCodec(KEY_A)
    v1 = V1_PREFIX + base64.urlsafe_b64encode(raw).decode()
    assert codec.parse(v1).shard == raw[:4]
    v2 = PREFIX + base64.urlsafe_b64encode(raw).decode()
    mask = hmac.digest(KEY_A, b"coatcheck-mask\0" + raw[4:], "sha256")[:4]
    assert codec.parse(v2).shard == bytes(a ^ b for a, b in zip(raw[:4], mask, strict=True))
    assert is_well_formed(v1) and is_well_formed(v2)

    class Subclass(str):
        pass

    assert codec.parse(Subclass(v2)) == codec.parse(v2)  # the slow path agrees with the fast one


@given(st.text(max_size=200))
def test_parse_never_raises_anything_but_invalid_token(text: str) -> None:
    try:
        key = TokenCodec(KEY_A).parse(text)
    except InvalidToken:
        return
    assert len(text) == TOKEN_LENGTH and text.startswith((PREFIX, V1_PREFIX))
    assert key.digest == hashlib.sha256(text.encode()).digest() == token_digest(text)


@given(st.one_of(st.text(max_size=60), st.binary(max_size=60), st.none(), st.integers()))
def test_well_formed_means_parseable(value: Any) -> None:
    try:
        TokenCodec(KEY_A).parse(value)
    except InvalidToken:
        assert not is_well_formed(value)
        with pytest.raises(InvalidToken):
            token_digest(value)
    else:
        assert is_well_formed(value)


@pytest.mark.parametrize("value", [None, 1, b"cc2_", ["x"], "cc3_" + "A" * 48, "cc2_" + "A" * 47])
def test_malformed_values_are_invalid_tokens(value: Any) -> None:
    with pytest.raises(InvalidToken):
        TokenCodec(KEY_A).parse(value)


def test_sha256_is_hashlibs() -> None:
    for data in (b"", b"cc2_" + b"A" * 48, bytes(range(256))):
        assert tokens.sha256(data) == hashlib.sha256(data).digest()


# --- the remembered parses ---------------------------------------------------------------


def test_parsed_keys_are_remembered_per_codec_and_only_those_of_well_formed_tokens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A browser presents the same cookie on every request: its key is computed once. Values
    that are refused are never remembered, and the memory is bounded."""
    hashed: list[bytes] = []
    real = tokens.sha256
    monkeypatch.setattr(tokens, "sha256", lambda data: hashed.append(data) or real(data))
    codec = TokenCodec(KEY_A, remember=16)
    token, key = codec.new_token("alice")
    hashed.clear()  # new_token's own digest
    assert codec.parse(token) == key == codec.parse(token)
    assert hashed == [token.encode()], "the second request's parse is remembered"
    other = TokenCodec(KEY_B, remember=16)
    assert other.remembered() == 0, "each codec remembers its own tokens"

    wrong_alphabet = PREFIX + "*" * 48
    before = codec.remembered()
    for _ in range(2):
        with pytest.raises(InvalidToken, match="alphabet"):
            codec.parse(wrong_alphabet)
    assert codec.remembered() == before

    for _ in range(26):
        codec.parse(codec.new_token()[0])
    assert codec.remembered() == 16
    codec.forget()
    assert codec.remembered() == 0


# --- the token key ----------------------------------------------------------------------


def test_token_key_text_and_bytes() -> None:
    assert decode_token_key(KEY_A) == KEY_A
    assert decode_token_key(b64(KEY_A)) == KEY_A
    assert decode_token_key(b64(KEY_A) + "=") == KEY_A
    assert decode_token_key(f"  {b64(KEY_A)}\n") == KEY_A
    assert configured_token_key(b64(KEY_B), {TOKEN_KEY_ENV: b64(KEY_A)}) == KEY_B
    assert configured_token_key(None, {TOKEN_KEY_ENV: b64(KEY_A)}) == KEY_A
    assert configured_token_key(None, {}) is None
    assert configured_token_key(None, {TOKEN_KEY_ENV: " "}) is None


@pytest.mark.parametrize(
    "value",
    [
        "short",
        b64(KEY_A)[:-1],
        b64(bytes(33)),
        b64(KEY_A).replace("A", "+"),
        b64(KEY_A)[:-1] + "B",  # 43 characters whose last one has bits set beyond 32 bytes
        base64.b64encode(bytes([0xFB] * 32)).decode(),  # standard alphabet, not URL-safe
    ],
)
def test_a_bad_token_key_in_the_environment_is_a_clear_config_error(value: str) -> None:
    with pytest.raises(ConfigError, match=TOKEN_KEY_ENV) as caught:
        configured_token_key(None, {TOKEN_KEY_ENV: value})
    assert value not in str(caught.value), "the message never repeats the secret"


@pytest.mark.parametrize("value", [bytes(31), bytes(33), 42])
def test_a_bad_explicit_token_key_is_a_config_error(value: Any) -> None:
    with pytest.raises(ConfigError, match="token_key"):
        SessionManager(MemoryStore(), token_key=value)


def test_a_bad_environment_key_fails_when_the_manager_is_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TOKEN_KEY_ENV, "not-a-key")
    with pytest.raises(ConfigError, match=TOKEN_KEY_ENV):
        SessionManager(MemoryStore())
    with pytest.raises(ConfigError, match=TOKEN_KEY_ENV):
        AsyncSessionManager(AsyncOverSync(MemoryStore(), threads=None))


def shard_of_login(manager: SessionManager, user: str = "alice") -> bytes:
    token = manager.login(manager.load(None), user)
    shard = manager.token_codec().parse(token).shard
    record = manager.store.load(manager.token_codec().parse(token))
    assert record is not None and record.key.shard == shard
    return shard


def test_the_key_comes_from_the_argument_then_the_environment_then_the_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(TOKEN_KEY_ENV, raising=False)
    store = MemoryStore()
    own = TokenCodec(store.token_key())
    assert shard_of_login(SessionManager(store)) == own.user_shard("alice")

    monkeypatch.setenv(TOKEN_KEY_ENV, b64(KEY_B))
    assert shard_of_login(SessionManager(MemoryStore())) == TokenCodec(KEY_B).user_shard("alice")
    explicit = SessionManager(MemoryStore(), token_key=b64(KEY_A))
    assert shard_of_login(explicit) == TokenCodec(KEY_A).user_shard("alice")
    assert shard_of_login(
        SessionManager(MemoryStore(), token_key=KEY_A)
    ) == explicit.token_codec().user_shard("alice")


def test_two_managers_on_one_sqlite_file_agree_on_the_stores_key(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes' stores on one file: the first stores a random key, both read it."""
    monkeypatch.delenv(TOKEN_KEY_ENV, raising=False)
    url = f"sqlite:///{tmp_path}/sessions.db"
    first, second = SQLiteStore(url), SQLiteStore(url)
    try:
        a, b = SessionManager(first), SessionManager(second)
        token = a.login(a.load(None), "alice")
        assert len(first.token_key()) == 32 and first.token_key() == second.token_key()
        assert b.token_codec().parse(token) == a.token_codec().parse(token)
        assert not b.load(token).is_new and b.list_user("alice")[0].key.shard == shard_of_login(b)
        third = SQLiteStore(url)
        third.migrate()
        assert third.token_key() == first.token_key(), "migrate never replaces the key"
        third.close()
    finally:
        first.close()
        second.close()


def test_migrate_stores_the_key_before_any_manager_runs(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path}/sessions.db"
    store = SQLiteStore(url)
    store.migrate()
    store.close()
    import sqlite3

    with sqlite3.connect(f"{tmp_path}/sessions.db") as conn:
        rows = conn.execute("SELECT name, length(value) FROM coatcheck_meta").fetchall()
    assert rows == [("token_key", 32)]


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def load(self, key: Any, *, data: bool = True) -> Any:
        self.calls.append("load")
        return super().load(key, data=data)

    def token_key(self) -> bytes:
        self.calls.append("token_key")
        return super().token_key()


@pytest.mark.parametrize("bad", ["", "nope", PREFIX + "*" * 48, "x" * 1_000_000, PREFIX])
def test_malformed_tokens_never_reach_the_store(bad: str) -> None:
    """Not even for the token key, when they are the first a manager sees."""
    store = CountingStore()
    manager = SessionManager(store)
    assert manager.load(bad).is_new
    manager.inspect(bad)
    manager.revoke(bad)
    assert store.calls == []


def test_the_store_key_is_read_once_per_manager() -> None:
    store = CountingStore()
    manager = SessionManager(store)
    token = manager.login(manager.load(None), "alice")
    for _ in range(3):
        assert not manager.load(token).is_new
    assert store.calls.count("token_key") == 1
