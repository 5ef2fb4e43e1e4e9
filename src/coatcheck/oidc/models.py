"""What the provider's answers become once validated: plain frozen values that the session
side stores and compares, with no HTTP and no JOSE left in them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Identity:
    """Who logged in, from a validated ID token. ``claims`` holds every claim of that token."""

    iss: str
    sub: str
    sid: str | None
    auth_time: float | None
    acr: str | None
    amr: tuple[str, ...]
    claims: Mapping[str, Any]

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> Identity:
        """The identity of validated ID-token claims (``iss`` and ``sub`` already checked)."""
        sid, acr, auth_time = claims.get("sid"), claims.get("acr"), claims.get("auth_time")
        amr = claims.get("amr")
        return cls(
            iss=str(claims["iss"]),
            sub=str(claims["sub"]),
            sid=sid if isinstance(sid, str) and sid else None,
            auth_time=json_number(auth_time),
            acr=acr if isinstance(acr, str) else None,
            amr=tuple(m for m in amr if isinstance(m, str)) if isinstance(amr, list) else (),
            claims=dict(claims),
        )


@dataclass(frozen=True, slots=True)
class TokenSet:
    """A token endpoint's answer. ``expires_at`` is epoch seconds (None: the provider gave no
    ``expires_in``); ``identity`` is None when no ID token came (possible on refresh).
    The tokens are secrets: they are left out of the ``repr``."""

    access_token: str = field(repr=False)
    token_type: str
    expires_at: float | None
    refresh_token: str | None = field(repr=False)
    id_token: str | None = field(repr=False)
    scope: str | None
    identity: Identity | None


@dataclass(frozen=True, slots=True)
class LogoutClaims:
    """A validated back-channel logout token: whose session ended (``sid`` and/or ``sub``)
    and the ``jti`` the caller must check against its replay cache."""

    iss: str
    sub: str | None
    sid: str | None
    jti: str
    iat: float
    exp: float | None


def json_number(value: object) -> float | None:
    """A JSON number as float; None for anything else (booleans included)."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
