"""A back-channel logout token's header and claims, checked once its signature is (OpenID
Connect Back-Channel Logout 1.0, 2.4 and 2.6): pure functions over the claims and the time.

The ``jti`` replay check needs a store and is the caller's: remember each ``jti`` for
:data:`LOGOUT_TOKEN_MAX_AGE` plus the leeway, since an older token is refused here anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwt import JWTClaimsRegistry

from .errors import InvalidLogoutToken
from .models import LogoutClaims, json_number

BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_MAX_AGE = 300.0
"""Seconds after its ``iat`` (plus the clock leeway) that a logout token is still accepted.
Providers send it at once and are asked to keep ``exp`` within two minutes; five minutes
leaves room for a retried delivery while bounding the ``jti`` replay cache."""
# Explicit typing (2.4): "logout+jwt"; providers that cannot type it say "JWT" or nothing.
# Any other type is another kind of token and is refused.
ACCEPTED_TYPES = frozenset({"logout+jwt", "application/logout+jwt", "jwt"})
MAX_ID_CHARS = 1024  # jti, sid and sub longer than this are refused


def check_logout_header(header: Mapping[str, Any]) -> None:
    typ = header.get("typ")
    if typ is not None and (not isinstance(typ, str) or typ.lower() not in ACCEPTED_TYPES):
        raise InvalidLogoutToken("the typ header is not logout+jwt")


def check_logout_claims(
    claims: Mapping[str, Any], *, issuer: str, client_id: str, now: float, leeway: float
) -> LogoutClaims:
    """The claims of a logout token: ``iss`` the issuer, ``aud`` containing the client,
    ``iat`` neither in the future nor older than :data:`LOGOUT_TOKEN_MAX_AGE` (both with
    ``leeway``), ``exp`` if present not past, a ``jti``, the back-channel logout event,
    ``sid`` and/or ``sub``, and no ``nonce``. :class:`InvalidLogoutToken` otherwise."""
    registry = JWTClaimsRegistry(
        now=int(now),
        leeway=int(leeway),
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": client_id},
        iat={"essential": True},
        jti={"essential": True},
    )
    try:
        registry.validate(dict(claims))
    except JoseError as exc:
        raise InvalidLogoutToken(exc.description or exc.error) from None
    iat = claims["iat"]
    if iat < now - LOGOUT_TOKEN_MAX_AGE - leeway:
        raise InvalidLogoutToken(f"issued more than {LOGOUT_TOKEN_MAX_AGE:g} seconds ago (iat)")
    if "nonce" in claims:
        raise InvalidLogoutToken("a logout token must not carry a nonce")
    events = claims.get("events")
    if not isinstance(events, dict) or BACKCHANNEL_LOGOUT_EVENT not in events:
        raise InvalidLogoutToken("the events claim lacks the back-channel logout event")
    if not isinstance(events[BACKCHANNEL_LOGOUT_EVENT], dict):
        raise InvalidLogoutToken("the back-channel logout event is not a JSON object")
    jti, sid, sub = claims["jti"], claims.get("sid"), claims.get("sub")
    for name, value in (("jti", jti), ("sid", sid), ("sub", sub)):
        if value is not None and (not isinstance(value, str) or not 0 < len(value) <= MAX_ID_CHARS):
            raise InvalidLogoutToken(f"the {name} claim is not a string of 1 to {MAX_ID_CHARS}")
    if sid is None and sub is None:
        raise InvalidLogoutToken("neither sid nor sub names whose session ended")
    return LogoutClaims(
        iss=issuer,
        sub=sub,
        sid=sid,
        jti=jti,
        iat=float(iat),
        exp=json_number(claims.get("exp")),
    )
