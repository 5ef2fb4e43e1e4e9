"""Session tokens: what the browser holds, and the key the store is allowed to see.

Format (version 1): ``cc1_`` followed by 48 URL-safe base64 characters encoding 36 bytes:
a 4-byte *shard* and 32 random bytes (256 bits from :mod:`secrets`).

* The store never sees the token: records are keyed by ``SHA-256(token)``. A leaked table of
  digests cannot be replayed as cookies, and a lookup by digest leaks nothing useful through
  index timing, because an attacker cannot choose digests that are close to a live one.
* The shard lets Redis Cluster keep every key of one user in one hash slot, so per-user limits
  and "log out everywhere" stay atomic. An anonymous session gets a random shard; a logged-in
  session gets ``SHA-256("coatcheck-shard\\0" + user_id)[:4]``. The shard is not secret and
  carries no entropy the token relies on: the 32 random bytes do that.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import importlib
import re
import secrets
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Final, NamedTuple, cast

from .errors import InvalidToken

PREFIX = "cc1_"
SHARD_BYTES = 4
SECRET_BYTES = 32
_BODY_CHARS = 48  # base64 of 36 bytes, no padding needed
TOKEN_LENGTH = len(PREFIX) + _BODY_CHARS
_TOKEN_RE = re.compile(PREFIX + rf"[A-Za-z0-9_-]{{{_BODY_CHARS}}}")
_TO_STANDARD_B64 = bytes.maketrans(b"-_", b"+/")
_SHARD_CHARS = slice(len(PREFIX), len(PREFIX) + 8)  # 8 base64 characters hold the 4-byte shard


def _builtin_sha256() -> Callable[[bytes], Any]:
    """CPython's own SHA-256 (``_sha2``; ``_sha256`` before 3.12), else hashlib's (OpenSSL).

    The same digest. Every request hashes its token once, and OpenSSL's per-call set-up
    (context, provider look-up) costs more than hashing 52 bytes: measured about 1.5 µs
    per request inside a web request here (docs/performance.md). Builds without the
    built-in module (some FIPS builds) use hashlib.
    """
    for module in ("_sha2", "_sha256"):
        try:
            return cast("Callable[[bytes], Any]", importlib.import_module(module).sha256)
        except (ImportError, AttributeError):
            continue
    return hashlib.sha256  # pragma: no cover  # depends on how Python was built


_sha256: Final = _builtin_sha256()


def sha256(data: bytes) -> bytes:
    """The SHA-256 digest of ``data``, through the cheaper of the two implementations (above):
    for the hashes taken on every request (token digests, user shards, sealed keys)."""
    digest: bytes = _sha256(data).digest()
    return digest


class SessionKey(NamedTuple):
    """What a store may know about a token: its routing shard and its SHA-256 digest.

    A named tuple: immutable like a frozen dataclass, and built by a C call on the per-request
    path (a frozen dataclass costs an ``object.__setattr__`` per field).
    """

    shard: bytes
    digest: bytes

    @property
    def hex(self) -> str:
        return self.digest.hex()


def user_shard(user_id: str) -> bytes:
    """The shard shared by every session of one user (Redis Cluster co-location)."""
    return sha256(b"coatcheck-shard\0" + user_id.encode())[:SHARD_BYTES]


def new_token(user_id: str | None = None) -> tuple[str, SessionKey]:
    """A fresh token and its store key. Anonymous sessions get a random shard."""
    shard = user_shard(user_id) if user_id is not None else secrets.token_bytes(SHARD_BYTES)
    raw = shard + secrets.token_bytes(SECRET_BYTES)
    token = PREFIX + base64.urlsafe_b64encode(raw).decode("ascii")
    return token, SessionKey(shard, _digest(token))


def is_well_formed(token: object) -> bool:
    """True for a value shaped like a coatcheck token: prefix, length, alphabet (no hashing)."""
    return (
        isinstance(token, str)
        and len(token) == TOKEN_LENGTH
        and _TOKEN_RE.fullmatch(token) is not None
    )


_new_key = tuple.__new__  # SessionKey(shard, digest) without the generated __new__'s frame


PARSED_CACHE_SIZE: Final = 1024


def parse_token(token: object) -> SessionKey:
    """The store key of a presented token, or :class:`InvalidToken` without touching any store.

    Checks type, prefix, exact length and alphabet before decoding, so empty, huge, binary or
    foreign values are refused in constant work. A well-formed token takes one regex match,
    one SHA-256 and the decoding of its first 8 characters, and the last
    ``PARSED_CACHE_SIZE`` keys are remembered per process: a browser presents the same cookie
    on every request until it gets a new one, and inside a web request these steps cost about
    2.5 µs (each runs cold), a remembered key about 0.2. Only well-formed tokens are
    remembered; see docs/security.md for what that keeps in memory.
    """
    if isinstance(token, str) and len(token) == TOKEN_LENGTH:
        return _parse_sized(token)
    raise InvalidToken(_why_malformed(token))


@lru_cache(maxsize=PARSED_CACHE_SIZE)
def _parse_sized(token: str) -> SessionKey:
    """:func:`parse_token` for a string of the right length (an ``InvalidToken`` raised here is
    not remembered: ``lru_cache`` keeps only results)."""
    if _TOKEN_RE.fullmatch(token) is None:
        raise InvalidToken(_why_malformed(token))
    raw = token.encode("ascii")
    shard = binascii.a2b_base64(raw[_SHARD_CHARS].translate(_TO_STANDARD_B64))
    return _new_key(SessionKey, (shard[:SHARD_BYTES], sha256(raw)))


def _why_malformed(token: object) -> str:
    """What is wrong with a value :func:`is_well_formed` refused (for the error message)."""
    if not isinstance(token, str):
        return "token must be a string"
    if len(token) != TOKEN_LENGTH:
        return f"token must be {TOKEN_LENGTH} characters, got {min(len(token), 9999)}"
    if not token.startswith(PREFIX):
        return f"token must start with {PREFIX!r}"
    return "token has characters outside the URL-safe base64 alphabet"


def _digest(token: str) -> bytes:
    return sha256(token.encode("ascii"))


def digests_equal(a: bytes, b: bytes) -> bool:
    """Constant-time comparison for digests held outside an index (memory store, sealed data)."""
    return hmac.compare_digest(a, b)


def log_id(key: SessionKey, log_key: bytes) -> str:
    """A keyed, truncated hash of the store key for log lines: correlatable, never replayable."""
    return hmac.new(log_key, key.digest, hashlib.sha256).hexdigest()[:16]
