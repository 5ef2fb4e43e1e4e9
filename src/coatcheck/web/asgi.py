"""Pure ASGI session middleware: one class, read top to bottom.

``scope["coatcheck.session"]`` holds the request's :class:`AsyncRequestSession`. It is loaded
from the store only when the application awaits ``load()`` (the Starlette/FastAPI helpers do),
so a request that never uses the session costs no store call. Changes are saved once, when the
response starts; a ``Set-Cookie`` is sent only when the token changed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from .._async.web.bearer import AsyncBearerVerifier
from .._async.web.handler import (
    CLEAR_SITE_DATA,
    NO_STORE,
    VARY,
    AsyncRequestSession,
    AsyncSessionHandler,
)
from ..core.errors import StoreUnavailable
from . import caching, csrf
from .backend import AsyncSessionBackend
from .errors import WebError, store_unavailable
from .request import RequestInfo
from .settings import WebSettings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SCOPE_KEY = "coatcheck.session"


def _encode(header: tuple[str, str]) -> tuple[bytes, bytes]:
    return header[0].encode("latin-1"), header[1].encode("latin-1")


# The fixed headers the session core adds, encoded once; looked up by name, so a long value
# (a sealed Set-Cookie) is never hashed.
_FIXED: dict[str, tuple[str, tuple[bytes, bytes]]] = {
    name: (value, _encode((name, value))) for name, value in (VARY, NO_STORE, CLEAR_SITE_DATA)
}


def encode_header(header: tuple[str, str]) -> tuple[bytes, bytes]:
    """One response header as ASGI wants it (latin-1 bytes)."""
    fixed = _FIXED.get(header[0])
    if fixed is not None and fixed[0] == header[1]:
        return fixed[1]
    return _encode(header)


def with_session_headers(
    app_headers: Iterable[tuple[bytes, bytes]], extra: list[tuple[str, str]]
) -> list[tuple[bytes, bytes]]:
    """The application's response headers plus the session's; the session's ``no-store``
    is merged into a ``Cache-Control`` the application set (:func:`caching.with_no_store`).

    On every response's path: the application's headers are scanned only when ``no-store``
    is to be added, and a name's length is compared before it is lower-cased.
    """
    headers = list(app_headers)
    own = len(headers)
    headers += map(encode_header, extra)
    if NO_STORE in extra:
        for i in range(own):
            name, value = headers[i]
            if len(name) == 13 and name.lower() == b"cache-control":
                merged = caching.with_no_store(value.decode("latin-1"))
                headers[i] = (name, merged.encode("latin-1"))
                del headers[own + extra.index(NO_STORE)]
                break
    return headers


def request_from_scope(scope: Scope) -> RequestInfo:
    """The request as the shared core sees it (on every request's path: kept to one pass)."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").lower()
        if name in headers:
            headers[name] += ("; " if name == "cookie" else ", ") + raw_value.decode("latin-1")
        else:
            headers[name] = raw_value.decode("latin-1")
    client = scope.get("client")
    return RequestInfo(
        scope.get("method", "GET"),
        scope.get("path", "/"),
        scope.get("scheme", "http"),
        headers,
        client[0] if client else None,
        scope.get("query_string", b"").decode("latin-1"),
    )


async def send_error(send: Send, error: WebError, request: RequestInfo | None) -> None:
    status, headers, body = error.render(request)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [encode_header(pair) for pair in headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


class SessionMiddleware:
    """Server-side sessions for any ASGI application.

    ``bearer``: ``Authorization: Bearer`` API tokens on requests without a session cookie
    (see :class:`~coatcheck._async.web.handler.AsyncSessionHandler`; docs/api-tokens.md).
    """

    def __init__(
        self,
        app: ASGIApp,
        manager: AsyncSessionBackend,
        settings: WebSettings | None = None,
        *,
        bearer: AsyncBearerVerifier | bool = True,
    ) -> None:
        self.app = app
        self.handler = AsyncSessionHandler(manager, settings, bearer=bearer)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = request_from_scope(scope)
        try:
            state = self.handler.begin(request)
        except WebError as error:
            await send_error(send, error, request)
            return
        if state.exempt:
            await self.app(scope, receive, send)
            return
        scope[SCOPE_KEY] = state
        if state.csrf_pending:
            try:
                receive = await self._check_csrf_token(state, receive)
            except WebError as error:
                await send_error(send, error, request)
                return
        replaced = started = False

        async def send_with_session(message: Message) -> None:
            nonlocal replaced, started
            if replaced:
                return  # the application's response was replaced by an error
            if message["type"] == "http.response.start":
                started = True
                endpoint = scope.get("endpoint")  # Starlette's routing puts it there
                if endpoint is not None and state.loaded and caching.is_cacheable(endpoint):
                    state.cacheable = True
                try:
                    extra = await self.handler.finish(state)
                except WebError as error:
                    replaced = True
                    await send_error(send, error, request)
                    return
                if extra:
                    message["headers"] = with_session_headers(message.get("headers", ()), extra)
            await send(message)

        try:
            await self.app(scope, receive, send_with_session)
        except WebError as error:  # e.g. the store went down while the app loaded the session
            if started:
                raise
            await send_error(send, error, request)

    async def _check_csrf_token(self, state: AsyncRequestSession, receive: Receive) -> Receive:
        """Check the synchronizer token of an unsafe cookie request; replay the body after."""
        request = state.request
        presented = request.header(csrf.HEADER)
        replay: list[Message] = []
        if presented is None and csrf.is_form(request.header("content-type")):
            body = bytearray()
            while True:
                message = await receive()
                replay.append(message)
                if message["type"] != "http.request":
                    break
                body += message.get("body", b"")
                if len(body) > csrf.MAX_FORM_BYTES:
                    raise WebError(
                        413,
                        "form_too_large",
                        "Form too large to check its CSRF field; send the token in the "
                        "X-CSRF-Token header instead.",
                    )
                if not message.get("more_body", False):
                    break
            presented = csrf.form_field(request.header("content-type"), bytes(body))
        try:
            await self.handler.check_csrf_token(state, presented)
        except StoreUnavailable as exc:
            raise store_unavailable(exc) from exc
        if not replay:
            return receive

        async def replay_receive() -> Message:
            return replay.pop(0) if replay else await receive()

        return replay_receive
