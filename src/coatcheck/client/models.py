"""The session service's JSON answers as small frozen dataclasses.

Each ``from_json`` reads the fields the API promises (docs/service.md) and ignores the rest, so
a newer service that adds fields keeps older clients working. A field of the wrong type raises
``ValueError`` (the client turns it into a :class:`~coatcheck.client.errors.ServiceError`).
A token a call returns is kept out of ``repr``, so logging a result never leaks it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..core.apitokens import ApiTokenInfo

TokenType = Literal["session", "api_token"]
TOKEN_TYPES: tuple[TokenType, ...] = ("session", "api_token")  # a type name, not a secret


def _get(body: Mapping[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    value = body.get(name)
    if not isinstance(value, kinds) or (type(value) is bool and bool not in kinds):
        raise ValueError(
            f"field {name!r} is missing or not " + " or ".join(k.__name__ for k in kinds)
        )
    return value


def _text(body: Mapping[str, Any], name: str) -> str:
    value: str = _get(body, name, str)
    return value


def _opt_text(body: Mapping[str, Any], name: str) -> str | None:
    value: str | None = _get(body, name, (str, type(None)))
    return value


def _time(body: Mapping[str, Any], name: str) -> float:
    return float(_get(body, name, (int, float)))


def _opt_time(body: Mapping[str, Any], name: str) -> float | None:
    value = _get(body, name, (int, float, type(None)))
    return None if value is None else float(value)


def _scopes(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return tuple(value)
    raise ValueError("field 'scopes' is not a list of strings")


@dataclass(frozen=True, slots=True)
class Introspection:
    """What the service says about a token (RFC 7662's shape).

    An inactive token (unknown, expired, revoked, malformed) has ``active`` False and every
    other field None: the service reveals nothing more, and neither does this.
    ``scopes`` and ``name`` are set for API tokens only.
    """

    active: bool
    token_type: TokenType | None = None
    id: str | None = None
    user_id: str | None = None
    kind: str | None = None
    scopes: tuple[str, ...] | None = None
    name: str | None = None
    created_at: float | None = None
    expires_at: float | None = None
    authenticated_at: float | None = None
    last_seen_at: float | None = None

    @property
    def is_session(self) -> bool:
        """An active session token (what a cookie must hold)."""
        return self.active and self.token_type == TOKEN_TYPES[0]

    @property
    def is_api_token(self) -> bool:
        """An active API token (what a bearer header must hold)."""
        return self.active and self.token_type == TOKEN_TYPES[1]

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Introspection:
        if _get(body, "active", bool) is False:
            return INACTIVE
        kind = _text(body, "token_type")
        token_type = next((t for t in TOKEN_TYPES if t == kind), None)
        if token_type is None:
            raise ValueError(f"token_type {kind!r} is neither 'session' nor 'api_token'")
        is_api = token_type == TOKEN_TYPES[1]
        return cls(
            active=True,
            token_type=token_type,
            id=_text(body, "id"),
            user_id=_text(body, "user_id"),
            kind=_text(body, "kind"),
            scopes=_scopes(body.get("scope", "")) if is_api else None,
            name=_opt_text(body, "name") if is_api else None,
            created_at=_time(body, "created_at"),
            expires_at=_opt_time(body, "expires_at"),
            authenticated_at=_opt_time(body, "authenticated_at"),
            last_seen_at=_opt_time(body, "last_seen_at"),
        )


INACTIVE = Introspection(active=False)


@dataclass(frozen=True, slots=True)
class CreatedSession:
    """A session the service just created; ``token`` is shown this once (never in ``repr``)."""

    token: str = field(repr=False)
    id: str
    user_id: str
    kind: str
    created_at: float
    expires_at: float
    absolute_expires_at: float

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> CreatedSession:
        return cls(
            token=_text(body, "token"),
            id=_text(body, "id"),
            user_id=_text(body, "user_id"),
            kind=_text(body, "kind"),
            created_at=_time(body, "created_at"),
            expires_at=_time(body, "expires_at"),
            absolute_expires_at=_time(body, "absolute_expires_at"),
        )


@dataclass(frozen=True, slots=True)
class Refreshed:
    """The answer to a refresh ("check session"): the new expiry, or ``active`` False."""

    active: bool
    id: str | None = None
    expires_at: float | None = None
    absolute_expires_at: float | None = None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Refreshed:
        if _get(body, "active", bool) is False:
            return cls(active=False)
        return cls(
            active=True,
            id=_text(body, "id"),
            expires_at=_time(body, "expires_at"),
            absolute_expires_at=_time(body, "absolute_expires_at"),
        )


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One entry of a user's session listing (API tokens are listed apart)."""

    id: str
    kind: str
    created_at: float
    last_seen_at: float
    authenticated_at: float | None
    expires_at: float
    client_ip: str | None
    user_agent: str | None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> SessionInfo:
        return cls(
            id=_text(body, "id"),
            kind=_text(body, "kind"),
            created_at=_time(body, "created_at"),
            last_seen_at=_time(body, "last_seen_at"),
            authenticated_at=_opt_time(body, "authenticated_at"),
            expires_at=_time(body, "expires_at"),
            client_ip=_opt_text(body, "client_ip"),
            user_agent=_opt_text(body, "user_agent"),
        )


def token_info(body: Mapping[str, Any]) -> ApiTokenInfo:
    """An API token's metadata (never the token itself), as the library's own listings give
    it (:class:`~coatcheck.core.apitokens.ApiTokenInfo`)."""
    return ApiTokenInfo(
        id=_text(body, "id"),
        user_id=_text(body, "user_id"),
        name=_text(body, "name"),
        scopes=_scopes(body.get("scopes")),
        created_at=_time(body, "created_at"),
        expires_at=_opt_time(body, "expires_at"),
        last_used_at=_opt_time(body, "last_used_at"),
    )


@dataclass(frozen=True, slots=True)
class CreatedToken:
    """An API token the service just created; ``token`` is shown this once (never in ``repr``)."""

    token: str = field(repr=False)
    info: ApiTokenInfo

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> CreatedToken:
        return cls(token=_text(body, "token"), info=token_info(body))


def listed(body: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    """The list of objects under ``name`` (``sessions``, ``tokens``)."""
    items = body.get(name)
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ValueError(f"field {name!r} is not a list of objects")
    return items
