"""OpenID Connect on the people's pages (``login = oidc`` or ``both``; docs/serve.md, "OpenID
Connect login").

The library's relying party (:class:`~coatcheck._async.oidc.flow.AsyncOIDCFlow`) sits between
the session middleware and the pages: it answers its own paths (login, callback, logout,
logged-out, ended) and refreshes an expiring access token before any page runs. The
back-channel logout path is exempt from the session middleware (no cookie, no CSRF check: the
provider's POST has neither) and answered by the flow too. What the service's own pages need
of OIDC (the login button, logging an OIDC session out, re-authenticating before "end all
other sessions") is :class:`OidcLogin`. Every session the flow ends is announced on the
revocation stream by the hook :class:`~coatcheck.service.context.ServiceContext` gives it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..._async.oidc.flow import AsyncOIDCFlow
from ...oidc.record import OIDC_KEY
from ...oidc.routes import Reply, with_next
from ...web.asgi import SCOPE_KEY, ASGIApp, Receive, Scope, Send
from ...web.oidc import backchannel_reply, send_reply
from ...web.starlette import AsyncRequestSession


class RelyingParty:
    """ASGI middleware inside the session middleware: the flow's pages and silent refresh,
    then the service's pages. Requests without a session (exempt paths) pass straight on."""

    def __init__(self, app: ASGIApp, flow: AsyncOIDCFlow) -> None:
        self.app = app
        self.flow = flow

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope.get(SCOPE_KEY)
        reply = None
        if scope["type"] == "http" and isinstance(state, AsyncRequestSession):
            reply = await self.flow.handle(state)
        if reply is None:
            await self.app(scope, receive, send)
        else:
            await send_reply(send, reply)


def response_of(reply: Reply) -> Response:
    """A relying-party answer as a Starlette response (inside a page's route)."""
    return Response(reply.body, status_code=reply.status, headers=dict(reply.headers))


class OidcLogin:
    """The OpenID Provider as the service's pages offer it.

    ``name``: how the login button names the provider (``login_provider_name``, else the
    issuer's host); ``only``: ``login = oidc`` (no password form, no password login).
    """

    def __init__(self, flow: AsyncOIDCFlow, *, name: str | None, only: bool) -> None:
        self.flow = flow
        self.name = name or urlsplit(flow.settings.issuer).hostname or flow.settings.issuer
        self.only = only

    @property
    def backchannel_path(self) -> str:
        return self.flow.settings.backchannel_logout_path

    def routes(self) -> list[BaseRoute]:
        """The back-channel logout endpoint (POST only: anything else gets the pages' 405)."""
        return [Route(self.backchannel_path, self.backchannel, methods=["POST"])]

    async def backchannel(self, request: Request) -> Response:
        return response_of(await backchannel_reply(self.flow, request.scope, request.receive))

    def login_href(self, next_page: str) -> str:
        """The login button's link: to the provider, back to ``next_page`` afterwards."""
        return with_next(self.flow.settings.login_path, next_page)

    @staticmethod
    def provider_record(data: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The provider's record in a session's data (None: not an OIDC login)."""
        value = data.get(OIDC_KEY)
        return value if isinstance(value, Mapping) else None

    def authenticated_at(self, state: AsyncRequestSession) -> float | None:
        """When the person last proved who they are: the provider's ``auth_time`` when its
        ID token said (an SSO login from an old provider session is not a fresh login), else
        the local login's time."""
        local = state.authenticated_at
        tokens = self.provider_record(state)
        auth_time = None if tokens is None else tokens.get("auth_time")
        if isinstance(auth_time, bool) or not isinstance(auth_time, int | float):
            return local
        return float(auth_time) if local is None else min(local, float(auth_time))

    async def logout(self, state: AsyncRequestSession) -> Response:
        """RP-initiated logout: the local session ends first (announced through the flow's
        hook), then the browser goes to the provider to end its session there."""
        return response_of(await self.flow.logout(state))

    async def reauthenticate(self, state: AsyncRequestSession, target: str) -> Response:
        """Off to the provider with ``prompt=login`` (it asks for the credentials again),
        back to ``target`` with a fresh login."""
        return response_of(await self.flow.start_login(state, target, prompt="login"))
