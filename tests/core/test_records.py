"""JSON encoding of session values: the one encoder every store and the size check use."""

from __future__ import annotations

import hashlib
import json
import math
import secrets
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coatcheck.core.errors import InvalidSessionId, SessionDataError
from coatcheck.core.records import (
    CLUSTER_SLOTS,
    cluster_slot,
    decode_value,
    encode_data,
    encode_value,
    parse_public_id,
    public_id,
    public_id_bytes,
)
from coatcheck.core.tokens import SessionKey
from coatcheck.stores.redis.keys import slot_tag

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(json_values)
def test_encoding_matches_the_standard_library(value: Any) -> None:
    expected = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    assert encode_value("k", value) == expected
    assert encode_data({"k": value}) == json.dumps(
        {"k": value}, separators=(",", ":"), ensure_ascii=False
    )
    assert decode_value(encode_value("k", value)) == value


def test_a_value_that_contains_itself_is_refused_by_name() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(SessionDataError, match=r"'cart'.*contains itself"):
        encode_value("cart", loop)


@pytest.mark.parametrize("value", [math.nan, math.inf, {1, 2}, b"bytes", object()])
def test_values_json_cannot_carry_are_refused_by_name(value: Any) -> None:
    with pytest.raises(SessionDataError, match="'note'"):
        encode_value("note", value)


def test_the_encoder_is_reused_across_calls() -> None:
    """Encoding after a refused value still works (no state left behind by the error)."""
    with pytest.raises(SessionDataError):
        encode_value("x", object())
    assert encode_value("x", {"a": [1, "é"]}) == '{"a":[1,"é"]}'


# --- public session ids ------------------------------------------------------------------


def test_public_id_is_the_cluster_slot_and_a_hash_of_the_digest() -> None:
    from redis.crc import key_slot

    for _ in range(50):
        key = SessionKey(secrets.token_bytes(4), secrets.token_bytes(32))
        session_key = f"coatcheck:{{{key.shard.hex()}}}:s:{key.digest.hex()}"
        assert cluster_slot(key.shard) == key_slot(session_key.encode())
        raw = public_id_bytes(key)
        assert raw[:2] == cluster_slot(key.shard).to_bytes(2, "big")
        assert raw[2:] == hashlib.sha256(b"coatcheck-public\0" + key.digest).digest()[:6]
        assert raw[2:] not in key.digest and public_id(key) == raw.hex()
        assert parse_public_id(public_id(key)) == raw
        assert parse_public_id(f" {public_id(key).upper()}\n") == raw


@pytest.mark.parametrize(
    "junk", [None, 7, b"0" * 16, "", "0" * 15, "0" * 17, "z" * 16, "4000000000000000", "x" * 10_000]
)
def test_parse_public_id_refuses_junk_with_a_clear_error(junk: object) -> None:
    with pytest.raises(InvalidSessionId, match="session id") as caught:
        parse_public_id(junk)
    assert len(str(caught.value)) < 200


def test_slot_tags_reach_every_slot() -> None:
    from redis.crc import key_slot

    for slot in range(CLUSTER_SLOTS):
        tag = slot_tag(slot)
        assert len(tag) == 8 and set(tag) <= set("0123")
        assert key_slot(f"coatcheck:{{{tag}}}:p:x".encode()) == slot
    with pytest.raises(ValueError, match="slot"):
        slot_tag(CLUSTER_SLOTS)
