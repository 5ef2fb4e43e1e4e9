"""JSON encoding of session values: the one encoder every store and the size check use."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coatcheck.core.errors import SessionDataError
from coatcheck.core.records import decode_value, encode_data, encode_value

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
