"""Session tokens: what the browser holds, and the key the store is allowed to see.

Format (version 2): ``cc2_`` followed by 48 URL-safe base64 characters encoding 36 bytes:
a 4-byte *masked shard* and 32 random bytes (256 bits from :mod:`secrets`).

* The store never sees the token: records are keyed by ``SHA-256(token)``. A leaked table of
  digests cannot be replayed as cookies, and a lookup by digest leaks nothing useful through
  index timing, because an attacker cannot choose digests that are close to a live one.
* The shard lets Redis Cluster keep every key of one user in one hash slot, so per-user limits
  and "log out everywhere" stay atomic. An anonymous session gets a random shard; a logged-in
  session gets ``HMAC-SHA256(token_key, "coatcheck-shard\\0" + user_id)[:4]``: without the
  token key nobody can confirm a guessed user id from it.
* The token carries the shard masked: ``shard XOR HMAC-SHA256(token_key, "coatcheck-mask\\0" +
  random)[:4]``. Two tokens of one user share no visible bytes (unlinkable), and the server
  recovers the shard with one HMAC. The shard adds no entropy: the 32 random bytes do that.

Version 1 (``cc1_``) carried the unkeyed ``SHA-256("coatcheck-shard\\0" + user_id)[:4]`` in the
clear. Such tokens still parse (shard as written) until they expire; new tokens are always
version 2. The token key is resolved per manager (docs/security.md, "The token key"); a
:class:`TokenCodec` holds it, with its own memory of recently parsed tokens.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Final, NamedTuple, Protocol

from .apitokens import API_TOKEN_PREFIX, body_of, checksum, looks_like_api_token
from .errors import ConfigError, InvalidToken

PREFIX: Final = "cc2_"  # what every new token starts with
V1_PREFIX: Final = "cc1_"  # tokens issued before version 2: still accepted until they expire
SHARD_BYTES: Final = 4
SECRET_BYTES: Final = 32
KEY_BYTES: Final = 32
TOKEN_KEY_ENV: Final = "COATCHECK_TOKEN_KEY"  # noqa: S105  # a variable name
PARSED_CACHE_SIZE: Final = 1024
_BODY_CHARS = 48  # base64 of 36 bytes, no padding needed
TOKEN_LENGTH: Final = len(PREFIX) + _BODY_CHARS
_TOKEN_RE = re.compile(rf"cc[12]_[A-Za-z0-9_-]{{{_BODY_CHARS}}}")
_KEY_RE = re.compile(r"[A-Za-z0-9_-]{43}=?")
_TO_STANDARD_B64 = bytes.maketrans(b"-_", b"+/")
_V1 = ord("1")  # the version digit of a cc1_ token, as a byte
_SHARD_LABEL = b"coatcheck-shard\0"
_MASK_LABEL = b"coatcheck-mask\0"
MAKE_KEY_HINT: Final = (
    'make one with: python -c "import base64, secrets; '
    "print(base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b'=').decode())\""
)


def sha256(data: bytes) -> bytes:
    """The SHA-256 digest of ``data`` (token digests, sealed keys)."""
    return hashlib.sha256(data).digest()


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


_new_key = tuple.__new__  # SessionKey(shard, digest) without the generated __new__'s frame


# --- the token key -----------------------------------------------------------------------


def new_token_key() -> bytes:
    """A fresh random token key (what a store generates for itself on first use)."""
    return secrets.token_bytes(KEY_BYTES)


def stored_token_key(value: bytes | None, where: str, hint: str) -> bytes:
    """A token key read back from a store, checked: any other length means the slot holds
    something that is not ours, and using it would route tokens to the wrong shards."""
    key = bytes(value) if value is not None else b""
    if len(key) != KEY_BYTES:
        raise ConfigError(
            f"{where} holds {len(key)} bytes, not a {KEY_BYTES}-byte token key; {hint}"
        )
    return key


def decode_token_key(value: str | bytes, source: str = "token_key") -> bytes:
    """32 raw bytes from raw bytes or URL-safe base64 (padded or not). Messages name the
    ``source`` (an argument or a variable), never the value: it is a secret."""
    if isinstance(value, bytes | bytearray):
        raw = bytes(value)
    elif isinstance(value, str):
        text = value.strip()
        if not _KEY_RE.fullmatch(text):
            raise ConfigError(
                f"{source} must be {KEY_BYTES} bytes as URL-safe base64 (43 characters), got "
                f"{min(len(text), 9999)} characters; {MAKE_KEY_HINT}"
            )
        raw = base64.urlsafe_b64decode(text.rstrip("=") + "=")
        if base64.urlsafe_b64encode(raw).decode().rstrip("=") != text.rstrip("="):
            raise ConfigError(f"{source} is not canonical URL-safe base64; {MAKE_KEY_HINT}")
    else:
        raise ConfigError(f"{source} must be str or bytes, got {type(value).__name__}")
    if len(raw) != KEY_BYTES:
        raise ConfigError(f"{source} is {len(raw)} bytes, must be {KEY_BYTES}; {MAKE_KEY_HINT}")
    return raw


def configured_token_key(
    explicit: str | bytes | None = None, environ: Mapping[str, str] | None = None
) -> bytes | None:
    """The token key configuration gives: ``explicit``, else ``COATCHECK_TOKEN_KEY``, else None
    (then the store's own key is used: every process on one store agrees with no setting)."""
    if explicit is not None:
        return decode_token_key(explicit)
    value = (os.environ if environ is None else environ).get(TOKEN_KEY_ENV)
    if value is None or not value.strip():
        return None
    return decode_token_key(value, TOKEN_KEY_ENV)


# --- tokens ------------------------------------------------------------------------------


class TokenCodec:
    """Mints and parses tokens under one token key; one per manager (and its store).

    It remembers the keys of the last ``PARSED_CACHE_SIZE`` well-formed tokens it parsed: a
    browser presents the same cookie on every request until it gets a new one, and a
    remembered parse costs a dictionary look-up instead of a regex match, base64, one HMAC
    and one SHA-256. Only well-formed tokens are remembered; see docs/security.md for what
    that keeps in memory.
    """

    __slots__ = ("_key", "_parse_sized")

    def __init__(self, key: bytes, *, remember: int = PARSED_CACHE_SIZE) -> None:
        self._key = decode_token_key(key)
        self._parse_sized = _parser(self._key, remember)

    def __repr__(self) -> str:
        return "<TokenCodec>"  # never the key

    def same_key(self, other: TokenCodec) -> bool:
        """Do both codecs mint and read tokens alike?"""
        return hmac.compare_digest(self._key, other._key)

    def user_shard(self, user_id: str) -> bytes:
        """The shard shared by every session of one user (Redis Cluster co-location); keyed,
        so it cannot be confirmed from a guessed user id without the token key."""
        return hmac.digest(self._key, _SHARD_LABEL + user_id.encode(), "sha256")[:SHARD_BYTES]

    def new_token(self, user_id: str | None = None) -> tuple[str, SessionKey]:
        """A fresh version-2 token and its store key. Anonymous sessions get a random shard."""
        shard = (
            self.user_shard(user_id) if user_id is not None else secrets.token_bytes(SHARD_BYTES)
        )
        random = secrets.token_bytes(SECRET_BYTES)
        body = _xor(shard, _mask(self._key, random)) + random
        token = PREFIX + base64.urlsafe_b64encode(body).decode("ascii")
        return token, SessionKey(shard, sha256(token.encode("ascii")))

    def parse(self, token: object) -> SessionKey:
        """The store key of a presented token (``cc2_``, or ``cc1_`` until those expire), or
        :class:`InvalidToken` without touching any store.

        Checks type, prefix, exact length and alphabet before decoding, so empty, huge, binary
        or foreign values are refused in constant work.
        """
        if isinstance(token, str) and len(token) == TOKEN_LENGTH:
            return self._parse_sized(token)
        raise InvalidToken(_why_malformed(token))

    def new_api_token(self, user_id: str) -> tuple[str, SessionKey]:
        """A fresh API token (``cc_``, see :mod:`coatcheck.core.apitokens`) and its store key:
        the user's shard masked exactly as in ``cc2_``, the digest over the whole token text."""
        shard = self.user_shard(user_id)
        random = secrets.token_bytes(SECRET_BYTES)
        body = _xor(shard, _mask(self._key, random)) + random
        head = API_TOKEN_PREFIX + base64.urlsafe_b64encode(body).decode("ascii")
        token = head + checksum(head)
        return token, SessionKey(shard, sha256(token.encode("ascii")))

    def parse_api_token(self, token: object) -> SessionKey:
        """The store key of a presented API token, or :class:`InvalidToken` (prefix, length,
        alphabet or checksum wrong) without touching any store."""
        if not looks_like_api_token(token):
            raise InvalidToken("not an API token: wrong prefix, length, characters or checksum")
        assert isinstance(token, str)
        raw = token.encode("ascii")
        body = binascii.a2b_base64(body_of(token).encode("ascii").translate(_TO_STANDARD_B64))
        shard = _xor(body[:SHARD_BYTES], _mask(self._key, body[SHARD_BYTES:]))
        return SessionKey(shard, sha256(raw))

    def forget(self) -> None:
        """Drop the remembered parses (benchmarks measure a token this process has not seen)."""
        self._parse_sized.cache_clear()

    def remembered(self) -> int:
        """How many parsed tokens are remembered now."""
        return int(self._parse_sized.cache_info().currsize)


class _Parser(Protocol):
    """What :func:`_parser` returns (an ``lru_cache`` wrapper)."""

    def __call__(self, token: str) -> SessionKey: ...

    def cache_clear(self) -> None: ...

    def cache_info(self) -> Any: ...


def _parser(key: bytes, remember: int) -> _Parser:
    """:meth:`TokenCodec.parse` for a string of the right length, remembering its results (an
    ``InvalidToken`` raised here is not remembered: ``lru_cache`` keeps only results). A
    closure over the key rather than a method, so the cache holds no reference to the codec."""

    @lru_cache(maxsize=remember)
    def parse_sized(token: str) -> SessionKey:
        if _TOKEN_RE.fullmatch(token) is None:
            raise InvalidToken(_why_malformed(token))
        raw = token.encode("ascii")
        body = binascii.a2b_base64(raw[len(PREFIX) :].translate(_TO_STANDARD_B64))
        head = body[:SHARD_BYTES]
        shard = head if raw[2] == _V1 else _xor(head, _mask(key, body[SHARD_BYTES:]))
        return _new_key(SessionKey, (shard, sha256(raw)))

    return parse_sized


def _mask(key: bytes, random: bytes) -> bytes:
    return hmac.digest(key, _MASK_LABEL + random, "sha256")


def _xor(shard: bytes, mask: bytes) -> bytes:
    size = SHARD_BYTES
    return (int.from_bytes(shard[:size]) ^ int.from_bytes(mask[:size])).to_bytes(size)


def unkeyed_user_shard(user_id: str) -> bytes:
    """``SHA-256("coatcheck-shard\\0" + user_id)[:4]``: the shard ``cc1_`` tokens carried in the
    clear. The Redis store still finds those sessions through the user index named by it until
    they expire; sealed-mode revocation records (never sent to a browser) keep it as their
    routing shard, so the ones written before version 2 are still found."""
    return sha256(_SHARD_LABEL + user_id.encode())[:SHARD_BYTES]


def is_well_formed(token: object) -> bool:
    """True for a value shaped like a coatcheck token: prefix, length, alphabet (no hashing)."""
    return (
        isinstance(token, str)
        and len(token) == TOKEN_LENGTH
        and _TOKEN_RE.fullmatch(token) is not None
    )


def token_digest(token: object) -> bytes:
    """The digest a store keys a token's record by (no token key needed), or
    :class:`InvalidToken` for a value coatcheck could not have issued."""
    if not is_well_formed(token):
        raise InvalidToken(_why_malformed(token))
    assert isinstance(token, str)
    return sha256(token.encode("ascii"))


def _why_malformed(token: object) -> str:
    """What is wrong with a value :func:`is_well_formed` refused (for the error message)."""
    if not isinstance(token, str):
        return "token must be a string"
    if len(token) != TOKEN_LENGTH:
        return f"token must be {TOKEN_LENGTH} characters, got {min(len(token), 9999)}"
    if not token.startswith((PREFIX, V1_PREFIX)):
        return f"token must start with {PREFIX!r} (or {V1_PREFIX!r}, issued before version 2)"
    return "token has characters outside the URL-safe base64 alphabet"


def digests_equal(a: bytes, b: bytes) -> bool:
    """Constant-time comparison for digests held outside an index (memory store, sealed data)."""
    return hmac.compare_digest(a, b)


def log_id(key: SessionKey, log_key: bytes) -> str:
    """A keyed, truncated hash of the store key for log lines: correlatable, never replayable."""
    return hmac.new(log_key, key.digest, hashlib.sha256).hexdigest()[:16]
