"""Plain data that crosses the line between the policy and the stores."""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from math import isfinite
from typing import Any, Final, Literal

from .errors import InvalidSessionId, SessionDataError
from .tokens import SessionKey, sha256

Kind = Literal["browser", "api"]
SQL_COLUMNS = (
    "id, shard, user_id, kind, created_at, last_seen_at, authenticated_at, expires_at, "
    "client_ip, user_agent, data, version, remember"
)
SQL_FACT_COLUMNS = SQL_COLUMNS.replace(" data,", " '{}',")
"""``SQL_COLUMNS`` with an empty object read in place of ``data`` (``load(data=False)``)."""
KINDS: tuple[Kind, ...] = ("browser", "api")

CLUSTER_SLOTS: Final = 16384
PUBLIC_ID_BYTES: Final = 8
_PUBLIC_LABEL: Final = b"coatcheck-public\0"
_PUBLIC_ID_RE: Final = re.compile(r"[0-9a-f]{16}")


def cluster_slot(shard: bytes) -> int:
    """The Redis Cluster hash slot of every key of a session with this shard: CRC16 (XMODEM,
    Redis's) of its hash tag, the shard in lower-case hex, modulo 16384."""
    return binascii.crc_hqx(shard.hex().encode("ascii"), 0) % CLUSTER_SLOTS


def public_id_bytes(key: SessionKey) -> bytes:
    """The session's public id as 8 bytes: the Redis Cluster slot of its keys (2 bytes, so that
    a cluster finds the record in one slot), then SHA-256 of a label and the store key's digest,
    cut to 6 bytes. Neither the token nor the store key can be derived from it."""
    return cluster_slot(key.shard).to_bytes(2, "big") + sha256(_PUBLIC_LABEL + key.digest)[:6]


def public_id(key: SessionKey) -> str:
    """The id that listings show and ``revoke_session`` accepts: 16 lower-case hex digits."""
    return public_id_bytes(key).hex()


def parse_public_id(value: object) -> bytes:
    """The 8 bytes of a public session id given as text, or :class:`InvalidSessionId`.

    Upper-case hex digits and surrounding white space are accepted; anything else is refused
    before any store call.
    """
    text = value.strip().lower() if isinstance(value, str) else None
    if text is None or _PUBLIC_ID_RE.fullmatch(text) is None:
        shown = repr(value) if isinstance(value, str) and len(value) <= 40 else "the value given"
        raise InvalidSessionId(
            f"{shown} is not a session id: a session id is the 16 hex digits that session "
            "listings show in their id column"
        )
    raw = bytes.fromhex(text)
    if int.from_bytes(raw[:2], "big") >= CLUSTER_SLOTS:
        raise InvalidSessionId(f"{text!r} is not a session id coatcheck could have issued")
    return raw


@dataclass(slots=True)
class SessionRecord:
    """One server-side session as a store holds it. Times are float seconds since the epoch."""

    key: SessionKey
    user_id: str | None
    kind: Kind
    created_at: float
    last_seen_at: float
    authenticated_at: float | None
    expires_at: float
    client_ip: str | None = None
    user_agent: str | None = None
    # Not in the repr: session data may hold secrets (an OpenID Provider's tokens).
    data: dict[str, Any] = field(default_factory=dict, repr=False)
    version: int = 1
    remember: bool = False  # logged in with "remember me": the policy's remember limits apply

    def with_data(self, data: dict[str, Any]) -> SessionRecord:
        """A copy holding ``data`` (a plain constructor call: ``dataclasses.replace`` costs
        several microseconds on this per-request path)."""
        return SessionRecord(
            self.key,
            self.user_id,
            self.kind,
            self.created_at,
            self.last_seen_at,
            self.authenticated_at,
            self.expires_at,
            self.client_ip,
            self.user_agent,
            data,
            self.version,
            self.remember,
        )

    def row(self) -> tuple[Any, ...]:
        """The record in SQL column order (``SQL_COLUMNS``), data as one JSON document."""
        return (
            self.key.digest,
            self.key.shard,
            self.user_id,
            self.kind,
            self.created_at,
            self.last_seen_at,
            self.authenticated_at,
            self.expires_at,
            self.client_ip,
            self.user_agent,
            encode_data(self.data),
            self.version,
            self.remember,
        )

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> SessionRecord:
        """The inverse of :meth:`row`: a SQL row (``SQL_COLUMNS`` order, data as JSON text)."""
        digest, shard, user_id, kind, created, seen, auth, expires, ip, ua, data, version, rem = row
        return cls(
            SessionKey(bytes(shard), bytes(digest)),
            user_id,
            kind,
            created,
            seen,
            auth,
            expires,
            ip,
            ua,
            json.loads(data),
            version,
            bool(rem),
        )

    @property
    def public_id(self) -> str:
        """The id listings show and ``revoke_session`` accepts (see :func:`public_id`)."""
        return public_id(self.key)

    def summary(self) -> dict[str, Any]:
        """A JSON-ready view for operators: everything but the data values. ``id`` is the
        public session id (never a part of the token or of the store key)."""
        return {
            "id": self.public_id,
            "user_id": self.user_id,
            "kind": self.kind,
            "created_at": self.created_at,
            "last_seen_at": self.last_seen_at,
            "authenticated_at": self.authenticated_at,
            "expires_at": self.expires_at,
            "client_ip": self.client_ip,
            "user_agent": self.user_agent,
            "data_keys": sorted(self.data),
            "version": self.version,
            "remember": self.remember,
        }


@dataclass(slots=True)
class Patch:
    """What one request changed: keys set (to JSON text) and keys deleted. Not to be changed
    once made (not ``frozen``: one is built on every write, and a frozen dataclass's constructor
    costs a ``object.__setattr__`` call per field).

    Stores apply a patch atomically against the *current* record, so two requests that change
    different keys both keep their change. When both change the same key, the later save wins.
    """

    set: dict[str, str] = field(default_factory=dict)
    delete: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.set or self.delete)

    def apply_to(self, data: dict[str, Any]) -> dict[str, Any]:
        """The data after this patch (used by stores that merge in Python inside a transaction)."""
        merged = dict(data)
        self.apply_in_place(merged)
        return merged

    def apply_in_place(self, data: dict[str, Any]) -> None:
        """Apply this patch to ``data`` itself (a record loaded for one request alone)."""
        for name in self.delete:
            data.pop(name, None)
        for name, text in self.set.items():
            data[name] = decode_value(text)


@dataclass(frozen=True, slots=True)
class UserLimit:
    """At most ``max_sessions`` browser sessions per user: evict the oldest, or refuse."""

    max_sessions: int
    refuse: bool = False


RevokeReason = Literal["logout", "revoked_by_user", "revoked_by_admin", "limit_eviction"]
REVOKE_REASONS: tuple[RevokeReason, ...] = (
    "logout",
    "revoked_by_user",
    "revoked_by_admin",
    "limit_eviction",
)


@dataclass(frozen=True, slots=True)
class Revocation:
    """Why and when a session is being ended on purpose: what a store writes into its
    tombstone, in the same atomic step as the delete, and only if the session still exists."""

    reason: RevokeReason
    at: float


@dataclass(frozen=True, slots=True)
class Tombstone:
    """What is left of a revoked session until its natural expiry (its record's ``expires_at``
    when it was revoked): why and when it ended. Never a session again: nothing reads a
    tombstone on the way to a session, and no write looks at one."""

    reason: str
    revoked_at: float
    expires_at: float


# Made once: json.dumps with any keyword argument builds a new encoder on every call, which
# costs more than encoding a typical session value. No circular-reference markers: a value
# that contains itself ends in RecursionError, which encode_value reports.
_ENCODER: Final = json.JSONEncoder(
    allow_nan=False, separators=(",", ":"), ensure_ascii=False, check_circular=False
)
_encode_with_encoder: Final = _ENCODER.encode
_int_text: Final = int.__repr__
_float_text: Final = float.__repr__


def encode_json(value: Any) -> str:
    """JSON text of one value, as the stores keep it: compact, UTF-8 unescaped, no NaN.

    ``_ENCODER.encode(value)``, with the text of a plain number, boolean or None written
    directly: the encoder sets up its C encoder again on every call, which costs more than
    such a value's text. Exactly the encoder's output (``int`` and finite ``float`` are their
    ``repr``); everything else, NaN and the infinities included, goes to the encoder."""
    kind = type(value)
    if kind is str:
        return _encode_with_encoder(value)  # its own short path for a string
    if kind is int:
        return _int_text(value)
    if kind is float and isfinite(value):
        return _float_text(value)
    if kind is bool:
        return "true" if value else "false"
    if value is None:
        return "null"
    return _encode_with_encoder(value)


def encode_value(key: str, value: Any) -> str:
    """JSON text of one session value, or :class:`SessionDataError` naming the key."""
    if not isinstance(key, str):
        raise SessionDataError(f"session keys must be str, got {type(key).__name__}: {key!r}")
    try:
        return encode_json(value)
    except RecursionError as exc:
        raise SessionDataError(
            f"session value for key {key!r} cannot be stored as JSON: it contains itself or "
            "is nested too deeply"
        ) from exc
    except (TypeError, ValueError) as exc:
        raise SessionDataError(
            f"session value for key {key!r} cannot be stored as JSON "
            f"({type(value).__name__}): {exc}"
        ) from exc


def json_reader(decoder: json.JSONDecoder) -> Callable[[str], Any]:
    """``decoder.decode`` for one bare JSON text, through the documented ``raw_decode``.

    ``decode`` adds two whitespace regex matches around the parse, which cost several times
    the parse of a short value, and a session has a value per key. Anything ``raw_decode``
    does not consume whole (e.g. surrounding whitespace) goes to ``decode``, which accepts it
    or says why.
    """
    raw_decode = decoder.raw_decode

    def read(text: str) -> Any:
        try:
            value, end = raw_decode(text)
        except json.JSONDecodeError:
            end = -1
        if end != len(text):
            value = decoder.decode(text)
        return value

    return read


decode_value: Final = json_reader(json.JSONDecoder())
"""One session value from its JSON text (the inverse of :func:`encode_value`)."""


def encode_data(data: dict[str, Any]) -> str:
    """JSON text of a whole data mapping (stores that keep one document per session)."""
    return _encode_with_encoder(data)
