"""Deliberate error responses: a clear status and message, JSON or HTML by ``Accept``, never a
traceback page."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field

from .request import RequestInfo


@dataclass
class WebError(Exception):
    """An HTTP answer the session layer gives instead of (or before) the application's."""

    status: int
    code: str
    message: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    json_only: bool = False  # an API client's answer whatever Accept says (bearer tokens)

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"

    def render(self, request: RequestInfo | None) -> tuple[int, list[tuple[str, str]], bytes]:
        """Status, headers and body for this error, shaped for a browser or an API client."""
        headers = [*self.headers, ("cache-control", "no-store")]
        if request is not None and request.wants_html and not self.json_only:
            title = html.escape(_TITLES.get(self.status, "Error"))
            body = (
                f"<!doctype html><html lang=en><meta charset=utf-8><title>{title}</title>"
                f"<h1>{title}</h1><p>{html.escape(self.message)}</p></html>"
            ).encode()
            headers.append(("content-type", "text/html; charset=utf-8"))
        else:
            body = json.dumps({"error": self.code, "message": self.message}).encode()
            headers.append(("content-type", "application/json"))
        headers.append(("content-length", str(len(body))))
        return self.status, headers, body


_TITLES = {
    400: "Bad request",
    401: "Please log in",
    403: "Forbidden",
    409: "Session ended",
    500: "Server error",
    503: "Service unavailable",
}


def conflicting_cookies() -> WebError:
    return WebError(
        400,
        "conflicting_session_cookies",
        "This request carried several different session cookies; nothing was saved. "
        "Clear this site's cookies and log in again.",
    )


def session_ended(expire_cookie: str) -> WebError:
    return WebError(
        409,
        "session_ended",
        "Your session ended (logged out or revoked) before this change could be saved; "
        "nothing was saved. Please log in again.",
        [("set-cookie", expire_cookie)],
    )


def session_too_large(exc: BaseException) -> WebError:
    """Oversized session data is the application's bug: say so plainly, send no cookie."""
    return WebError(500, "session_too_large", f"Session not saved: {exc}")


def session_limit_reached() -> WebError:
    return WebError(
        409,
        "session_limit_reached",
        "This account already has as many sessions as allowed; log out on another device "
        "and try again.",
    )


def csrf_origin(problem: str) -> WebError:
    return WebError(403, "csrf_origin", f"Cross-site request refused: {problem}.")


def csrf_token_mismatch() -> WebError:
    return WebError(
        403,
        "csrf_token",
        "The form's CSRF token is missing or does not match this session; "
        "reload the page and try again.",
    )


def invalid_bearer_token() -> WebError:
    """A bearer token that is malformed, unknown, revoked or expired (RFC 6750)."""
    return WebError(
        401,
        "invalid_token",
        "The bearer token is not valid: it is malformed, unknown, revoked or expired.",
        [("www-authenticate", 'Bearer error="invalid_token"')],
        json_only=True,
    )


def insufficient_scope(scopes: tuple[str, ...]) -> WebError:
    """A valid bearer token that lacks a scope this endpoint needs (RFC 6750)."""
    needed = " ".join(scopes)
    return WebError(
        403,
        "insufficient_scope",
        f"The API token lacks a scope this needs; required: {needed}.",
        [("www-authenticate", f'Bearer error="insufficient_scope", scope="{needed}"')],
        json_only=True,
    )


def store_unavailable(exc: BaseException) -> WebError:
    return WebError(
        503,
        "session_store_unavailable",
        "The session store is unavailable right now; nothing was changed. Try again shortly.",
        [("retry-after", "5")],
    )
