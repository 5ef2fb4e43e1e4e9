"""What every people's page needs: the signed-in session or the way to the login (or
"expired") page, form fields read safely, and the service's clock."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ...web import csrf, guards
from ...web.starlette import AsyncRequestSession, get_session

MAX_FIELDS = 20
MAX_FIELD_CHARS = 4096  # longer values are cut; every field here is far shorter
DEFAULT_PAGE = "/account/sessions"


async def signed_in(request: Request) -> AsyncRequestSession | Response:
    """The logged-in session, else where to send the browser.

    The library's login guard decides (its ``next`` keeps the wanted page); a cookie that came
    back and was refused (expired, ended from another device, revoked) goes to ``/expired``
    instead of the plain login form, and an API client gets the guard's 401 JSON.
    """
    state = await get_session(request)
    decision = state.login_decision()
    if decision is None:
        return state
    if not isinstance(decision, guards.Redirect):
        raise decision
    if state.expired_reason is not None:
        wanted = guards.safe_next(state.request.path_with_query, DEFAULT_PAGE)
        return see_other(f"/expired?{urlencode({'next': wanted})}")
    return see_other(decision.location)


def see_other(location: str) -> RedirectResponse:
    """303, so the browser follows with a GET (after a POST: no resubmission on reload)."""
    return RedirectResponse(location, status_code=303)


async def form_fields(request: Request) -> dict[str, str]:
    """The POST body's form fields as text (first value of each; files ignored, values cut at
    :data:`MAX_FIELD_CHARS`). A body that is no form gives no fields: every page then answers
    as for an empty form, never with a traceback."""
    async with request.form(max_files=0, max_fields=MAX_FIELDS) as form:
        # Starlette before 0.40 enforces max_fields on multipart bodies only; count here too,
        # so an urlencoded body with too many fields gets the same 400 on every release.
        if len(form.multi_items()) > MAX_FIELDS:
            raise HTTPException(400, f"The form has more than {MAX_FIELDS} fields.")
        return {
            name: value[:MAX_FIELD_CHARS]
            for name, value in form.items()
            if not isinstance(value, UploadFile)
        }


def csrf_ok(state: AsyncRequestSession, fields: dict[str, str]) -> bool:
    """The form's CSRF token matches the session's (constant time). The middleware checks it
    already when a session cookie came along; a form that creates the first session (login,
    sign-up) is checked here, so nobody can log a browser in from another site."""
    return csrf.token_matches(state.get(csrf.SESSION_KEY), fields.get(csrf.FORM_FIELD))


def sentence(message: str) -> str:
    """A library message ("the name must ...") as a sentence for a page."""
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")
