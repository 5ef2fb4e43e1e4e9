"""What the session service's answers become when they are not the expected JSON: one error
family, built from the RFC 9457 problem document the service sends (or from what a proxy sent
instead), with every message scrubbed of the token the call carried."""

from __future__ import annotations

import json
from typing import Any

from ..core.errors import CoatcheckError

PROBLEM_PREFIX = "urn:coatcheck:problem:"
UNREACHABLE = PROBLEM_PREFIX + "unreachable"
BAD_ANSWER = PROBLEM_PREFIX + "unexpected-answer"
MAX_DETAIL = 500  # characters of a detail kept: an error message, not a copy of a page
_GATEWAY_DOWN = (502, 503, 504)  # the service or the proxy in front of it says "not now"


class ServiceError(CoatcheckError):
    """The session service refused a call: ``status``, the problem ``type`` (a stable
    ``urn:coatcheck:problem:<slug>``), its ``title`` and ``detail``. Never holds a token."""

    def __init__(self, status: int, type: str, title: str, detail: str = "") -> None:
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        super().__init__(f"{status} {title}: {detail}" if detail else f"{status} {title}")

    @property
    def slug(self) -> str:
        """The last part of ``type`` (``session-limit-reached``), or ``type`` itself."""
        return self.type.removeprefix(PROBLEM_PREFIX)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.type!r}, {self.title!r})"


class ServiceAuthError(ServiceError):
    """401: the service key is missing, wrong or revoked (the service says nothing more)."""


class ServiceUnavailable(ServiceError):
    """The service cannot answer now: its store is down (503), a gateway in front of it says so
    (502, 504), or it could not be reached at all (connection, timeout). Retrying later works."""


def redact(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` (the call's token) replaced."""
    if secret and secret in text:
        text = text.replace(secret, "[token]")
    return text[:MAX_DETAIL]


def unreachable(method: str, path: str, exc: Exception) -> ServiceUnavailable:
    """A transport failure (refused, reset, timed out) as an error naming the call, not the
    exception's text (which may quote a URL with a user id, never a token: tokens travel in
    bodies only)."""
    return ServiceUnavailable(
        503,
        UNREACHABLE,
        "Session service unreachable",
        f"{method} {path} failed: {type(exc).__name__}",
    )


def bad_answer(status: int, method: str, path: str, why: str) -> ServiceError:
    """A 2xx answer that is not the JSON the API promises (a proxy page, a newer service)."""
    return ServiceError(
        status, BAD_ANSWER, "Unexpected answer from the session service", f"{method} {path}: {why}"
    )


def from_response(
    status: int, reason: str, content_type: str, body: bytes, secret: str | None
) -> ServiceError:
    """The error an unexpected status stands for: the problem document's fields when the body
    is ``application/problem+json``, else the status line (a proxy's HTML page says nothing a
    caller can use)."""
    problem: dict[str, Any] = {}
    if "json" in content_type:
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            problem = parsed
    kind = problem.get("type")
    title = problem.get("title")
    detail = problem.get("detail")
    error_class = (
        ServiceAuthError
        if status == 401
        else ServiceUnavailable
        if status in _GATEWAY_DOWN
        else ServiceError
    )
    return error_class(
        status,
        kind if isinstance(kind, str) else "about:blank",
        redact(title if isinstance(title, str) else reason or f"HTTP {status}", secret),
        redact(detail if isinstance(detail, str) else "", secret),
    )
