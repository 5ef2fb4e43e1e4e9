"""WSGI session middleware over the same core as the ASGI one.

``environ["coatcheck.session"]`` holds the request's :class:`RequestSession`; it loads from the
store on first use, so a request that never touches it costs no store call. Changes are saved
once, when the application calls ``start_response``.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from .._sync.web.bearer import BearerVerifier
from .._sync.web.handler import NO_STORE, RequestSession, SessionHandler
from ..core.errors import StoreUnavailable
from . import caching, csrf
from .backend import SessionBackend
from .errors import WebError, store_unavailable
from .request import RequestInfo
from .settings import WebSettings

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

ENVIRON_KEY = "coatcheck.session"


@functools.lru_cache(maxsize=128)
def _environ_key(name: str) -> str:
    """Where CGI puts a header: ``user-agent`` is ``HTTP_USER_AGENT`` (kept: asked per request)."""
    if name in ("content-type", "content-length"):
        return name.upper().replace("-", "_")
    return "HTTP_" + name.upper().replace("-", "_")


class EnvironHeaders(Mapping[str, str]):
    """The request headers of a WSGI environ by their lower-case names, looked up on demand.

    A request needs a handful of headers (cookie, user agent, for unsafe methods the origin
    ones); a pass over the whole environ (Django's ``META`` holds every variable of the
    process) would cost more than all of them.
    """

    __slots__ = ("_environ",)

    def __init__(self, environ: Mapping[str, Any]) -> None:
        self._environ = environ

    def get(self, name: str, default: Any = None) -> Any:
        value = self._environ.get(_environ_key(name))
        if not value:  # CGI leaves absent headers out or empty
            return default
        return value if type(value) is str else str(value)

    def __getitem__(self, name: str) -> str:
        value: str | None = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        for key, value in self._environ.items():
            if not value:
                continue
            if key.startswith("HTTP_"):
                yield key[5:].replace("_", "-").lower()
            elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                yield key.replace("_", "-").lower()

    def __len__(self) -> int:
        return sum(1 for _ in self)


def request_from_environ(environ: Environ) -> RequestInfo:
    path = environ.get("PATH_INFO", "") or "/"
    script = environ.get("SCRIPT_NAME", "")
    return RequestInfo(
        str(environ.get("REQUEST_METHOD", "GET")),
        (script + path) or "/",
        str(environ.get("wsgi.url_scheme", "http")),
        EnvironHeaders(environ),
        environ.get("REMOTE_ADDR"),
        str(environ.get("QUERY_STRING", "")),
    )


def with_session_headers(
    app_headers: list[tuple[str, str]], extra: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """The application's response headers plus the session's; the session's ``no-store``
    is merged into a ``Cache-Control`` the application set (:func:`caching.with_no_store`)."""
    headers = list(app_headers)
    if NO_STORE in extra and caching.merge_into(headers):
        extra = [pair for pair in extra if pair != NO_STORE]
    return headers + extra


def error_app(error: WebError, request: RequestInfo | None) -> WSGIApp:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        status, headers, body = error.render(request)
        start_response(f"{status} {error.code.replace('_', ' ')}", headers)
        return [body]

    return app


def declared_length(environ: Mapping[str, Any]) -> int:
    """The request's ``CONTENT_LENGTH`` (0 when absent or malformed)."""
    try:
        return max(int(environ.get("CONTENT_LENGTH") or 0), 0)
    except ValueError:
        return 0


def read_body(environ: Environ, limit: int) -> bytes | None:
    """The request body (``CONTENT_LENGTH`` bytes), or None when it is over ``limit``."""
    length = declared_length(environ)
    if length > limit:
        return None
    return bytes(environ["wsgi.input"].read(length)) if length > 0 else b""


class SessionMiddleware:
    """Server-side sessions for any WSGI application.

    ``bearer``: ``Authorization: Bearer`` API tokens on requests without a session cookie
    (see :class:`~coatcheck._sync.web.handler.SessionHandler`; docs/api-tokens.md).
    """

    def __init__(
        self,
        app: WSGIApp,
        manager: SessionBackend,
        settings: WebSettings | None = None,
        *,
        bearer: BearerVerifier | bool = True,
    ) -> None:
        self.app = app
        self.handler = SessionHandler(manager, settings, bearer=bearer)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        request = request_from_environ(environ)
        try:
            state = self.handler.begin(request)
        except WebError as error:
            return error_app(error, request)(environ, start_response)
        if state.exempt:
            return self.app(environ, start_response)
        environ[ENVIRON_KEY] = state
        try:
            self.check_csrf_token(state, environ)
        except WebError as error:
            return error_app(error, request)(environ, start_response)

        def start_with_session(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            try:
                extra = self.handler.finish(state)
            except WebError as error:
                code, err_headers, body = error.render(request)
                replaced.append(body)
                return start_response(f"{code} {error.code.replace('_', ' ')}", err_headers)
            return start_response(status, with_session_headers(headers, extra), *args)

        replaced: list[bytes] = []
        try:
            result = self.app(environ, start_with_session)
        except WebError as error:  # e.g. the store went down while the app loaded the session
            return error_app(error, request)(environ, start_response)
        if replaced:
            close = getattr(result, "close", None)
            if close is not None:
                close()
            return replaced
        return result

    def check_csrf_token(self, state: RequestSession, environ: Environ) -> None:
        """Check the synchronizer token of an unsafe cookie request (body re-readable after)."""
        request = state.request
        if not state.csrf_pending:
            return
        presented = request.header(csrf.HEADER)
        if presented is None and csrf.is_form(request.header("content-type")):
            body = read_body(environ, csrf.MAX_FORM_BYTES)
            if body is None:
                raise WebError(
                    413,
                    "form_too_large",
                    "Form too large to check its CSRF field; send the token in the "
                    "X-CSRF-Token header instead.",
                )
            environ["wsgi.input"] = io.BytesIO(body)
            presented = csrf.form_field(request.header("content-type"), body)
        try:
            self.handler.check_csrf_token(state, presented)
        except StoreUnavailable as exc:
            raise store_unavailable(exc) from exc
