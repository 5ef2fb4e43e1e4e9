"""Every error of the JSON API as an RFC 9457 problem (``application/problem+json``) with a
stable ``type`` per case, so clients branch on the type, never on the wording."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from ...apitokens import ApiTokenError
from ...core.errors import (
    ConfigError,
    InvalidSessionId,
    SessionDataError,
    SessionLimitReached,
    SessionTooLarge,
    StoreUnavailable,
)
from .state import context_of

MEDIA_TYPE: Final = "application/problem+json"
TYPE_PREFIX: Final = "urn:coatcheck:problem:"
RETRY_AFTER_SECONDS: Final = 5  # what a 503 tells a client to wait before trying again

TITLES: Final[Mapping[str, str]] = {
    "invalid-json": "The body is not valid JSON",
    "invalid-session-id": "Not a session id",
    "unauthorized": "Unauthorized",
    "forbidden": "Forbidden",
    "not-found": "Not found",
    "method-not-allowed": "Method not allowed",
    "session-limit-reached": "Session limit reached",
    "body-too-large": "Body too large",
    "unsupported-media-type": "Unsupported media type",
    "validation-error": "Invalid request",
    "internal-error": "Internal error",
    "store-unavailable": "Store unavailable",
}
STATUS_OF: Final[Mapping[str, int]] = {
    "invalid-json": 400,
    "invalid-session-id": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not-found": 404,
    "method-not-allowed": 405,
    "session-limit-reached": 409,
    "body-too-large": 413,
    "unsupported-media-type": 415,
    "validation-error": 422,
    "internal-error": 500,
    "store-unavailable": 503,
}
_SLUG_OF_STATUS: Final = {status: slug for slug, status in STATUS_OF.items()}
_SLUG_OF_STATUS[400] = "invalid-json"  # the only other 400 (invalid-session-id) is ours
UNAUTHORIZED_DETAIL: Final = "A valid service key is required (Authorization: Bearer cck_...)."


class Problem(HTTPException):
    """A deliberate API error: raised anywhere below a route, rendered by the handlers here."""

    def __init__(
        self,
        slug: str,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        errors: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__(STATUS_OF[slug], detail, dict(headers) if headers else None)
        self.slug = slug
        self.errors = list(errors) if errors is not None else None


def unauthorized() -> Problem:
    """No, a wrong or a revoked service key: the same answer for all three."""
    return Problem("unauthorized", UNAUTHORIZED_DETAIL, headers={"www-authenticate": "Bearer"})


def problem_body(
    slug: str, detail: str, errors: Sequence[Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """The JSON object of a problem."""
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + slug,
        "title": TITLES[slug],
        "status": STATUS_OF[slug],
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = list(errors)
    return body


def problem_response(
    slug: str,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    errors: Sequence[Mapping[str, Any]] | None = None,
) -> JSONResponse:
    """The response of a problem; never cached (it may concern a token)."""
    all_headers = {"cache-control": "no-store", **(headers or {})}
    if slug == "store-unavailable":
        all_headers["retry-after"] = str(RETRY_AFTER_SECONDS)
    return JSONResponse(
        problem_body(slug, detail, errors),
        status_code=STATUS_OF[slug],
        headers=all_headers,
        media_type=MEDIA_TYPE,
    )


def _respond(request: Request, problem: Problem) -> Response:
    context_of(request).metrics.rejections.labels(reason=problem.slug).inc()
    return problem_response(
        problem.slug, problem.detail, headers=problem.headers, errors=problem.errors
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if isinstance(exc, Problem):
        return _respond(request, exc)
    slug = _SLUG_OF_STATUS.get(exc.status_code, "validation-error")
    detail = {
        404: f"There is no {request.url.path} here.",
        405: f"{request.method} is not allowed on {request.url.path}.",
    }.get(exc.status_code, str(exc.detail))
    return _respond(request, Problem(slug, detail, headers=exc.headers))


async def _invalid_request(request: Request, exc: Exception) -> Response:
    """FastAPI's validation of path, query and header parameters (bodies are read by
    :mod:`.body`), said without echoing the input (it may be a token)."""
    assert isinstance(exc, RequestValidationError)
    return _respond(request, validation_problem(exc.errors()))


def validation_problem(errors: Sequence[Mapping[str, Any]]) -> Problem:
    """A 422 listing what is wrong where: ``loc``, ``msg`` and ``type`` of each error."""
    listed = [
        {
            "loc": [str(part) for part in e.get("loc", ())],
            "msg": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in errors
    ]
    where = ", ".join(".".join(e["loc"]) for e in listed[:5]) or "the request"
    return Problem(
        "validation-error", f"The request is not valid: see errors ({where}).", errors=listed
    )


async def _bad_value(request: Request, exc: Exception) -> Response:
    """What the library refuses of a well-typed request (an API token's name or scopes,
    remember me while it is off, session data too large or not storable as JSON)."""
    return _respond(request, Problem("validation-error", str(exc), errors=[]))


async def _bad_session_id(request: Request, exc: Exception) -> Response:
    return _respond(request, Problem("invalid-session-id", str(exc)))


async def _limit(request: Request, exc: Exception) -> Response:
    return _respond(
        request,
        Problem(
            "session-limit-reached",
            "The user already has as many sessions as the policy allows, and it refuses more.",
        ),
    )


async def _store_down(request: Request, exc: Exception) -> Response:
    return _respond(
        request,
        Problem("store-unavailable", "The session store cannot be reached; try again shortly."),
    )


async def _server_error(request: Request, exc: Exception) -> Response:
    """The last resort: never a traceback, always a problem."""
    return _respond(
        request, Problem("internal-error", "The service failed to answer this request.")
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Route every error the API can meet to a problem response."""
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    for refused in (ApiTokenError, ConfigError, SessionTooLarge, SessionDataError):
        app.add_exception_handler(refused, _bad_value)
    app.add_exception_handler(InvalidSessionId, _bad_session_id)
    app.add_exception_handler(SessionLimitReached, _limit)
    app.add_exception_handler(StoreUnavailable, _store_down)
    app.add_exception_handler(Exception, _server_error)
