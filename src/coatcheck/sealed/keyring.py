"""The keys sealed cookies are encrypted with, and the envelope around a sealed value.

A sealed value is ``cs1.`` followed by unpadded URL-safe base64 of::

    key id (4 bytes) || nonce (12 random bytes) || AES-GCM ciphertext and tag (16 bytes)

* The key id is ``SHA-256("coatcheck-sealed-key-id\\0" + key)[:4]``: decryption goes straight
  to the right key instead of trying each one, and it reveals nothing about the key.
* The associated data is ``"cs1\\0" + cookie name``: a value cut from one cookie and pasted
  into another (another app on the same domain, a cookie of another name) fails to open, and
  so does a value relabelled with another format version.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..cookies import MAX_COOKIE_BYTES
from ..core.errors import ConfigError
from ..core.tokens import KEY_BYTES, MAKE_KEY_HINT, decode_token_key
from .b64 import b64url_decode, b64url_encode

VERSION = "cs1"
PREFIX = VERSION + "."
KEYS_ENV = "COATCHECK_SEALED_KEYS"
KEY_ID_BYTES = 4
NONCE_BYTES = 12
TAG_BYTES = 16

_NONCE_END = KEY_ID_BYTES + NONCE_BYTES
_MIN_RAW = _NONCE_END + TAG_BYTES
_MIN_TEXT = len(PREFIX) + -(-_MIN_RAW * 4 // 3)  # the prefix, then _MIN_RAW bytes in base64
_SEALED_TEXT = re.compile(re.escape(PREFIX) + "[A-Za-z0-9_-]+")


def generate_key() -> str:
    """A new random 256-bit key as unpadded URL-safe base64 (what the key ring accepts)."""
    return b64url_encode(secrets.token_bytes(KEY_BYTES))


def key_id(key: bytes) -> bytes:
    """The short, public name of a key inside sealed values."""
    return hashlib.sha256(b"coatcheck-sealed-key-id\0" + key).digest()[:KEY_ID_BYTES]


def parse_key(key: str | bytes, position: int = 1) -> bytes:
    """32 raw bytes from a base64url string (padded or not) or from raw bytes: the same rule
    as the token key's. Error messages name the key's position in the ring, never its
    content."""
    return decode_token_key(key, f"sealed cookie key #{position}")


class KeyRing:
    """The keys sealed cookies are encrypted with: the first encrypts, every one decrypts.

    Rotation: put a new key first and keep the old ones behind it until every cookie they
    sealed has passed its absolute lifetime, then drop them.
    """

    def __init__(self, keys: Iterable[str | bytes]) -> None:
        raws = [parse_key(k, i) for i, k in enumerate(keys, 1)]
        if not raws:
            raise ConfigError(f"a sealed cookie key ring needs at least one key; {MAKE_KEY_HINT}")
        self._by_id: dict[bytes, AESGCM] = {}
        for position, raw in enumerate(raws, 1):
            kid = key_id(raw)
            if kid in self._by_id:
                raise ConfigError(
                    f"sealed cookie key #{position} is listed twice (or shares its key id "
                    "with another key); remove the duplicate"
                )
            self._by_id[kid] = AESGCM(raw)
        self._primary_id = key_id(raws[0])
        self._primary = self._by_id[self._primary_id]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KeyRing:
        """The ring in ``COATCHECK_SEALED_KEYS``: comma-separated keys, the encrypting one first."""
        value = (os.environ if environ is None else environ).get(KEYS_ENV, "")
        if not value.strip():
            raise ConfigError(
                f"sealed cookie mode needs keys: set {KEYS_ENV} to one or more "
                f"comma-separated keys (the encrypting one first); {MAKE_KEY_HINT}"
            )
        return cls.of(value)

    @classmethod
    def of(cls, keys: KeyRing | str | bytes | Iterable[str | bytes] | None) -> KeyRing:
        """A ring from what configuration holds: a ring, a comma-separated string, one raw
        key, a list of keys, or None for ``COATCHECK_SEALED_KEYS``."""
        if isinstance(keys, KeyRing):
            return keys
        if keys is None:
            return cls.from_env()
        if isinstance(keys, str):
            return cls(k for k in (part.strip() for part in keys.split(",")) if k)
        if isinstance(keys, bytes | bytearray):
            return cls([bytes(keys)])
        return cls(keys)

    @property
    def primary_id(self) -> str:
        """Hex id of the encrypting key (safe to log: it says which key, not what key)."""
        return self._primary_id.hex()

    def __len__(self) -> int:
        return len(self._by_id)

    def __repr__(self) -> str:
        return f"<KeyRing {len(self)} key(s), encrypting with {self.primary_id}>"

    def encrypt(self, plaintext: bytes, name: str) -> str:
        """Seal ``plaintext`` for the cookie called ``name`` under the first key."""
        nonce = os.urandom(NONCE_BYTES)  # what secrets.token_bytes returns, minus a call
        sealed = self._primary.encrypt(nonce, plaintext, _associated(name))
        return PREFIX + b64url_encode(self._primary_id + nonce + sealed)

    def decrypt(self, value: object, name: str) -> bytes | None:
        """The plaintext of a value this ring sealed for ``name``, else None (never raises)."""
        if not isinstance(value, str) or len(value) > MAX_COOKIE_BYTES:
            return None
        if not value.startswith(PREFIX):
            return None
        try:
            raw = b64url_decode(value[len(PREFIX) :])
        except ValueError:
            return None
        if len(raw) < _MIN_RAW:
            return None
        aead = self._by_id.get(raw[:KEY_ID_BYTES])
        if aead is None:
            return None
        nonce, sealed = raw[KEY_ID_BYTES:_NONCE_END], raw[_NONCE_END:]
        try:
            return aead.decrypt(nonce, sealed, _associated(name))
        except InvalidTag:
            return None


def is_well_formed(value: object) -> bool:
    """True for a value shaped like a sealed cookie: prefix, base64url alphabet, long enough
    for a key id, nonce and tag, short enough for a cookie. Decrypts nothing: the web layer
    uses it to drop junk among several cookies of one name before choosing which to open."""
    return (
        isinstance(value, str)
        and _MIN_TEXT <= len(value) <= MAX_COOKIE_BYTES
        and _SEALED_TEXT.fullmatch(value) is not None
    )


@lru_cache(maxsize=16)  # the cookie names in use: usually one
def _associated(name: str) -> bytes:
    return VERSION.encode() + b"\0" + name.encode()
