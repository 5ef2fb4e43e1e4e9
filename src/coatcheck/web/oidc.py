"""OpenID Connect login for any ASGI application, in one call (docs/oidc.md)::

    app = with_oidc(app, build_async_backend(), OIDCSettings(issuer=..., client_id=...))

The stack, outside in:

1. the back-channel logout endpoint, served without any session machinery (the provider's
   POST carries no cookie and no browser origin, so no CSRF check applies to it);
2. coatcheck's :class:`~coatcheck.web.asgi.SessionMiddleware`;
3. the relying party (:class:`~coatcheck._async.oidc.flow.AsyncOIDCFlow`): its own pages
   (login, callback, logout, logged-out, ended) and, before the application sees a request,
   the silent refresh of an expiring access token;
4. the application.

Server-side sessions only: a sealed-cookie backend raises ``OIDCConfigError`` here.
"""

from __future__ import annotations

import logging
from typing import Any

from .._async.oidc.flow import AsyncOIDCFlow
from .._async.oidc.provider import AsyncOIDCProvider
from .._async.web.bearer import AsyncBearerVerifier
from .._async.web.handler import AsyncRequestSession
from ..oidc.routes import Reply
from ..oidc.settings import OIDCSettings
from .asgi import (
    SCOPE_KEY,
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    SessionMiddleware,
    encode_header,
    request_from_scope,
)
from .backend import AsyncSessionBackend
from .settings import WebSettings

MAX_BACKCHANNEL_BODY = 64 * 1024  # a logout token is a few kilobytes
log = logging.getLogger("coatcheck.oidc")


def warn_of_strict_cookies(web_settings: WebSettings) -> None:
    """A ``SameSite=Strict`` session cookie is not sent when the provider redirects the browser
    back (a navigation another site started, unless the provider is on this site), so every
    callback would miss the login it belongs to: said once, at start-up."""
    if web_settings.cookie.same_site == "Strict":
        log.warning(
            "the session cookie is SameSite=Strict: browsers do not send it when an OpenID "
            "Provider on another site redirects back, so logins would fail with "
            "login_state_mismatch; use SameSite=Lax (the default) for an app that logs in "
            "through OIDC"
        )


class OIDCApp:
    """``app`` behind sessions and OpenID Connect login, refresh and logouts (see the module);
    ``flow`` is the relying party, closed with :meth:`aclose` or at the end of the
    application's lifespan.

    ``backend``: server-side sessions (an ``AsyncSessionManager``); ``web_settings``: the
    session middleware's (cookie, CSRF, exempt paths; default: the defaults, with the login
    guards sending browsers to ``settings.login_path``); ``provider``: an
    :class:`AsyncOIDCProvider` of your own (you close it), else one is made from ``settings``;
    ``bearer`` as for the session middleware.
    """

    def __init__(
        self,
        app: ASGIApp,
        backend: AsyncSessionBackend,
        settings: OIDCSettings,
        web_settings: WebSettings | None = None,
        *,
        provider: AsyncOIDCProvider | None = None,
        bearer: AsyncBearerVerifier | bool = True,
    ) -> None:
        self.app = app
        self.flow = AsyncOIDCFlow(backend, settings, provider=provider)
        self.backchannel_path = settings.backchannel_logout_path
        web_settings = web_settings or WebSettings(login_url=settings.login_path)
        warn_of_strict_cookies(web_settings)
        self.sessions = SessionMiddleware(self._relying_party, backend, web_settings, bearer=bearer)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._closing_send(send))
        elif scope["type"] == "http" and scope.get("path") == self.backchannel_path:
            await self._backchannel(scope, receive, send)
        else:
            await self.sessions(scope, receive, send)

    async def aclose(self) -> None:
        await self.flow.aclose()

    def _closing_send(self, send: Send) -> Send:
        """The lifespan's ``send``, closing the relying party before shutdown completes."""

        async def closing(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                await self.flow.aclose()
            await send(message)

        return closing

    async def _relying_party(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope.get(SCOPE_KEY)
        if not isinstance(state, AsyncRequestSession):  # an exempt path, a websocket
            await self.app(scope, receive, send)
            return
        reply = await self.flow.handle(state)
        if reply is None:
            await self.app(scope, receive, send)
        else:
            await send_reply(send, reply)

    async def _backchannel(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_reply(send, await backchannel_reply(self.flow, scope, receive))


with_oidc = OIDCApp
"""``with_oidc(app, backend, settings, web_settings=None, *, provider=None, bearer=True)``:
the whole stack (:class:`OIDCApp`)."""


async def backchannel_reply(flow: AsyncOIDCFlow, scope: Scope, receive: Receive) -> Reply:
    """The answer to a back-channel logout POST: its body read up to
    :data:`MAX_BACKCHANNEL_BODY` (413 beyond), then the flow's."""
    body = await read_body(receive, MAX_BACKCHANNEL_BODY)
    if body is None:
        return Reply(413, [("cache-control", "no-store")])
    return await flow.backchannel_logout(request_from_scope(scope), body)


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The request body, or None when it is over ``limit`` bytes."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return bytes(body)
        body += message.get("body", b"")
        if len(body) > limit:
            return None
        if not message.get("more_body", False):
            return bytes(body)


async def send_reply(send: Send, reply: Reply) -> None:
    """Send a relying-party answer (through the session middleware's ``send``, which adds
    the session's cookie headers)."""
    headers: list[Any] = [encode_header(pair) for pair in reply.with_length()]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.body})
