"""Canonical unpadded URL-safe base64, the alphabet of sealed values and session ids.

Canonical: one text per byte string. A text with stray bits in its last character, padding,
or characters of the standard alphabet (``+``, ``/``) is refused, so that a sealed value or a
session id has exactly one spelling.
"""

from __future__ import annotations

import binascii

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

_PADDING = ("", "", "==", "=")  # by len(text) % 4; 1 is never valid
# The last character of a text whose length is 2 or 3 (mod 4) carries 4 or 2 unused low bits,
# which a canonical encoding leaves at zero: the characters that may end such a text.
CANONICAL_LAST: tuple[frozenset[str], ...] = (
    frozenset(),
    frozenset(),
    frozenset(ALPHABET[::16]),
    frozenset(ALPHABET[::4]),
)


def b64url_encode(raw: bytes) -> str:
    """Unpadded URL-safe base64 (binascii directly: the base64 module adds two calls; two
    replaces, which skip ahead to each rare "+" or "/", cost half a translate)."""
    return (
        binascii.b2a_base64(raw)  # newline=False would cost more to parse than the rstrip
        .replace(b"+", b"-")
        .replace(b"/", b"_")
        .rstrip(b"=\n")
        .decode("ascii")
    )


def b64url_decode(text: str) -> bytes:
    """Canonical unpadded URL-safe base64 (one text per byte string); ValueError otherwise.

    binascii's strict mode refuses any character outside the standard alphabet, so ``+``,
    ``/`` and ``=`` (not base64url; ``=`` would be padding) become ``!`` before ``-`` and
    ``_`` become theirs (each replace skips ahead to the rare character it changes: cheaper
    than a translate); the set lookup refuses stray bits in the last character.
    """
    tail = len(text) % 4
    if not text or tail == 1 or not text.isascii():
        raise ValueError("not URL-safe base64")
    standard = (
        text.replace("+", "!")
        .replace("/", "!")
        .replace("=", "!")
        .replace("-", "+")
        .replace("_", "/")
    )
    try:
        raw = binascii.a2b_base64(standard + _PADDING[tail], strict_mode=True)
    except binascii.Error:
        raise ValueError("not URL-safe base64") from None
    if tail and text[-1] not in CANONICAL_LAST[tail]:
        raise ValueError("non-canonical base64 (stray bits in the last character)")
    return raw
