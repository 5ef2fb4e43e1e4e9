"""The relying party's answers and addresses, as plain values: what a request gets back
(:class:`Reply`), where the OIDC pages are, which requests may be redirected, and the
problem answers (HTML for a browser, JSON for an API client). No I/O."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from ..web.errors import WebError
from ..web.guards import safe_next
from ..web.request import RequestInfo
from .pages import PAGE_HEADERS, page
from .settings import OIDCSettings

NO_STORE = ("cache-control", "no-store")
RETRY_SOON = ("retry-after", "5")
MAX_QUERY_FIELDS = 100  # the relying party's pages take a handful of parameters
# What a Location header may carry as is: printable ASCII but the space. Anything else (a
# ``next`` page with non-ASCII characters, which ASGI servers hand over decoded) is
# percent-encoded as UTF-8, since headers are Latin-1 bytes.
_LOCATION_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))


@dataclass(frozen=True, slots=True)
class Reply:
    """An answer the relying party gives instead of the application's."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def with_length(self) -> list[tuple[str, str]]:
        """The headers with ``content-length``."""
        return [*self.headers, ("content-length", str(len(self.body)))]


def redirect(location: str) -> Reply:
    """303 See Other (a POST becomes a GET), never cached; characters a header cannot carry
    are percent-encoded."""
    return Reply(303, [("location", quote(location, safe=_LOCATION_SAFE)), NO_STORE])


def json_reply(
    status: int, payload: Mapping[str, object], headers: tuple[tuple[str, str], ...] = ()
) -> Reply:
    body = json.dumps(payload).encode()
    return Reply(status, [("content-type", "application/json"), NO_STORE, *headers], body)


def html_reply(status: int, body: bytes, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    return Reply(status, [*PAGE_HEADERS, *headers], body)


def problem(
    request: RequestInfo,
    status: int,
    code: str,
    title: str,
    message: str,
    *,
    link: tuple[str, str] | None = None,
    headers: tuple[tuple[str, str], ...] = (),
    extra: Mapping[str, object] | None = None,
) -> Reply:
    """An error a person or a program can act on: a page with one link for a browser, else
    ``{"error": code, "message": ..., **extra}`` (plus ``"login_url"`` when the link is one)."""
    if request.wants_html:
        return html_reply(status, page(title, (message,), link), headers)
    payload: dict[str, object] = {"error": code, "message": message, **(extra or {})}
    return json_reply(status, payload, headers)


def query(request: RequestInfo, *, single: tuple[str, ...] = ()) -> dict[str, str]:
    """The query's parameters, the first value of each. A query of more than
    :data:`MAX_QUERY_FIELDS` parameters, or one that repeats a parameter named in ``single``
    (RFC 6749, 3.1: a parameter must not be sent twice), is a 400 ``WebError``."""
    try:
        pairs = parse_qsl(request.query, keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS)
    except ValueError:
        message = "This address takes a few query parameters only."
        raise WebError(400, "bad_query", message) from None
    found: dict[str, str] = {}
    for name, value in pairs:
        if name in found and name in single:
            raise WebError(400, "repeated_parameter", f"The {name!r} parameter was sent twice.")
        found.setdefault(name, value)
    return found


def exempt_from_refresh(settings: OIDCSettings) -> frozenset[str]:
    """The relying party's own paths: never refreshed or redirected (no loops)."""
    return frozenset(
        {
            settings.login_path,
            settings.callback_path,
            settings.logout_path,
            settings.logged_out_path,
            settings.ended_path,
            settings.backchannel_logout_path,
        }
    )


def absolute(settings: OIDCSettings, request: RequestInfo, path: str) -> str:
    """``path`` on this app's external origin: ``base_url`` when set, else the request's."""
    base = settings.base_url or request.origin
    return base.rstrip("/") + path


def with_next(path: str, target: str, **more: str) -> str:
    """``path?next=target`` (plus ``more``), ``target`` kept to a same-origin path."""
    params = {"next": safe_next(target), **more}
    return f"{path}?{urlencode(params, safe='/', quote_via=quote)}"


def is_navigation(request: RequestInfo) -> bool:
    """A browser's top-level page load (GET, HTML wanted, not a script's fetch): the only kind
    of request that may be sent through the provider and back."""
    if request.method.upper() not in ("GET", "HEAD") or not request.wants_html:
        return False
    mode = (request.header("sec-fetch-mode") or "navigate").lower()
    return mode == "navigate" and request.header("x-requested-with") is None


def return_to(request: RequestInfo) -> str:
    """The page the user was on: this one for a GET, else the same-origin page that sent the
    request (``Referer``), else ``/``."""
    if request.method.upper() in ("GET", "HEAD"):
        return safe_next(request.path_with_query)
    referer = request.header("referer")
    if referer:
        parts = urlsplit(referer)
        if f"{parts.scheme}://{parts.netloc}".lower() == request.origin:
            return safe_next(parts.path + (f"?{parts.query}" if parts.query else ""))
    return "/"


def provider_unavailable(
    request: RequestInfo, kept: bool, link: tuple[str, str] | None = None
) -> Reply:
    """503: the provider cannot be reached (network, timeout, 5xx). Nothing ended."""
    still = " You are still logged in." if kept else ""
    return problem(
        request,
        503,
        "provider_unavailable",
        "Sign-in provider unavailable",
        f"The sign-in provider cannot be reached right now.{still} Try again in a moment.",
        link=link,
        headers=(RETRY_SOON,),
    )


def refresh_busy(request: RequestInfo) -> Reply:
    """503: another request's refresh of this session is taking too long. Nothing ended."""
    return problem(
        request,
        503,
        "refresh_in_progress",
        "Please try again",
        "Your session is being renewed by another request that is taking too long. You are "
        "still logged in; try again in a moment.",
        headers=(RETRY_SOON,),
    )
