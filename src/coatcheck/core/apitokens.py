"""API tokens as pure data: their text format, their metadata and their rules (no I/O).

Format: ``cc_`` + 48 URL-safe base64 characters (36 bytes: the masked user shard exactly as in
``cc2_`` session tokens, then 32 random bytes) + 6 base62 characters of CRC32 over everything
before them. The checksum lets a secret scanner, or the service, tell a real token from a typo or
from garbage without a store call; it is no secret and adds no security (the 256 random bits
do). The store keys a token's record by SHA-256 of the whole token text, so a ``cc2_`` token can
never name an API token's record, nor the other way round.

An API token is a session record of kind ``api`` whose data holds its metadata under
:data:`API_TOKEN_KEY`; the store's ``expires_at`` is the token's own expiry, or
:data:`NO_EXPIRY_HORIZON` seconds after creation for a token without one.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from .errors import CoatcheckError

if TYPE_CHECKING:  # imported by tokens.py, below records.py
    from .records import SessionRecord

API_TOKEN_PREFIX: Final = "cc_"  # noqa: S105  # a prefix
API_TOKEN_KEY: Final = "coatcheck.api_token"  # noqa: S105  # the reserved data key
BODY_CHARS: Final = 48  # base64 of 36 bytes (4 masked shard + 32 random), no padding
CHECKSUM_CHARS: Final = 6  # base62 of a CRC32 (62**6 > 2**32)
API_TOKEN_LENGTH: Final = len(API_TOKEN_PREFIX) + BODY_CHARS + CHECKSUM_CHARS
NO_EXPIRY_HORIZON: Final = 100 * 365.25 * 24 * 3600  # the stored expiry of "never expires"
MAX_SCOPES: Final = 32
MAX_NAME_CHARS: Final = 100
BASE62: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

_API_TOKEN_RE: Final = re.compile(
    rf"cc_[A-Za-z0-9_-]{{{BODY_CHARS}}}[0-9A-Za-z]{{{CHECKSUM_CHARS}}}"
)
_SCOPE_RE: Final = re.compile(r"[a-z0-9:._-]{1,64}")


class ApiTokenError(CoatcheckError, ValueError):
    """An API token request is malformed (name, scopes, expiry); the message says which."""


def checksum(text: str) -> str:
    """The 6 base62 characters of CRC32 over ``text`` (what ends every API token)."""
    value = zlib.crc32(text.encode("ascii"))
    digits = []
    for _ in range(CHECKSUM_CHARS):
        value, digit = divmod(value, 62)
        digits.append(BASE62[digit])
    return "".join(reversed(digits))


def looks_like_api_token(value: object) -> bool:
    """Prefix, length, alphabet and checksum: True for what coatcheck could have issued as an
    API token. No store call, no key needed (a secret scanner can run the same check)."""
    if not isinstance(value, str) or len(value) != API_TOKEN_LENGTH:
        return False
    if _API_TOKEN_RE.fullmatch(value) is None:
        return False
    head = value[:-CHECKSUM_CHARS]
    return checksum(head) == value[-CHECKSUM_CHARS:]


def body_of(token: str) -> str:
    """The base64 body of a well-formed API token (between prefix and checksum)."""
    return token[len(API_TOKEN_PREFIX) : -CHECKSUM_CHARS]


def check_name(name: object) -> str:
    """A token's name: 1..100 printable characters, or :class:`ApiTokenError`."""
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME_CHARS or not name.isprintable():
        raise ApiTokenError(
            f"an API token's name must be 1 to {MAX_NAME_CHARS} printable characters"
        )
    return name


def check_scopes(scopes: Iterable[object]) -> tuple[str, ...]:
    """Scope names ``[a-z0-9:._-]{1,64}``, at most 32, duplicates dropped (order kept)."""
    if isinstance(scopes, str):
        raise ApiTokenError("scopes must be a list of scope names, not one string")
    found: list[str] = []
    for scope in scopes:
        if not isinstance(scope, str) or _SCOPE_RE.fullmatch(scope) is None:
            shown = repr(scope) if isinstance(scope, str) and len(scope) <= 80 else "a value"
            raise ApiTokenError(
                f"{shown} is not a scope name: 1 to 64 of a-z, 0-9 and the characters : . _ -"
            )
        if scope not in found:
            found.append(scope)
    if len(found) > MAX_SCOPES:
        raise ApiTokenError(f"an API token has at most {MAX_SCOPES} scopes, got {len(found)}")
    return tuple(found)


def check_expires_in(expires_in: object) -> float | None:
    """Seconds until expiry: None (never) or a positive finite number below the horizon."""
    if expires_in is None:
        return None
    if isinstance(expires_in, bool) or not isinstance(expires_in, int | float):
        raise ApiTokenError("expires_in must be a number of seconds or None")
    if not 0 < expires_in < NO_EXPIRY_HORIZON:
        raise ApiTokenError(
            f"expires_in must be positive and below {int(NO_EXPIRY_HORIZON)} seconds "
            "(100 years), or None for no expiry"
        )
    return float(expires_in)


def metadata(name: str, scopes: tuple[str, ...], expires_at: float | None) -> dict[str, Any]:
    """What the record's data holds under :data:`API_TOKEN_KEY`."""
    return {"name": name, "scopes": list(scopes), "expires_at": expires_at}


def stored_expiry(created_at: float, expires_at: float | None) -> float:
    """The record's ``expires_at`` in the store: the token's expiry, else the far horizon
    (every store takes it: SQL float columns, Redis millisecond expiry times)."""
    return expires_at if expires_at is not None else created_at + NO_EXPIRY_HORIZON


def is_api_token(record: SessionRecord) -> bool:
    """True for a record that is an API token (kind ``api`` with the token metadata), so
    session listings can leave tokens out."""
    return record.kind == "api" and isinstance(record.data.get(API_TOKEN_KEY), dict)


@dataclass(frozen=True, slots=True)
class ApiTokenInfo:
    """What may be shown about an API token: never the token itself.

    ``id`` is the record's public id (16 hex digits), what listings show and revocation takes.
    ``last_used_at`` is None until the token was first used; it is written at most once per
    touch interval, so it is accurate to that interval.
    """

    id: str
    user_id: str
    name: str
    scopes: tuple[str, ...]
    created_at: float
    expires_at: float | None
    last_used_at: float | None

    @classmethod
    def from_record(cls, record: SessionRecord) -> ApiTokenInfo:
        """The info of an API token's record (:func:`is_api_token` must be true for it)."""
        meta = record.data[API_TOKEN_KEY]
        expires = meta.get("expires_at")
        return cls(
            id=record.public_id,
            user_id=str(record.user_id),
            name=str(meta.get("name", "")),
            scopes=tuple(str(s) for s in meta.get("scopes", ())),
            created_at=record.created_at,
            expires_at=None if expires is None else float(expires),
            last_used_at=record.last_seen_at if record.version > 1 else None,
        )

    def has_scopes(self, wanted: Iterable[str]) -> bool:
        """Does this token carry every scope in ``wanted``?"""
        return all(scope in self.scopes for scope in wanted)

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def summary(self) -> dict[str, Any]:
        """A JSON-ready view (the ``GET /v1/users/{user_id}/tokens`` items)."""
        return {
            "id": self.id,
            "user_id": self.user_id,
            "name": self.name,
            "scopes": list(self.scopes),
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "last_used_at": self.last_used_at,
        }
