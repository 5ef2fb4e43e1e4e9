"""The request's session, refusals rendered as Flask responses, and the session's headers."""

from __future__ import annotations

from collections.abc import Iterable

import flask
from flask.wrappers import Response

from ...core.errors import StoreUnavailable
from .. import caching, csrf
from ..errors import WebError, store_unavailable
from ..request import RequestInfo
from ..wsgi import request_from_environ
from .session import ENVIRON_KEY, FlaskSession


def flask_session() -> FlaskSession | None:
    found = flask.request.environ.get(ENVIRON_KEY)
    return found if isinstance(found, FlaskSession) else None


def current_session() -> FlaskSession:
    """This request's session, typed, with coatcheck's extras (``user_id``, ``login`` ...)."""
    found = flask_session()
    if found is None:
        raise RuntimeError(
            "no coatcheck session in this request: install the extension with CoatCheck(app)"
        )
    return found


def error_response(error: WebError, info: RequestInfo | None = None) -> Response:
    """The core's rendering of a refusal (JSON or HTML by ``Accept``) as a Flask response."""
    if info is None:
        found = flask_session()
        info = found.info if found is not None else request_from_environ(flask.request.environ)
    status, headers, body = error.render(info)
    return flask.current_app.response_class(body, status=status, headers=headers)


def web_error_response(error: WebError) -> Response:
    return error_response(error)


def store_error_response(error: StoreUnavailable) -> Response:
    return error_response(store_unavailable(error))


def check_request() -> Response | None:
    """Answer requests refused up front, then check the CSRF synchronizer token."""
    session = flask_session()
    if session is None:
        return None
    if session.refusal is not None:
        return error_response(session.refusal, session.info)
    state = session.state
    if not state.csrf_pending:
        return None
    request = flask.request
    presented = request.headers.get(csrf.HEADER) or request.form.get(csrf.FORM_FIELD)
    try:
        state.handler.check_csrf_token(state, presented)
    except WebError as error:
        return error_response(error, session.info)
    return None


def add_headers(response: Response, headers: Iterable[tuple[str, str]]) -> None:
    for name, value in headers:
        lower = name.lower()
        if lower == "vary":
            response.vary.add(value)
        elif lower == "cache-control":  # merged into the view's own (caching.with_no_store)
            response.headers["Cache-Control"] = caching.with_no_store(
                response.headers.get("Cache-Control")
            )
        else:
            response.headers.add(name, value)


def replace_response(response: Response, error: WebError, info: RequestInfo) -> None:
    """Turn the app's response into the refusal: its body and headers are not sent, since the
    change they report was not saved."""
    status, headers, body = error.render(info)
    close = getattr(response.response, "close", None)
    if close is not None:
        close()
    response.headers.clear()
    response.direct_passthrough = False
    response.status_code = status
    for name, value in headers:
        response.headers.add(name, value)
    response.set_data(body)
