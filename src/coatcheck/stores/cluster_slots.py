"""A Redis Cluster hash tag for any slot: how the Redis store files a key under a session's slot
when all it knows is the slot number (the first two bytes of a public session id).

Redis puts a key in slot ``CRC16(tag) mod 16384``, ``tag`` being the text between the first
``{`` and the next ``}``. CRC16 (XMODEM, initial value 0) is linear over GF(2) for inputs of one
length: ``crc(a XOR b) == crc(a) XOR crc(b)``. So a tag of 8 characters ``0``-``3`` (two free
bits each, all of them hex digits) can be solved for any slot by Gaussian elimination: no search,
no table, the same tag in every process.
"""

from __future__ import annotations

import binascii
from functools import lru_cache
from typing import Final

from ..core.records import CLUSTER_SLOTS as SLOTS

_MASK: Final = SLOTS - 1
_WIDTH: Final = 8
_BASE: Final = b"0" * _WIDTH


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
