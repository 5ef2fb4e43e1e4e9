"""The sealed cookie format: a session record as JSON, encrypted and authenticated with
AES-256-GCM under a key ring. Pure: no store, no HTTP, no clock.

The parts, each in its module: the key ring and the envelope of a value
(:mod:`~coatcheck.sealed.keyring`), the record (:mod:`~coatcheck.sealed.record`), its JSON
payload (:mod:`~coatcheck.sealed.payload`), the cache of recently opened values
(:mod:`~coatcheck.sealed.opened`) and canonical base64url (:mod:`~coatcheck.sealed.b64`).
This module seals and opens with them, and names what the rest of coatcheck uses.

Anything that is not a value this key ring sealed for this cookie name -- junk, truncation, a
flipped bit, a dropped key, the wrong name -- opens as ``None``; nothing here raises on input.
"""

from __future__ import annotations

from ..core.policy import Policy
from ..core.records import encode_data
from .keyring import (
    KEY_ID_BYTES,
    KEYS_ENV,
    NONCE_BYTES,
    PREFIX,
    TAG_BYTES,
    VERSION,
    KeyRing,
    generate_key,
    is_well_formed,
    key_id,
    parse_key,
)
from .opened import OPENED_CACHE_SIZE, OpenedValues
from .payload import decode_payload, payload_text, record_from_payload
from .record import SID_BYTES, USER_AGENT_CHARS, SealedRecord, new_sid, sealed_key

__all__ = [
    "KEYS_ENV",
    "KEY_ID_BYTES",
    "NONCE_BYTES",
    "OPENED_CACHE_SIZE",
    "PREFIX",
    "SID_BYTES",
    "TAG_BYTES",
    "USER_AGENT_CHARS",
    "VERSION",
    "KeyRing",
    "OpenedValues",
    "SealedRecord",
    "generate_key",
    "is_well_formed",
    "key_id",
    "new_sid",
    "parse_key",
    "seal",
    "sealed_key",
    "unseal",
]


def seal(ring: KeyRing, record: SealedRecord, name: str, opened: OpenedValues | None = None) -> str:
    """The cookie value carrying ``record`` (remembered in ``opened``: the browser's next
    request presents it)."""
    data = encode_data(record.data)
    value = ring.encrypt(payload_text(record, data).encode(), name)
    if opened is not None:
        opened.put(value, name, record, data)
    return value


def unseal(
    ring: KeyRing,
    value: object,
    name: str,
    policy: Policy,
    opened: OpenedValues | None = None,
) -> SealedRecord | None:
    """The record a cookie value carries, or None for anything this ring did not seal
    (``opened``: sessions this ring gave out or opened lately, to skip decrypting)."""
    if opened is not None and type(value) is str:
        record = opened.get(value, name, policy)
        if record is not None:
            return record
    plaintext = ring.decrypt(value, name)
    if plaintext is None:
        return None
    try:
        record = record_from_payload(decode_payload(plaintext.decode()), policy)
    # UnicodeDecodeError is a ValueError; OverflowError: an integer time too large for a float
    except (ValueError, TypeError, KeyError, OverflowError, RecursionError):
        return None
    if opened is not None and isinstance(value, str):  # before the request changes the data
        opened.put(value, name, record, encode_data(record.data))
    return record
