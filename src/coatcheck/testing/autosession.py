"""The autosession door: ``POST /__coatcheck__/autosession`` logs a browser in as a test user.

For end-to-end tests (Playwright, a manual check on a dev box) that need a logged-in browser
without typing a password. The door is a wrapper around the application: every other path goes
through untouched, and the door itself issues the session through the very handler the session
middleware uses, so the ``Set-Cookie`` (name, scope, Max-Age, ``Cache-Control: no-store``) is
the one a real login would send. The token travels only in that ``Set-Cookie``: never in a URL
and never in a response body.

Who can open it, checked in layers:

* construction calls :func:`ensure_testing_allowed` (``COATCHECK_TESTING=1``, no production
  declared, ``bind_host`` loopback) and raises otherwise, so a misconfigured server does not
  start;
* every request to the door must come straight from loopback: a loopback peer address, a
  loopback ``Host``, no proxy headers (``Forwarded``, ``X-Forwarded-For``, ``X-Real-IP``), and
  no cross-site browser origin; anything else gets 403;
* only the users named in ``users`` exist; any other name gets 403.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import replace

from .._async.web.handler import AsyncSessionHandler
from .._sync.web.handler import SessionHandler
from ..cookies import CookieSettings
from ..core.errors import ConfigError, StoreUnavailable
from ..web import csrf
from ..web.asgi import (
    ASGIApp,
    Receive,
    Scope,
    Send,
    encode_header,
    request_from_scope,
    send_error,
)
from ..web.backend import AsyncSessionBackend, SessionBackend
from ..web.errors import WebError, store_unavailable
from ..web.request import RequestInfo
from ..web.settings import WebSettings
from ..web.wsgi import Environ, StartResponse, WSGIApp, error_app, request_from_environ
from .guard import ensure_testing_allowed, is_loopback
from .login import is_async

logger = logging.getLogger("coatcheck.testing")

DEFAULT_PATH = "/__coatcheck__/autosession"
MAX_BODY_BYTES = 4096
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


class AutoSessionDoor:
    """What both wrappers share: configuration checks and the per-request decisions (no I/O)."""

    def __init__(
        self,
        users: Iterable[str] | Mapping[str, str],
        *,
        path: str,
        cookie: CookieSettings | None,
        settings: WebSettings | None,
        bind_host: str | None,
    ) -> None:
        ensure_testing_allowed(bind_host=bind_host)
        if settings is not None and cookie is not None and settings.cookie != cookie:
            raise ConfigError("pass the cookie settings once: either cookie= or settings=")
        self.settings = settings or WebSettings(cookie=cookie or CookieSettings())
        if not path.startswith("/") or self.settings.is_exempt(path):
            raise ConfigError(f"the autosession path must be a non-exempt absolute path: {path!r}")
        self.path = path
        if isinstance(users, str):
            users = [users]
        names = users.items() if isinstance(users, Mapping) else ((u, u) for u in users)
        self.users = {str(name): str(user_id) for name, user_id in names}
        if not self.users:
            raise ConfigError("autosession needs at least one predefined user")
        logger.warning(
            "coatcheck autosession door open at %s for %d test user(s): test use only",
            path,
            len(self.users),
        )

    def handles(self, path: str) -> bool:
        return path == self.path

    def refusal(self, request: RequestInfo) -> WebError | None:
        """Why this request may not use the door (before its body is read), or None."""
        if not is_loopback(request.peer):
            return _forbidden(f"the peer address {request.peer!r} is not loopback")
        if not is_loopback(request.host):
            return _forbidden(f"the Host {request.host!r} is not a loopback host")
        proxied = [h for h in PROXY_HEADERS if request.header(h) is not None]
        if proxied:
            return _forbidden(f"the request came through a proxy ({', '.join(proxied)})")
        problem = csrf.origin_problem(request, self.settings)
        if problem:
            return _forbidden(problem)
        if request.method.upper() != "POST":
            return WebError(
                405,
                "method_not_allowed",
                "The autosession door takes POST only.",
                [("allow", "POST")],
            )
        return None

    def user_for(self, content_type: str | None, body: bytes) -> str:
        """The user id the body asks for (``{"user": name}`` as JSON or a form), or WebError."""
        if len(body) > MAX_BODY_BYTES:
            raise WebError(413, "body_too_large", f"Send at most {MAX_BODY_BYTES} bytes.")
        kind = (content_type or "").split(";", 1)[0].strip().lower()
        name: object = None
        if kind == "application/json" or kind.endswith("+json"):
            try:
                parsed = json.loads(body)
            except (ValueError, RecursionError):
                parsed = None
            name = parsed.get("user") if isinstance(parsed, dict) else None
        elif csrf.is_form(content_type):
            name = csrf.form_field(content_type, body, name="user")
        if not isinstance(name, str) or name not in self.users:
            raise _forbidden(
                'send {"user": name} for one of the predefined test users', "unknown_user"
            )
        return self.users[name]


def _forbidden(why: str, code: str = "autosession_refused") -> WebError:
    return WebError(403, code, f"Autosession refused: {why}.")


def _success(user_id: str, extra: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], bytes]:
    body = json.dumps({"user": user_id}).encode()
    headers = [
        ("content-type", "application/json"),
        ("content-length", str(len(body))),
        *extra,
    ]
    if not any(k == "cache-control" for k, _ in headers):
        headers.append(("cache-control", "no-store"))
    return headers, body


class AutoSessionASGI:
    """The autosession door in front of an ASGI app (wrap it outermost, around the
    session middleware, so the door's POST is not subject to the app's CSRF token check)."""

    def __init__(
        self,
        app: ASGIApp,
        manager: AsyncSessionBackend,
        users: Iterable[str] | Mapping[str, str],
        *,
        path: str = DEFAULT_PATH,
        cookie: CookieSettings | None = None,
        settings: WebSettings | None = None,
        bind_host: str | None = None,
    ) -> None:
        self.door = AutoSessionDoor(
            users, path=path, cookie=cookie, settings=settings, bind_host=bind_host
        )
        if not is_async(manager):
            raise TypeError("AutoSessionASGI needs an asynchronous manager (AsyncSessionManager)")
        self.app = app
        self.handler = AsyncSessionHandler(manager, self.door.settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.door.handles(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        request = request_from_scope(scope)
        try:
            refused = self.door.refusal(request)
            if refused:
                raise refused
            body = await _read_body(receive)
            user_id = self.door.user_for(request.header("content-type"), body)
            state = self.handler.begin(request)
            await state.load()
            await state.login(user_id)
            headers, payload = _success(user_id, await self.handler.finish(state))
        except StoreUnavailable as exc:
            await send_error(send, store_unavailable(exc), None)
            return
        except WebError as error:
            await send_error(send, error, None)  # None: always a JSON answer
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [encode_header(pair) for pair in headers],
            }
        )
        await send({"type": "http.response.body", "body": payload})


async def _read_body(receive: Receive) -> bytes:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise WebError(400, "incomplete_request", "The request body did not arrive.")
        body += message.get("body", b"")
        if len(body) > MAX_BODY_BYTES:
            break  # user_for answers 413; no need to read the rest
        if not message.get("more_body", False):
            break
    return bytes(body)


class AutoSessionWSGI:
    """The autosession door in front of a WSGI app (wrap it outermost, around the session
    middleware: for Flask, ``app.wsgi_app = AutoSessionWSGI(app.wsgi_app, ...)`` last)."""

    def __init__(
        self,
        app: WSGIApp,
        manager: SessionBackend,
        users: Iterable[str] | Mapping[str, str],
        *,
        path: str = DEFAULT_PATH,
        cookie: CookieSettings | None = None,
        settings: WebSettings | None = None,
        bind_host: str | None = None,
    ) -> None:
        self.door = AutoSessionDoor(
            users, path=path, cookie=cookie, settings=settings, bind_host=bind_host
        )
        if is_async(manager):
            raise TypeError("AutoSessionWSGI needs a synchronous manager (SessionManager)")
        self.app = app
        self.handler = SessionHandler(manager, self.door.settings)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if not self.door.handles(_wsgi_path(environ)):
            return self.app(environ, start_response)
        request = _with_host(request_from_environ(environ), environ)
        try:
            refused = self.door.refusal(request)
            if refused:
                raise refused
            user_id = self.door.user_for(request.header("content-type"), _wsgi_body(environ))
            state = self.handler.begin(request)
            state.load()
            state.login(user_id)
            headers, payload = _success(user_id, self.handler.finish(state))
        except StoreUnavailable as exc:
            return error_app(store_unavailable(exc), None)(environ, start_response)
        except WebError as error:
            return error_app(error, None)(environ, start_response)
        start_response("200 OK", headers)
        return [payload]


def _wsgi_path(environ: Environ) -> str:
    return f"{environ.get('SCRIPT_NAME', '')}{environ.get('PATH_INFO', '')}" or "/"


def _with_host(request: RequestInfo, environ: Environ) -> RequestInfo:
    """WSGI servers may omit HTTP_HOST (HTTP/1.0); SERVER_NAME is then the host."""
    if request.host is not None:
        return request
    server = environ.get("SERVER_NAME")
    return replace(request, headers={**request.headers, "host": str(server)}) if server else request


def _wsgi_body(environ: Environ) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_BODY_BYTES:
        raise WebError(413, "body_too_large", f"Send at most {MAX_BODY_BYTES} bytes.")
    body: bytes = environ["wsgi.input"].read(length) if length > 0 else b""
    return body
