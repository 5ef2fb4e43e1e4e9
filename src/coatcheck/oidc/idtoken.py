"""The claims of an ID token, checked once its signature is (OpenID Connect Core 1.0,
3.1.3.7 for a login, 12.2 for a refresh): pure functions over the claims and the time."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwt import JWTClaimsRegistry

from .errors import InvalidToken
from .models import Identity

_AT_HASH = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}


def check_login_claims(
    claims: Mapping[str, Any],
    *,
    issuer: str,
    client_id: str,
    nonce: str,
    now: float,
    leeway: float,
) -> Identity:
    """The identity of a login's ID token: ``iss`` is the issuer, ``aud`` contains the client
    (with ``azp`` when there are others), ``exp`` and ``iat`` hold with ``leeway``, ``sub`` is
    there and ``nonce`` is the one this login sent. :class:`InvalidToken` otherwise."""
    _check_standard(claims, issuer=issuer, client_id=client_id, now=now, leeway=leeway)
    given = claims.get("nonce")
    if not isinstance(given, str):
        raise InvalidToken("the nonce claim is missing")
    if not hmac.compare_digest(given.encode(), nonce.encode()):
        raise InvalidToken("the nonce claim is not the one this login sent")
    return Identity.from_claims(claims)


def check_refreshed_claims(
    claims: Mapping[str, Any],
    *,
    original: Identity,
    client_id: str,
    now: float,
    leeway: float,
) -> Identity:
    """The identity of an ID token from a refresh: the same ``iss``, ``sub`` and ``aud`` as
    the login's, ``azp`` the client, fresh ``exp``/``iat``; a ``nonce`` or ``auth_time``, if
    present, those of the login. Claims the new token leaves out (``sid``, ``auth_time``,
    ``acr``, ``amr``) stay those of the login."""
    _check_standard(claims, issuer=original.iss, client_id=client_id, now=now, leeway=leeway)
    if claims["sub"] != original.sub:
        raise InvalidToken("the refreshed ID token names another subject (sub)")
    if _audiences(claims.get("aud")) != _audiences(original.claims.get("aud", client_id)):
        raise InvalidToken("the refreshed ID token has another audience (aud)")
    nonce = claims.get("nonce")
    if nonce is not None and nonce != original.claims.get("nonce"):
        raise InvalidToken("the refreshed ID token has another nonce")
    auth_time = claims.get("auth_time")
    if auth_time is not None and original.auth_time is not None and auth_time != original.auth_time:
        raise InvalidToken("the refreshed ID token has another auth_time")
    new = Identity.from_claims(claims)
    return Identity(
        iss=new.iss,
        sub=new.sub,
        sid=new.sid or original.sid,
        auth_time=new.auth_time if new.auth_time is not None else original.auth_time,
        acr=new.acr if new.acr is not None else original.acr,
        amr=new.amr or original.amr,
        claims=new.claims,
    )


def check_reauthenticated(identity: Identity, *, since: float, leeway: float) -> None:
    """After ``prompt=login`` with ``max_age=0`` (Core 1.0, 3.1.2.1; 3.1.3.7, step 11): the ID
    token says when the user authenticated (``auth_time``, required once ``max_age`` is
    asked for), and that is after the login started. A provider that skipped asking for the
    credentials is caught here, not trusted as a fresh re-authentication."""
    if identity.auth_time is None:
        raise InvalidToken("the auth_time claim is missing (max_age asked for it)")
    if identity.auth_time < since - leeway:
        raise InvalidToken("the provider did not authenticate the user again (auth_time)")


def check_access_token_hash(claims: Mapping[str, Any], alg: str, access_token: str) -> None:
    """``at_hash``, when the ID token has one and the algorithm names its hash: the left half
    of the hash of the access token (Core 1.0, 3.1.3.8), so the two came together."""
    at_hash = claims.get("at_hash")
    digest = _AT_HASH.get(alg[-3:]) if alg[:2] in ("RS", "PS", "ES") else None
    if at_hash is None or digest is None:
        return
    full = digest(access_token.encode()).digest()
    expected = base64.urlsafe_b64encode(full[: len(full) // 2]).rstrip(b"=")
    if not isinstance(at_hash, str) or not hmac.compare_digest(at_hash.encode(), expected):
        raise InvalidToken("at_hash does not match the access token")


def _check_standard(
    claims: Mapping[str, Any], *, issuer: str, client_id: str, now: float, leeway: float
) -> None:
    registry = JWTClaimsRegistry(
        now=int(now),
        leeway=int(leeway),
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": client_id},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
    )
    try:
        registry.validate(dict(claims))
    except JoseError as exc:
        raise InvalidToken(exc.description or exc.error) from None
    if not isinstance(claims["sub"], str) or not claims["sub"]:
        raise InvalidToken("the sub claim is not a non-empty string")
    audiences = _audiences(claims["aud"])
    azp = claims.get("azp")
    if azp is not None and azp != client_id:
        raise InvalidToken("the azp claim names another client")
    if len(audiences) > 1 and azp is None:
        raise InvalidToken("several audiences (aud) and no azp claim naming this client")


def _audiences(aud: object) -> frozenset[str]:
    if isinstance(aud, str):
        return frozenset({aud})
    if isinstance(aud, list):
        return frozenset(a for a in aud if isinstance(a, str))
    return frozenset()
