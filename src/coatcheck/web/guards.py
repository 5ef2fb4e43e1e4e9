"""Who may pass: the decisions behind every framework's login-required guard.

Pure functions over the request and session facts, so Flask, Django and Starlette guards behave
the same: a browser (HTML ``Accept``) is sent with a 303 to the login page, carrying the page it
wanted as ``next``; an API client gets a 401 JSON body with a reason. An expired session is told
apart from no session at all, so the login page can say "your session has expired".

A request authenticated by an API token (``Authorization: Bearer``, no session cookie) is
answered as an API client always is, in RFC 6750's terms: a refused token is a 401 with
``WWW-Authenticate: Bearer error="invalid_token"``, a missing scope a 403 with
``error="insufficient_scope"``. Scopes restrict tokens only: a cookie session passes them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from ..core.apitokens import ApiTokenError, check_scopes
from ..core.errors import ConfigError
from .errors import WebError, insufficient_scope, invalid_bearer_token
from .request import RequestInfo
from .settings import WebSettings

EXPIRED_REASONS = frozenset({"expired_idle", "expired_absolute", "ip_mismatch"})


@dataclass(frozen=True, slots=True)
class Redirect:
    """Send the browser elsewhere (303 See Other, so a POST becomes a GET)."""

    location: str
    status: int = 303


Decision = Redirect | WebError | None


def safe_next(target: str | None, default: str = "/") -> str:
    """``target`` if it is a same-origin path, else ``default`` (no open redirects).

    Refuses absolute URLs, scheme-relative ``//host``, backslash tricks (``/\\host``), and
    control characters browsers would strip.
    """
    if not target or not isinstance(target, str):
        return default
    if any(ord(c) < 0x20 or c == "\x7f" for c in target):
        return default
    if not target.startswith("/") or target.startswith(("//", "/\\")) or "\\" in target:
        return default
    return target


def login_url(settings: WebSettings, request: RequestInfo, reason: str | None) -> str:
    query = {"next": safe_next(request.path_with_query)}
    if reason:
        query["reason"] = reason
    return f"{settings.login_url}?{urlencode(query, safe='/', quote_via=quote)}"


def bearer_token(request: RequestInfo) -> str | None:
    """The token of an ``Authorization: Bearer`` header (scheme in any case), else None."""
    header = request.header("authorization")
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def required_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Scope names a guard asks for, checked once when the guard is made (ConfigError)."""
    try:
        return check_scopes(scopes)
    except ApiTokenError as exc:
        raise ConfigError(f"guard scopes: {exc}") from exc


def require_login(
    request: RequestInfo,
    settings: WebSettings,
    *,
    user_id: str | None,
    expired_reason: str | None,
    authenticated_at: float | None = None,
    max_age: float | None = None,
    now: float | None = None,
    scopes: Collection[str] = (),
    granted: Collection[str] | None = None,
    bearer_refused: bool = False,
) -> Decision:
    """None to let the request through, else the redirect or error that stops it.

    With ``max_age`` (seconds) the login must also be recent: a sensitive action after a long
    session asks for the password again (reason ``reauthenticate``). ``scopes``: what a
    bearer session (whose token ``granted`` these scopes; None for a cookie session) must
    carry. ``bearer_refused``: the request's bearer token was not accepted.
    """
    if user_id is None and bearer_refused:
        return invalid_bearer_token()
    if user_id is not None and granted is not None and any(s not in granted for s in scopes):
        return insufficient_scope(tuple(scopes))
    if user_id is not None:
        if max_age is None:
            return None
        if authenticated_at is not None and now is not None and now - authenticated_at <= max_age:
            return None
        reason = "reauthenticate"
        message = "This action needs a recent login; please log in again."
    elif expired_reason in EXPIRED_REASONS:
        reason = "session_expired"
        message = "Your session has expired; please log in again."
    else:
        reason = "login_required"
        message = "Please log in to continue."
    if request.wants_html and request.method.upper() in ("GET", "HEAD", "POST"):
        return Redirect(login_url(settings, request, reason))
    return WebError(401, reason, message, [("www-authenticate", 'Cookie realm="coatcheck"')])
