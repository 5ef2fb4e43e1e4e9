"""What an OpenID Connect login keeps in the server-side session, and the pure decisions over it.

Session data keys (JSON values, never in a cookie):

* ``coatcheck.oidc``: the provider's tokens and who the user is there (:func:`token_record`).
* ``coatcheck.oidc.lease``: the single-flight refresh lease, ``{"holder", "until"}``.
* ``coatcheck.oidc.pending.<state>``: a login under way, one key each: ``{"nonce",
  "verifier", "return_to", "prompt", "started"}`` (at most :data:`MAX_PENDING`). One key per
  login, not one dict of them all: two requests that start logins at once (tabs) save two
  keys, where one shared value would keep only the last writer's.
* ``coatcheck.oidc.logout``: the ``state`` of an RP-initiated logout, checked on return.

No I/O and no clock of its own: every function is given ``now``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..core.errors import CoatcheckError
from .models import Identity, TokenSet

OIDC_KEY = "coatcheck.oidc"
LEASE_KEY = "coatcheck.oidc.lease"
PENDING_KEY = "coatcheck.oidc.pending"
"""The prefix of the pending logins' keys (:func:`pending_key`)."""
LOGOUT_KEY = "coatcheck.oidc.logout"
KEYS = (OIDC_KEY, LEASE_KEY, PENDING_KEY, LOGOUT_KEY)

MAX_PENDING = 4
"""Logins one browser may have under way at once (several tabs); the oldest is dropped."""


# -- tokens -------------------------------------------------------------------------------------


def token_record(tokens: TokenSet, identity: Identity, now: float) -> dict[str, Any]:
    """The ``coatcheck.oidc`` value after a login: who the user is at the provider (with the ID
    token's ``aud`` and ``nonce``, which a refreshed ID token must repeat) and the tokens
    (``received_at``: when they came, on this server's clock)."""
    return {
        "iss": identity.iss,
        "sub": identity.sub,
        "sid": identity.sid,
        "auth_time": identity.auth_time,
        "acr": identity.acr,
        "amr": list(identity.amr),
        "aud": identity.claims.get("aud"),
        "nonce": identity.claims.get("nonce"),
        **_tokens(tokens, None, now),
    }


def refreshed_record(oidc: Mapping[str, Any], tokens: TokenSet, now: float) -> dict[str, Any]:
    """The ``coatcheck.oidc`` value after a refresh: the identity kept, the tokens replaced
    (a refresh token or ID token the answer lacks stays as it was)."""
    return {**oidc, **_tokens(tokens, oidc, now)}


def _tokens(tokens: TokenSet, old: Mapping[str, Any] | None, now: float) -> dict[str, Any]:
    before = old or {}
    return {
        "access_token": tokens.access_token,
        "token_type": tokens.token_type,
        "expires_at": tokens.expires_at,
        "refresh_token": tokens.refresh_token or before.get("refresh_token"),
        "id_token": tokens.id_token or before.get("id_token"),
        "scope": tokens.scope or before.get("scope"),
        "received_at": now,
    }


def identity_of(oidc: Mapping[str, Any]) -> Identity:
    """The identity a ``coatcheck.oidc`` value records (what a refreshed ID token must match)."""
    amr = oidc.get("amr")
    iss, sub = str(oidc.get("iss") or ""), str(oidc.get("sub") or "")
    return Identity(
        iss=iss,
        sub=sub,
        sid=oidc.get("sid") if isinstance(oidc.get("sid"), str) else None,
        auth_time=_number(oidc.get("auth_time")),
        acr=oidc.get("acr") if isinstance(oidc.get("acr"), str) else None,
        amr=tuple(m for m in amr if isinstance(m, str)) if isinstance(amr, list) else (),
        claims={
            "iss": iss,
            "sub": sub,
            **{name: oidc[name] for name in ("aud", "nonce") if oidc.get(name) is not None},
        },
    )


def needs_refresh(oidc: Mapping[str, Any] | None, skew: float, now: float) -> bool:
    """Has this access token expired, or will it within ``skew`` seconds?

    The skew is cut to half the token's lifetime (when the record knows when the token came,
    ``received_at``), so a provider whose tokens live shorter than the skew does not get a
    refresh on every request. A token without an expiry is never refreshed.
    """
    if not isinstance(oidc, Mapping):
        return False
    expires_at = _number(oidc.get("expires_at"))
    if expires_at is None:
        return False
    received_at = _number(oidc.get("received_at"))
    if received_at is not None and expires_at > received_at:
        skew = min(skew, (expires_at - received_at) / 2)
    return now >= expires_at - skew


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


# -- the refresh lease --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lease:
    """Who is refreshing this session's tokens, and until when (epoch seconds) unless renewed."""

    holder: str
    until: float

    def live(self, now: float) -> bool:
        """Still held: no one else may take it before ``until``."""
        return now < self.until

    def lapsed(self, now: float) -> bool:
        """Not renewed in time: another request may take it over."""
        return not self.live(now)

    def value(self) -> dict[str, Any]:
        """The JSON value kept under :data:`LEASE_KEY`."""
        return {"holder": self.holder, "until": self.until}


class RefreshWaitExpired(CoatcheckError):
    """Another request's refresh of this session did not finish in time (``refresh_wait``)."""


def new_lease(now: float, duration: float) -> Lease:
    """A lease for a new holder (128 random bits), valid ``duration`` seconds from ``now``."""
    return Lease(secrets.token_hex(16), now + duration)


def read_lease(data: Mapping[str, Any]) -> Lease | None:
    """The lease in a session's data, or None (absent, or not shaped like one: then anyone may
    take it, as a lapsed one)."""
    value = data.get(LEASE_KEY)
    if not isinstance(value, Mapping):
        return None
    holder, until = value.get("holder"), _number(value.get("until"))
    if not isinstance(holder, str) or until is None:
        return None
    return Lease(holder, until)


def holds(data: Mapping[str, Any], holder: str) -> bool:
    """Is ``holder`` the lease's holder in this data? (Compared in constant time.)"""
    lease = read_lease(data)
    return lease is not None and hmac.compare_digest(lease.holder, holder)


# -- logins under way ---------------------------------------------------------------------------


_PENDING_PREFIX = PENDING_KEY + "."


def pending_key(state: str) -> str:
    """The session key of the login under way with this ``state``."""
    return _PENDING_PREFIX + state


def pending_to_drop(data: Mapping[str, Any], now: float, timeout: float) -> list[str]:
    """The pending-login keys to delete before one more is added: expired or unreadable
    entries, then the oldest beyond :data:`MAX_PENDING` less one."""
    drop: list[str] = []
    live: list[tuple[float, str]] = []
    for key in list(data):
        if not key.startswith(_PENDING_PREFIX):
            continue
        entry = data[key]
        if not isinstance(entry, Mapping) or pending_expired(entry, now, timeout):
            drop.append(key)
        else:
            live.append((_number(entry.get("started")) or 0.0, key))
    live.sort()
    return drop + [key for _, key in live[: max(0, len(live) - (MAX_PENDING - 1))]]


def take_pending(
    data: Mapping[str, Any], presented: str | None
) -> tuple[str | None, dict[str, Any] | None]:
    """The session key and entry of the pending login whose state equals ``presented`` (every
    pending state compared in constant time); ``(None, None)`` when none matches, ``(key,
    None)`` when its entry is unreadable."""
    found = None
    if presented:
        wanted = presented.encode()
        for key in list(data):
            if key.startswith(_PENDING_PREFIX) and hmac.compare_digest(
                key[len(_PENDING_PREFIX) :].encode(), wanted
            ):
                found = key
    if found is None:
        return None, None
    entry = data[found]
    return found, (dict(entry) if isinstance(entry, Mapping) else None)


def pending_expired(entry: Mapping[str, Any], now: float, timeout: float) -> bool:
    """Started more than ``timeout`` seconds ago (or unreadable)."""
    started = _number(entry.get("started"))
    return started is None or now - started > timeout


# -- back-channel logout markers ----------------------------------------------------------------


def _digest(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def jti_marker(iss: str, jti: str) -> str:
    """The marker that remembers a logout token was used (replay cache)."""
    return f"oidc-jti:{_digest(iss, jti)}"


def sid_marker(iss: str, sid: str) -> str:
    """The marker that names the local user of a provider session."""
    return f"oidc-sid:{_digest(iss, sid)}"


def sub_marker(iss: str, sub: str) -> str:
    """The marker that names the local user of a provider subject."""
    return f"oidc-sub:{_digest(iss, sub)}"


def ended_marker(public_id: str) -> str:
    """The marker left for a session a back-channel logout ended, so that the browser's next
    request (its cookie now names no session) gets the "session ended" page, once."""
    return f"oidc-ended:{public_id}"


def logged_out_by(oidc: object, iss: str, sid: str | None, sub: str | None) -> bool:
    """Does a logout token for ``iss`` and ``sid`` (or, without a sid, ``sub``) end the session
    whose ``coatcheck.oidc`` value is ``oidc``? A token with both must match both."""
    if not isinstance(oidc, Mapping) or oidc.get("iss") != iss:
        return False
    if sub is not None and oidc.get("sub") != sub:
        return False
    if sid is not None:
        return oidc.get("sid") == sid
    return sub is not None
