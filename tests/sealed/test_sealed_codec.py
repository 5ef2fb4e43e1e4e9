"""The sealed cookie format on its own: keys, round trips, and everything that must not open."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import string
import sys
import threading
from dataclasses import replace
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from coatcheck import ConfigError, Policy
from coatcheck.core.records import encode_data, public_id
from coatcheck.core.tokens import SessionKey, unkeyed_user_shard
from coatcheck.sealed import KEYS_ENV, KeyRing, SealedRecord, generate_key
from coatcheck.sealed.b64 import b64url_decode, b64url_encode
from coatcheck.sealed.codec import (
    KEY_ID_BYTES,
    NONCE_BYTES,
    PREFIX,
    SID_BYTES,
    TAG_BYTES,
    OpenedValues,
    key_id,
    new_sid,
    parse_key,
    seal,
    unseal,
)
from coatcheck.sealed.payload import payload_text

NAME = "__Host-session"
POLICY = Policy()
T0 = 1_800_000_000.0


def make_record(**changes: Any) -> SealedRecord:
    record = SealedRecord(
        user_id="alice",
        kind="browser",
        created_at=T0,
        last_seen_at=T0 + 30.5,
        authenticated_at=T0 + 1.25,
        expires_at=POLICY.expires_at(T0, T0 + 30.5),
        client_ip="203.0.113.7",
        user_agent="Mozilla/5.0 (X11; Linux x86_64)",
        data={"cart": [1, 2, 3], "name": "Zoë ✓", "nested": {"a": None, "b": True}},
        sid_text=new_sid(),
        issued_at=T0 + 0.5,
    )
    return replace(record, **changes)


def raw_of(value: str) -> bytes:
    body = value[len(PREFIX) :]
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))


def text_of(raw: bytes) -> str:
    return PREFIX + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing([generate_key()])


# --- keys --------------------------------------------------------------------------------


def test_generated_keys_are_32_random_bytes_in_base64url() -> None:
    key = generate_key()
    assert len(key) == 43 and "=" not in key
    assert parse_key(key) == base64.urlsafe_b64decode(key + "=")
    assert parse_key(key + "=") == parse_key(key)
    assert generate_key() != key


def test_raw_byte_keys_are_accepted() -> None:
    raw = bytes(range(32))
    ring = KeyRing([raw])
    assert ring.primary_id == key_id(raw).hex()


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "too-short",
        "A" * 44,  # 33 bytes
        "A" * 42 + "B",  # stray bits in the last character
        base64.b64encode(b"\xfb" * 32).decode(),  # standard alphabet (+ /), not URL-safe
        b"\x00" * 16,
        12345,
    ],
)
def test_bad_keys_are_config_errors_that_never_echo_the_key(bad: Any) -> None:
    with pytest.raises(ConfigError) as info:
        KeyRing([generate_key(), bad])
    message = str(info.value)
    assert "#2" in message
    assert "python -c" in message or "str or bytes" in message
    if isinstance(bad, str) and bad:
        assert bad not in message


def test_a_ring_needs_a_key_and_no_duplicates() -> None:
    with pytest.raises(ConfigError, match="at least one key"):
        KeyRing([])
    key = generate_key()
    with pytest.raises(ConfigError, match="listed twice"):
        KeyRing([key, key])


def test_keys_come_from_the_environment() -> None:
    new, old = generate_key(), generate_key()
    ring = KeyRing.from_env({KEYS_ENV: f" {new} , {old},"})
    assert len(ring) == 2 and ring.primary_id == key_id(parse_key(new)).hex()
    with pytest.raises(ConfigError, match=KEYS_ENV):
        KeyRing.from_env({})
    assert KeyRing.of(f"{new},{old}").primary_id == ring.primary_id


def test_repr_never_shows_key_material() -> None:
    key = generate_key()
    text = repr(KeyRing([key]))
    assert key not in text and "1 key" in text


# --- round trip and format -----------------------------------------------------------------


def test_round_trip_keeps_every_field(ring: KeyRing) -> None:
    record = make_record()
    assert unseal(ring, seal(ring, record, NAME), NAME, POLICY) == record


def test_round_trip_of_a_minimal_anonymous_record(ring: KeyRing) -> None:
    record = make_record(
        user_id=None,
        authenticated_at=None,
        client_ip=None,
        user_agent=None,
        data={},
        sid_text=new_sid(),
    )
    assert unseal(ring, seal(ring, record, NAME), NAME, POLICY) == record


def test_round_trip_of_a_remembered_record(ring: KeyRing) -> None:
    """The remember flag travels as ``"r":1`` (absent otherwise) and decides the expiry."""
    remember_policy = Policy(remember_absolute_lifetime=30 * 86400)
    record = make_record(remember=True, expires_at=remember_policy.expires_at(T0, T0 + 30.5, True))
    value = seal(ring, record, NAME)
    assert json.loads(ring.decrypt(value, NAME) or b"")["r"] == 1
    assert unseal(ring, value, NAME, remember_policy) == record
    opened = OpenedValues()
    assert unseal(ring, value, NAME, remember_policy, opened) == record  # decrypted, kept
    assert unseal(ring, value, NAME, remember_policy, opened) == record  # from the cache
    assert "r" not in json.loads(ring.decrypt(seal(ring, make_record(), NAME), NAME) or b"")
    assert record.written({}, T0 + 60, T0 + 120).remember, "a touch keeps the flag"


@pytest.mark.parametrize("flag", [True, 0, 2, "1", 1.0, []])
def test_a_malformed_remember_flag_opens_as_nothing(ring: KeyRing, flag: Any) -> None:
    doc = {"id": "A" * 22, "k": "browser", "c": T0, "i": T0, "s": T0, "d": {}, "r": flag}
    assert unseal(ring, ring.encrypt(json.dumps(doc).encode(), NAME), NAME, POLICY) is None


def test_format_is_prefix_key_id_nonce_ciphertext(ring: KeyRing) -> None:
    value = seal(ring, make_record(), NAME)
    assert value.startswith("cs1.")
    assert all(c.isalnum() or c in "-_" for c in value[len(PREFIX) :])
    raw = raw_of(value)
    assert raw[:KEY_ID_BYTES].hex() == ring.primary_id
    assert len(raw) > KEY_ID_BYTES + NONCE_BYTES + TAG_BYTES


def test_payload_is_plain_json_with_a_16_byte_session_id(ring: KeyRing) -> None:
    record = make_record()
    plaintext = ring.decrypt(seal(ring, record, NAME), NAME)
    assert plaintext is not None
    doc = json.loads(plaintext)
    assert doc["u"] == "alice" and doc["d"] == record.data and doc["i"] == record.issued_at
    assert len(base64.urlsafe_b64decode(doc["id"] + "==")) == SID_BYTES


def test_every_seal_uses_a_fresh_nonce(ring: KeyRing) -> None:
    record = make_record()
    values = {seal(ring, record, NAME) for _ in range(50)}
    nonces = {raw_of(v)[KEY_ID_BYTES : KEY_ID_BYTES + NONCE_BYTES] for v in values}
    assert len(values) == len(nonces) == 50


# --- nothing else opens ----------------------------------------------------------------------


def test_flipping_any_bit_of_any_byte_fails(ring: KeyRing) -> None:
    raw = raw_of(seal(ring, make_record(), NAME))
    for position in range(len(raw)):
        for bit in (0x01, 0x80):
            tampered = bytearray(raw)
            tampered[position] ^= bit
            assert unseal(ring, text_of(bytes(tampered)), NAME, POLICY) is None, position


def test_changing_any_character_fails(ring: KeyRing) -> None:
    value = seal(ring, make_record(), NAME)
    for position in range(len(PREFIX), len(value)):
        swapped = "B" if value[position] == "A" else "A"
        changed = value[:position] + swapped + value[position + 1 :]
        assert unseal(ring, changed, NAME, POLICY) is None, position


def test_a_non_canonical_encoding_of_a_valid_value_fails(ring: KeyRing) -> None:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for n in range(3):  # one of three lengths leaves unused bits in the last character
        value = seal(ring, make_record(data={"p": "x" * n}), NAME)
        if (len(value) - len(PREFIX)) % 4:
            break
    stray = alphabet[alphabet.index(value[-1]) ^ 1]  # flips a bit base64 decoders ignore
    twin = value[:-1] + stray
    assert raw_of(twin) == raw_of(value)
    assert unseal(ring, value, NAME, POLICY) is not None
    assert unseal(ring, twin, NAME, POLICY) is None


def test_every_truncation_fails(ring: KeyRing) -> None:
    value = seal(ring, make_record(data={}), NAME)
    for length in range(len(value)):
        assert unseal(ring, value[:length], NAME, POLICY) is None, length
    raw = raw_of(value)
    assert unseal(ring, text_of(raw[:-1]), NAME, POLICY) is None


def test_a_value_moved_to_another_cookie_name_fails(ring: KeyRing) -> None:
    value = seal(ring, make_record(), NAME)
    assert unseal(ring, value, "__Host-other", POLICY) is None
    assert unseal(ring, value, "session", POLICY) is None


def test_another_key_fails_even_with_a_forged_key_id(ring: KeyRing) -> None:
    other = KeyRing([generate_key()])
    value = seal(other, make_record(), NAME)
    assert unseal(ring, value, NAME, POLICY) is None
    forged = bytes.fromhex(ring.primary_id) + raw_of(value)[KEY_ID_BYTES:]
    assert unseal(ring, text_of(forged), NAME, POLICY) is None


def test_another_format_version_fails(ring: KeyRing) -> None:
    value = seal(ring, make_record(), NAME)
    assert unseal(ring, "cs2." + value[len(PREFIX) :], NAME, POLICY) is None
    assert unseal(ring, value[len(PREFIX) :], NAME, POLICY) is None


@pytest.mark.parametrize(
    "junk",
    [
        None,
        "",
        "cs1.",
        "cs1.====",
        "cs1." + "A" * 5,
        "cs1." + "A" * 4000,
        "cs1." + "A" * 100_000,
        "cc1_" + "A" * 48,
        "x" * 1_000_000,
        "cs1.\x00\xff\ud800",
        "cs1.a+b/c=",
        "cs1.YWJj ZGVm",
        b"cs1.AAAA",
        12,
        ["cs1.AAAA"],
    ],
)
def test_junk_opens_as_nothing(ring: KeyRing, junk: Any) -> None:
    assert ring.decrypt(junk, NAME) is None
    assert unseal(ring, junk, NAME, POLICY) is None


@pytest.mark.parametrize(
    "doc",
    [
        [],
        "text",
        {},
        {"id": "AAAA", "k": "browser", "c": T0, "i": T0, "s": T0, "d": {}},
        {"id": "A" * 22, "k": "robot", "c": T0, "i": T0, "s": T0, "d": {}},
        {"id": "A" * 22, "k": "browser", "c": "yesterday", "i": T0, "s": T0, "d": {}},
        {"id": "A" * 22, "k": "browser", "c": True, "i": T0, "s": T0, "d": {}},
        {"id": "A" * 22, "k": "browser", "c": T0, "i": T0, "s": T0, "d": []},
        {"id": "A" * 22, "k": "browser", "c": T0, "i": T0, "s": T0, "d": {}, "u": 7},
        {"id": 5, "k": "browser", "c": T0, "i": T0, "s": T0, "d": {}},
        {"id": "A" * 21 + "B", "k": "browser", "c": T0, "i": T0, "s": T0, "d": {}},
        {"id": "A" * 23, "k": "browser", "c": T0, "i": T0, "s": T0, "d": {}},
        {"id": "A" * 21 + "+", "k": "browser", "c": T0, "i": T0, "s": T0, "d": {}},
        {"id": "A" * 22, "k": "browser", "c": 10**400, "i": T0, "s": T0, "d": {}},
        {"id": "A" * 22, "k": "browser", "c": T0, "i": T0, "s": 1e999, "d": {}},
        {"id": "A" * 22, "k": "browser", "c": T0, "i": None, "s": T0, "d": {}},
        {"id": "A" * 22, "k": "browser", "c": T0, "i": T0, "s": T0, "d": {}, "a": "x"},
        {"id": "A" * 22, "k": "browser", "c": T0, "i": T0, "s": T0, "d": {}, "ip": 1},
        {"id": "A" * 22, "k": "browser", "c": T0, "i": T0, "s": T0, "d": {}, "ua": []},
    ],
)
def test_authentic_but_malformed_payloads_open_as_nothing(ring: KeyRing, doc: Any) -> None:
    value = ring.encrypt(json.dumps(doc).encode(), NAME)
    assert unseal(ring, value, NAME, POLICY) is None


def test_integer_times_are_accepted(ring: KeyRing) -> None:
    doc = {"id": "A" * 22, "k": "browser", "c": 1_800_000_000, "i": 1, "s": 2, "d": {}}
    record = unseal(ring, ring.encrypt(json.dumps(doc).encode(), NAME), NAME, POLICY)
    assert record is not None and record.created_at == 1_800_000_000.0
    assert type(record.created_at) is float and type(record.issued_at) is float


def test_finite_times_whose_sum_overflows_are_accepted(ring: KeyRing) -> None:
    doc = {"id": "A" * 22, "k": "browser", "c": 1e308, "i": 1e308, "s": 1e308, "d": {}}
    record = unseal(ring, ring.encrypt(json.dumps(doc).encode(), NAME), NAME, POLICY)
    assert record is not None and record.created_at == record.last_seen_at == 1e308


def test_non_json_constants_are_refused(ring: KeyRing) -> None:
    text = '{"id":"' + "A" * 22 + '","k":"browser","c":NaN,"i":1,"s":1,"d":{}}'
    assert unseal(ring, ring.encrypt(text.encode(), NAME), NAME, POLICY) is None
    assert unseal(ring, ring.encrypt(b"\xff\xfe junk", NAME), NAME, POLICY) is None


# --- rotation ------------------------------------------------------------------------------


def test_key_rotation() -> None:
    old_key, new_key = generate_key(), generate_key()
    before = KeyRing([old_key])
    during = KeyRing([new_key, old_key])
    after = KeyRing([new_key])
    record = make_record()
    old_value = seal(before, record, NAME)

    assert unseal(during, old_value, NAME, POLICY) == record  # old cookies still open
    new_value = seal(during, record, NAME)
    assert raw_of(new_value)[:KEY_ID_BYTES].hex() == during.primary_id == after.primary_id
    assert unseal(before, new_value, NAME, POLICY) is None  # sealed with the new key
    assert unseal(after, new_value, NAME, POLICY) == record
    assert unseal(after, old_value, NAME, POLICY) is None  # dropping the old key ends them


# --- properties ------------------------------------------------------------------------------

_RING = KeyRing([generate_key()])
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(st.text(max_size=5000) | st.binary(max_size=5000).map(lambda b: b.decode("latin-1")))
def test_opening_arbitrary_text_never_raises(value: str) -> None:
    assert unseal(_RING, value, NAME, POLICY) is None
    assert unseal(_RING, PREFIX + value, NAME, POLICY) is None


@given(st.binary(max_size=300))
def test_opening_arbitrary_bytes_after_the_prefix_never_raises(raw: bytes) -> None:
    assert unseal(_RING, text_of(raw), NAME, POLICY) is None


@settings(max_examples=300)
@given(
    st.dictionaries(
        st.sampled_from(["id", "k", "c", "i", "s", "a", "u", "ip", "ua", "d", "x"]), _json
    )
    | _json
)
def test_opening_any_authentic_json_never_raises(doc: Any) -> None:
    value = _RING.encrypt(json.dumps(doc).encode(), NAME)
    result = unseal(_RING, value, NAME, POLICY)
    assert result is None or isinstance(result, SealedRecord)


def test_a_raw_aesgcm_value_without_our_framing_fails(ring: KeyRing) -> None:
    key = AESGCM.generate_key(bit_length=256)
    sealed = AESGCM(key).encrypt(b"\x00" * 12, b"{}", None)
    assert unseal(ring, text_of(b"\x00" * 4 + b"\x00" * 12 + sealed), NAME, POLICY) is None


def _reference_b64decode(text: str) -> bytes:
    """The straightforward definition: URL-safe alphabet only, unpadded, canonical."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", text) or len(text) % 4 == 1:
        raise ValueError("not URL-safe base64")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != text:
        raise ValueError("non-canonical")
    return raw


def _both(text: str) -> tuple[bytes | None, bytes | None]:
    results: list[bytes | None] = []
    for decode in (b64url_decode, _reference_b64decode):
        try:
            results.append(decode(text))
        except ValueError:
            results.append(None)
    return results[0], results[1]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "A",
        "AA",
        "AB",
        "AE",
        "AQ",
        "AAA",
        "AAB",
        "AAE",
        "AAAA",
        "AA==",
        "AA=",
        "A===",
        "AAAA=",
        "=AAA",
        "AA AA",
        "AA\nAA",
        "AA+A",
        "AA/A",
        "-_-_",
        "AAA\u00e9",
        "\u00e9AAA",
        "AA-A",
        "____",
        "AAAAAAA",
        "AAAAAA",
        "AAAAAB",
        "AAAAAQ",
        "AAA\x00",
    ],
)
def test_base64_decoding_is_exactly_canonical_base64url(text: str) -> None:
    mine, reference = _both(text)
    assert mine == reference


@given(st.binary(max_size=64))
def test_base64_round_trips(raw: bytes) -> None:
    text = b64url_encode(raw)
    assert text == base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    assert _both(text) == ((raw, raw) if raw else (None, None))  # empty text is refused


_B64_AND_JUNK = string.ascii_letters + string.digits + "-_+/= \n.\u00e9"


@given(st.text(alphabet=_B64_AND_JUNK, max_size=40))
def test_base64_decoding_agrees_with_the_definition(text: str) -> None:
    mine, reference = _both(text)
    assert mine == reference


@given(
    st.text(alphabet=_B64_AND_JUNK, min_size=20, max_size=24)
    | st.binary(min_size=16, max_size=16).map(b64url_encode)
)
def test_a_session_id_opens_exactly_when_it_is_16_bytes_of_canonical_base64url(
    text: str,
) -> None:
    _, raw = _both(text)
    doc = {"id": text, "k": "browser", "c": T0, "i": T0, "s": T0, "d": {}}
    record = unseal(_RING, _RING.encrypt(json.dumps(doc).encode(), NAME), NAME, POLICY)
    if raw is None or len(raw) != SID_BYTES:
        assert record is None
    else:
        assert record is not None and record.sid_text == text and record.sid == raw


def test_the_session_key_is_derived_from_the_id_when_first_read(ring: KeyRing) -> None:
    """SHA-256 of the id's bytes, sharded by user (or by the id when anonymous): the same key
    whether the record was just made, opened from a cookie, or changed with replace()."""
    record = make_record()
    sid = base64.urlsafe_b64decode(record.sid_text + "==")
    digest = hashlib.sha256(b"coatcheck-sealed-session\0" + sid).digest()
    opened = unseal(ring, seal(ring, record, NAME), NAME, POLICY)
    assert opened is not None and opened.sid == sid
    assert opened.key == record.key == SessionKey(unkeyed_user_shard("alice"), digest)
    assert opened.written({}, T0 + 60, T0 + 99).key == opened.key
    assert replace(opened, user_id=None).key == SessionKey(sid[:4], digest)
    assert record.summary()["id"] == public_id(record.key)


# --- the payload text ---------------------------------------------------------------------------


def _reference_payload(record: SealedRecord) -> str:
    """The payload as a dict through the JSON encoder (what seal wrote before it assembled it,
    but for the text of the times)."""
    doc: dict[str, Any] = {
        "id": record.sid_text,
        "k": record.kind,
        "c": record.created_at,
        "i": record.issued_at,
        "s": record.last_seen_at,
        "d": record.data,
    }
    optional = {
        "u": record.user_id,
        "a": record.authenticated_at,
        "ip": record.client_ip,
        "ua": record.user_agent,
        "r": 1 if record.remember else None,
    }
    doc.update({k: v for k, v in optional.items() if v is not None})
    return encode_data(doc)


_finite = st.floats(allow_nan=False, allow_infinity=False)
_times = st.sampled_from([T0, T0 + 0.5, 0.0, -0.0, 1, 0, 1e300]) | _finite
_texts = st.none() | st.text(max_size=20)


@settings(max_examples=300)
@given(
    created=_times,
    issued=_times,
    seen=_times,
    authenticated=st.none() | _times,
    user_id=_texts,
    client_ip=_texts,
    user_agent=_texts,
    data=st.dictionaries(
        st.text(max_size=5),
        st.none() | st.booleans() | st.integers() | _finite | st.text(max_size=9),
        max_size=4,
    ),
)
def test_the_payload_is_the_document_the_json_encoder_writes(
    created: float,
    issued: float,
    seen: float,
    authenticated: float | None,
    user_id: str | None,
    client_ip: str | None,
    user_agent: str | None,
    data: dict[str, Any],
) -> None:
    record = make_record(
        created_at=created,
        issued_at=issued,
        last_seen_at=seen,
        authenticated_at=authenticated,
        user_id=user_id,
        client_ip=client_ip,
        user_agent=user_agent,
        data=data,
    )
    doc = json.loads(payload_text(record, encode_data(record.data)))
    assert doc == json.loads(_reference_payload(record))
    assert list(doc) == list(json.loads(_reference_payload(record)))  # the same field order
    assert doc["d"] == data
    times = [
        (doc["c"], created),
        (doc["i"], issued),
        (doc["s"], seen),
        (doc.get("a"), authenticated),
    ]
    # Exactly the same numbers: 17 significant digits read back as the float they came from.
    assert all(float(text) == time for text, time in times if time is not None)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_a_time_that_is_not_a_json_number_cannot_be_sealed(ring: KeyRing, bad: Any) -> None:
    with pytest.raises((ValueError, TypeError)):
        seal(ring, make_record(created_at=bad), NAME)


def test_payloads_with_surrounding_whitespace_still_open(ring: KeyRing) -> None:
    text = ' \n{"id":"' + "A" * 22 + '","k":"api","c":1.5,"i":1.5,"s":2.5,"d":{"a":[1]}}\t '
    record = unseal(ring, ring.encrypt(text.encode(), NAME), NAME, POLICY)
    assert record is not None and record.kind == "api" and record.data == {"a": [1]}
    trailing = text.strip() + " junk"
    assert unseal(ring, ring.encrypt(trailing.encode(), NAME), NAME, POLICY) is None


# --- the opened-values cache ---------------------------------------------------------------


def test_a_cached_value_opens_to_the_same_record_without_decrypting(
    ring: KeyRing, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = OpenedValues()
    record = make_record()
    value = seal(ring, record, NAME, opened)
    assert len(opened) == 1  # the browser's next request presents what was just sealed

    def no_decrypt(*args: object) -> bytes:
        raise AssertionError("a cached value was decrypted again")

    monkeypatch.setattr(ring, "decrypt", no_decrypt)
    again = unseal(ring, value, NAME, POLICY, opened)
    assert again == record and again is not None and again.sid_text == record.sid_text


@pytest.mark.parametrize("filled_by", ["seal", "open"])
def test_each_opening_of_a_cached_value_gets_its_own_data(ring: KeyRing, filled_by: str) -> None:
    opened = OpenedValues()
    value = seal(ring, make_record(), NAME, opened if filled_by == "seal" else None)
    first = unseal(ring, value, NAME, POLICY, opened)
    assert first is not None and len(opened) == 1
    first.data["cart"].append(4)  # an application mutating a nested value in place
    first.data["new"] = 1
    second = unseal(ring, value, NAME, POLICY, opened)
    assert second is not None and second is not first
    assert second.data == make_record().data


def test_a_value_opened_once_is_cached_and_a_cache_hit_is_bound_to_the_cookie_name(
    ring: KeyRing,
) -> None:
    value = seal(ring, make_record(), NAME)  # sealed elsewhere: another process
    opened = OpenedValues()
    assert unseal(ring, value, NAME, POLICY, opened) is not None
    assert len(opened) == 1
    assert unseal(ring, value, "__Host-other", POLICY, opened) is None


def test_what_does_not_open_is_never_cached(ring: KeyRing) -> None:
    opened = OpenedValues()
    value = seal(ring, make_record(), NAME)
    raw = bytearray(raw_of(value))
    raw[-1] ^= 1
    for junk in (text_of(bytes(raw)), "junk", PREFIX, value + "A"):
        assert unseal(ring, junk, NAME, POLICY, opened) is None
    assert unseal(KeyRing([generate_key()]), value, NAME, POLICY, opened) is None
    # authentic, but not a payload this library writes
    assert unseal(ring, ring.encrypt(b'{"id": 1}', NAME), NAME, POLICY, opened) is None
    assert len(opened) == 0


def test_the_cache_keeps_at_most_its_size_oldest_out_first(ring: KeyRing) -> None:
    opened = OpenedValues(2)
    values = [seal(ring, make_record(), NAME, opened) for _ in range(3)]
    assert len(opened) == 2
    assert opened.get(values[0], NAME, POLICY) is None
    assert opened.get(values[2], NAME, POLICY) is not None
    none = OpenedValues(0)
    seal(ring, make_record(), NAME, none)
    assert len(none) == 0


@pytest.mark.parametrize("size", [-1, 1.5, "10", True])
def test_a_bad_cache_size_is_a_config_error(size: Any) -> None:
    with pytest.raises(ConfigError, match="cache size"):
        OpenedValues(size)


def test_the_cache_can_be_shared_between_threads(ring: KeyRing) -> None:
    opened = OpenedValues(16)
    values = [seal(ring, make_record(), NAME) for _ in range(64)]
    record = make_record()
    errors: list[BaseException] = []

    def hammer(offset: int) -> None:
        try:
            for i in range(2000):
                value = values[(i + offset) % len(values)]
                opened.put(value, NAME, record, encode_data(record.data))
                hit = opened.get(values[(i * 7 + offset) % len(values)], NAME, POLICY)
                assert hit is None or hit.data == record.data
        except BaseException as exc:  # reported below, with the thread's error
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(8)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show up
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
    assert len(opened) <= 16 + len(threads)  # a race costs at most one extra entry per thread
