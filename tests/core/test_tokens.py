"""Token format and parsing, including properties over arbitrary input."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coatcheck import InvalidToken, SessionManager
from coatcheck.core import tokens
from coatcheck.core.tokens import (
    PREFIX,
    SECRET_BYTES,
    TOKEN_LENGTH,
    is_well_formed,
    new_token,
    parse_token,
    user_shard,
)
from coatcheck.stores.memory import MemoryStore


def test_token_shape_and_entropy() -> None:
    token, key = new_token()
    assert token.startswith(PREFIX) and len(token) == TOKEN_LENGTH
    raw = base64.urlsafe_b64decode(token[len(PREFIX) :])
    assert len(raw) - len(key.shard) == SECRET_BYTES == 32  # 256 random bits
    assert key.digest == hashlib.sha256(token.encode()).digest()
    assert len({new_token()[0] for _ in range(1000)}) == 1000


def test_user_tokens_share_the_users_shard_only() -> None:
    a1, k1 = new_token("alice")
    a2, k2 = new_token("alice")
    _, kb = new_token("bob")
    assert k1.shard == k2.shard == user_shard("alice") != kb.shard
    assert a1 != a2 and k1.digest != k2.digest


@given(st.text(max_size=200))
def test_parse_never_raises_anything_but_invalid_token(text: str) -> None:
    try:
        key = parse_token(text)
    except InvalidToken:
        return
    assert len(text) == TOKEN_LENGTH and text.startswith(PREFIX)
    assert key.digest == hashlib.sha256(text.encode()).digest()


@given(st.binary(min_size=36, max_size=36))
def test_every_36_byte_body_round_trips(raw: bytes) -> None:
    token = PREFIX + base64.urlsafe_b64encode(raw).decode()
    key = parse_token(token)
    assert key.shard == raw[:4]
    assert is_well_formed(token)

    class Subclass(str):
        pass

    assert parse_token(Subclass(token)) == key  # the slow path agrees with the fast one


@given(st.one_of(st.text(max_size=60), st.binary(max_size=60), st.none(), st.integers()))
def test_well_formed_means_parseable(value: Any) -> None:
    try:
        parse_token(value)
    except InvalidToken:
        assert not is_well_formed(value)
    else:
        assert is_well_formed(value)


@given(st.one_of(st.none(), st.integers(), st.binary(), st.lists(st.text())))
def test_non_strings_are_invalid(value: Any) -> None:
    with pytest.raises(InvalidToken):
        parse_token(value)


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.loads = 0

    def load(self, key: Any) -> Any:
        self.loads += 1
        return super().load(key)


@pytest.mark.parametrize("bad", ["", "nope", PREFIX + "*" * 48, "x" * 1_000_000, PREFIX])
def test_malformed_tokens_never_reach_the_store(bad: str) -> None:
    store = CountingStore()
    manager = SessionManager(store)
    assert manager.load(bad).is_new
    manager.inspect(bad)
    manager.revoke(bad)
    assert store.loads == 0


def test_token_digests_use_the_built_in_sha256_when_python_has_it() -> None:
    """The per-request digest skips OpenSSL's per-call set-up; the digest is the same."""
    builtin = importlib.util.find_spec("_sha2") or importlib.util.find_spec("_sha256")
    if builtin is not None:
        assert tokens._sha256 is not hashlib.sha256
        assert tokens._sha256.__module__ in {"_sha2", "_sha256"}
    for data in (b"", b"cc1_" + b"A" * 48, bytes(range(256))):
        assert tokens.sha256(data) == hashlib.sha256(data).digest()


def test_parsed_keys_are_remembered_and_only_those_of_well_formed_tokens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A browser presents the same cookie on every request: its key is computed once. Values
    that are refused are never remembered, and the memory is bounded."""
    hashed: list[bytes] = []
    real = tokens.sha256
    monkeypatch.setattr(tokens, "sha256", lambda data: hashed.append(data) or real(data))
    tokens._parse_sized.cache_clear()
    token, key = new_token()
    hashed.clear()  # new_token's own digest
    assert parse_token(token) == key == parse_token(token)
    assert hashed == [token.encode()], "the second request's parse is remembered"

    wrong_alphabet = PREFIX + "*" * 48
    before = tokens._parse_sized.cache_info().currsize
    for _ in range(2):
        with pytest.raises(InvalidToken, match="alphabet"):
            parse_token(wrong_alphabet)
    assert tokens._parse_sized.cache_info().currsize == before

    for _ in range(tokens.PARSED_CACHE_SIZE + 10):
        parse_token(new_token()[0])
    assert tokens._parse_sized.cache_info().currsize == tokens.PARSED_CACHE_SIZE
