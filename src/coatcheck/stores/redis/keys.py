"""Key layout of the Redis store, and the Redis Cluster hash slots it relies on.

Key layout (``{prefix}`` defaults to ``coatcheck:``)::

    {prefix}{<shard hex>}:s:<digest hex>    HASH    one session, TTL = expires_at + grace
    {prefix}{<user shard hex>}:u:<user id>  ZSET    a user's sessions: digest hex -> created_at
    {prefix}{<slot tag>}:p:<public id>      STRING  a session's key name, same TTL as the session
    {prefix}{<shard hex>}:t:<digest hex>    HASH    a revoked session's tombstone
    {prefix}token_key                       STRING  the store's own token key, no TTL
    {prefix}m:<marker name>                 STRING  a marker (stores/markers.py), TTL = its own

The ``{<shard hex>}`` part is a Redis Cluster hash tag. A logged-in session's shard is the
user's keyed shard (``TokenCodec.user_shard``, under the manager's token key), so every session
of a user and the user's index live in one slot: the per-user limit, rotation and "log out
everywhere" are single Lua scripts, atomic on a cluster too. Anonymous sessions have a random
shard and appear in no index.

A session's *public id* (what listings show, ``delete_by_public_id`` takes) begins with the
Redis Cluster slot of its keys; its ``:p:`` key is tagged with a tag in that same slot
(:func:`slot_tag`), named in the session's ``pk`` field, and written, extended and deleted by
the same scripts as the session, so it lives exactly as long.

A marker is one key, without a hash tag of its own (a ``{`` in its name may make one): every
marker command is a single-key command, valid on a cluster wherever the key lands.

Sessions of ``cc1_`` tokens (issued before token version 2) carry the unkeyed shard and are
listed in the user's *legacy index*, named by that shard (docs/stores/redis.md).
"""

from __future__ import annotations

import binascii
import math
from functools import lru_cache
from typing import Final

from ...core.records import CLUSTER_SLOTS as SLOTS
from ...core.tokens import SessionKey

_MASK: Final = SLOTS - 1
_WIDTH: Final = 8
_BASE: Final = b"0" * _WIDTH
SESSION: Final = ord("s")  # the record-type letter after "{prefix}{<8 hex>}:"


class KeyLayout:
    """Every key name under one prefix, and the parts of a session key name."""

    __slots__ = (
        "any_pattern",
        "index_pattern",
        "marker_pattern",
        "prefix",
        "prefix_len",
        "session_pattern",
        "token_key",
        "tomb_pattern",
    )

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.prefix_len = len(prefix.encode())
        self.token_key = prefix + "token_key"
        # SCAN patterns: exactly 8 shard hex digits, then the record type.
        glob = glob_escape(prefix)
        self.session_pattern = glob + "{????????}:s:*"
        self.index_pattern = glob + "{????????}:u:*"
        self.tomb_pattern = glob + "{????????}:t:*"
        self.any_pattern = glob + "{????????}:[sup]:*"
        self.marker_pattern = glob + "m:*"

    def session(self, key: SessionKey) -> str:
        return f"{self.prefix}{{{key.shard.hex()}}}:s:{key.digest.hex()}"

    def tombstone(self, key: SessionKey) -> str:
        return f"{self.prefix}{{{key.shard.hex()}}}:t:{key.digest.hex()}"

    def marker(self, name: str) -> str:
        return f"{self.prefix}m:{name}"

    def public(self, public_id: bytes) -> str:
        tag = slot_tag(int.from_bytes(public_id[:2], "big"))
        return f"{self.prefix}{{{tag}}}:p:{public_id.hex()}"

    def session_base(self, shard_hex: str) -> str:
        """A session key name without its digest: the members of an index are appended."""
        return f"{self.prefix}{{{shard_hex}}}:s:"

    def index_base(self, shard_hex: str) -> str:
        """An index key name without its user id."""
        return f"{self.prefix}{{{shard_hex}}}:u:"

    def shard_of(self, name: bytes) -> str:
        """The shard hex of a session, index or tombstone key name."""
        p = self.prefix_len
        return name[p + 1 : p + 9].decode()

    def digest_of(self, name: bytes) -> str:
        """The digest hex of a session key name (or the user id of an index key name)."""
        return name[self.prefix_len + 13 :].decode()

    def kind_of(self, name: bytes) -> int:
        """The record-type letter of a key name, as a byte (``SESSION`` for a session)."""
        return name[self.prefix_len + 11]

    def session_key(self, name: bytes) -> SessionKey:
        """The session a session key name names."""
        return SessionKey(bytes.fromhex(self.shard_of(name)), bytes.fromhex(self.digest_of(name)))


def same_slot(a: SessionKey, b: SessionKey) -> bool:
    """Do the keys of these two sessions live in one cluster hash slot?"""
    return a.shard == b.shard or _crc(a.shard.hex().encode()) == _crc(b.shard.hex().encode())


def ms(seconds: float) -> int:
    """PEXPIREAT's integer milliseconds, rounded up so the key outlives ``seconds``."""
    return math.ceil(seconds * 1000)


def glob_escape(text: str) -> str:
    """``text`` as a literal inside a SCAN MATCH pattern."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


# --- a hash tag for any slot ------------------------------------------------------------
#
# How the store files a key under a session's slot when all it knows is the slot number (the
# first two bytes of a public session id). Redis puts a key in slot ``CRC16(tag) mod 16384``,
# ``tag`` being the text between the first ``{`` and the next ``}``. CRC16 (XMODEM, initial
# value 0) is linear over GF(2) for inputs of one length: ``crc(a XOR b) == crc(a) XOR
# crc(b)``. So a tag of 8 characters ``0``-``3`` (two free bits each, all of them hex digits)
# can be solved for any slot by Gaussian elimination: no search, no table, the same tag in
# every process.


def _crc(data: bytes) -> int:
    return binascii.crc_hqx(data, 0) & _MASK


def _basis() -> dict[int, tuple[int, int]]:
    """Pivot bit -> (slot bits, the character bits whose flips give them)."""
    base = _crc(_BASE)
    basis: dict[int, tuple[int, int]] = {}
    for position in range(_WIDTH):
        for bit in (1, 2):
            flipped = bytearray(_BASE)
            flipped[position] ^= bit
            vector, choice = _crc(bytes(flipped)) ^ base, 1 << (2 * position + bit - 1)
            for pivot in sorted(basis, reverse=True):
                if vector >> pivot & 1:
                    vector ^= basis[pivot][0]
                    choice ^= basis[pivot][1]
            if vector:
                basis[vector.bit_length() - 1] = (vector, choice)
    if len(basis) != SLOTS.bit_length() - 1:  # pragma: no cover  # a property of CRC16
        raise AssertionError("the tag characters do not reach every slot")
    return basis


_BASIS: Final = _basis()
_BASE_SLOT: Final = _crc(_BASE)


@lru_cache(maxsize=SLOTS)
def slot_tag(slot: int) -> str:
    """Eight characters ``0``-``3`` whose CRC16 puts a key tagged with them in ``slot``."""
    if not 0 <= slot < SLOTS:
        raise ValueError(f"a Redis Cluster slot is 0 to {SLOTS - 1}, got {slot}")
    want, choice = slot ^ _BASE_SLOT, 0
    for pivot in sorted(_BASIS, reverse=True):
        if want >> pivot & 1:
            want ^= _BASIS[pivot][0]
            choice ^= _BASIS[pivot][1]
    tag = bytearray(_BASE)
    for position in range(_WIDTH):
        tag[position] ^= choice >> (2 * position) & 3
    return tag.decode("ascii")
