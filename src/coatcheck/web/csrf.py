"""Cross-site request forgery defences for cookie-authenticated requests.

Two layers, both on by default for unsafe methods (POST, PUT, PATCH, DELETE, ...):

1. **Origin.** ``Sec-Fetch-Site`` (sent by every current browser) must be ``same-origin`` or
   ``none``; otherwise ``Origin`` (or, failing that, ``Referer``) must be this site's origin or a
   configured trusted origin. A request with none of the three headers is not from a browser
   that could be tricked, and passes this layer.
2. **Synchronizer token.** A per-session random token (``csrf_token()`` in templates) must come
   back in the form field ``csrf_token`` or the ``X-CSRF-Token`` header, compared in constant
   time.

Requests that carry no session cookie skip the token layer (there is no session to ride on)
but not the origin layer, which also stops cross-site login forms (login CSRF). A request with
``Authorization: Bearer`` and no session cookie skips both: a page on another site cannot add
that header without the CORS preflight this site would refuse, and without the cookie no
session rides along. With a session cookie, a bearer header changes nothing: the session still
comes from the cookie, so the request is checked like any other cookie request.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from .request import RequestInfo
from .settings import SAFE_METHODS, WebSettings

SESSION_KEY = "_csrf"
FORM_FIELD = "csrf_token"
HEADER = "x-csrf-token"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def needs_origin_check(request: RequestInfo, settings: WebSettings, has_cookie: bool) -> bool:
    """True for unsafe requests: their origin must be this site or a trusted one.

    Applied with or without a session cookie, so a cross-site page cannot post a login form
    either (login CSRF): the origin check needs no session and no store call. Only a request
    authenticated by ``Authorization: Bearer`` alone (``has_cookie`` False: no value of the
    session cookie's name came along) is exempt.
    """
    if not settings.csrf or request.method.upper() in SAFE_METHODS:
        return False
    if not has_cookie and (request.header("authorization") or "").lower().startswith("bearer "):
        return False
    return not settings.is_csrf_exempt(request.path)


def needs_check(request: RequestInfo, settings: WebSettings, has_cookie: bool) -> bool:
    """True when this request must also present the session's synchronizer token."""
    return has_cookie and needs_origin_check(request, settings, has_cookie)


def origin_problem(request: RequestInfo, settings: WebSettings) -> str | None:
    """Why this request looks cross-site, or None if its origin is acceptable."""
    fetch_site = (request.header("sec-fetch-site") or "").lower()
    if fetch_site in ("same-origin", "none"):
        return None
    origin = request.header("origin")
    if origin and origin != "null":
        claimed = origin.rstrip("/").lower()
    else:
        referer = request.header("referer")
        if not referer:
            if fetch_site in ("cross-site", "same-site"):
                return f"Sec-Fetch-Site is {fetch_site!r} and no Origin was sent"
            return None if origin is None else "Origin is 'null'"
        parts = urlsplit(referer)
        claimed = f"{parts.scheme}://{parts.netloc}".lower()
    if claimed == request.origin or claimed in settings.trusted_origins:
        return None
    return f"cross-origin request from {claimed}"


def token_matches(expected: object, presented: str | None) -> bool:
    """Constant-time comparison of the session's token with the one the request sent."""
    if not isinstance(expected, str) or not presented:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())


MAX_FORM_BYTES = 10 * 1024 * 1024


def is_form(content_type: str | None) -> bool:
    """Form posts (the kind a cross-site page can send without a CORS preflight)."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    return kind in ("application/x-www-form-urlencoded", "multipart/form-data")


def form_field(content_type: str | None, body: bytes, name: str = FORM_FIELD) -> str | None:
    """One field of a urlencoded or multipart body, or None. Never raises on junk."""
    kind, _, params = (content_type or "").partition(";")
    kind = kind.strip().lower()
    if kind == "application/x-www-form-urlencoded":
        from urllib.parse import parse_qs

        try:
            values = parse_qs(body.decode("latin-1"), max_num_fields=10_000).get(name)
        except ValueError:
            return None
        return values[0] if values else None
    if kind == "multipart/form-data":
        boundary = None
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.lower() == "boundary":
                boundary = value.strip('"')
        if not boundary:
            return None
        marker = f'name="{name}"'.encode()
        for part in body.split(b"--" + boundary.encode()):
            head, sep, content = part.partition(b"\r\n\r\n")
            if sep and marker in head and b"filename=" not in head:
                return content.removesuffix(b"\r\n").decode("utf-8", "replace")
    return None
