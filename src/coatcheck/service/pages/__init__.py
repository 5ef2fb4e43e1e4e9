"""The people's pages of ``coatcheck serve``: log in, see and end your sessions, manage your API
tokens (docs/service-pages.md).

Server-rendered (Jinja2, autoescaped), usable without JavaScript, behind coatcheck's own
Starlette session middleware with CSRF protection on: the service eats its own cooking.
With OpenID Connect login on, the library's relying party runs between the session
middleware and the pages (:mod:`.oidc`). :func:`pages_app` is mounted at ``/`` by
:func:`coatcheck.service.app.create_app`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from ...core.errors import StoreUnavailable
from ...web.asgi import ASGIApp
from ...web.settings import WebSettings
from ...web.starlette import EXCEPTION_HANDLERS, session_middleware
from .account import AccountPages
from .door import AutosessionDoor
from .login import LoginPages
from .view import Views

if TYPE_CHECKING:
    from ..context import ServiceContext
    from .oidc import OidcLogin

__all__ = ["page_routes", "pages_app"]


def page_routes(
    ctx: ServiceContext,
    web: WebSettings | None = None,
    views: Views | None = None,
    oidc: OidcLogin | None = None,
) -> list[BaseRoute]:
    """The pages' routes (they need the session middleware :func:`pages_app` puts around
    them). ``/signup`` only with ``settings.signup``; ``/autosession`` only with
    ``settings.testing``; the back-channel logout endpoint with ``oidc``."""
    views = views or Views(signup=ctx.settings.signup)
    routes = LoginPages(ctx, views, oidc).routes() + AccountPages(ctx, views, oidc).routes()
    if ctx.settings.testing:
        routes += AutosessionDoor(ctx, web or web_settings(ctx)).routes()
    if oidc is not None:
        routes += oidc.routes()
    return routes


def web_settings(ctx: ServiceContext) -> WebSettings:
    """The session cookie, proxies, origins and CSRF switches from the library settings;
    with OpenID Connect, the back-channel logout path is exempt from sessions."""
    web = WebSettings.from_settings(ctx.settings.library)
    if ctx.oidc is not None:
        backchannel = ctx.oidc.settings.backchannel_logout_path
        web = replace(web, exempt_paths=(*web.exempt_paths, backchannel))
    return web


def oidc_login(ctx: ServiceContext) -> OidcLogin | None:
    """The OpenID Provider as the pages offer it, when ``login`` is ``oidc`` or ``both``."""
    if ctx.oidc is None:
        return None
    from .oidc import OidcLogin  # needs the [oidc] extra, installed when login uses it

    settings = ctx.settings
    return OidcLogin(ctx.oidc, name=settings.login_provider_name, only=settings.login == "oidc")


def pages_app(ctx: ServiceContext) -> ASGIApp:
    """The pages as one ASGI app, wrapped in the session middleware over ``ctx.sessions``.

    Over plain ``http://`` to a loopback host the cookie is the development one (``session``,
    no ``Secure``) when ``ctx.settings.development_cookies`` says so; everywhere else the
    secure ``__Host-session``.
    """
    web = web_settings(ctx)
    views = Views(signup=ctx.settings.signup)
    oidc = oidc_login(ctx)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return _error(request, views, exc.status_code, exc.detail, exc.headers)

    async def store_down(request: Request, exc: Exception) -> Response:
        return _error(request, views, 503, "The service's store is unavailable; try again soon.")

    middleware = [
        # Pages are for people: an API token (Authorization: Bearer) never signs in here,
        # so no token can list sessions or mint further tokens.
        session_middleware(
            ctx.sessions,
            web,
            loopback_development=ctx.settings.development_cookies,
            bearer=False,
        )
    ]
    if oidc is not None:
        from .oidc import RelyingParty

        middleware.append(Middleware(RelyingParty, flow=oidc.flow))
    return Starlette(
        routes=page_routes(ctx, web, views, oidc),
        middleware=middleware,
        exception_handlers={
            **EXCEPTION_HANDLERS,
            HTTPException: http_error,
            StoreUnavailable: store_down,
        },
    )


TITLES = {400: "Bad request", 404: "Page not found", 405: "Method not allowed"}
SLUGS = {400: "bad-request", 404: "not-found", 405: "method-not-allowed", 503: "store-unavailable"}


def _error(
    request: Request,
    views: Views,
    status: int,
    detail: str,
    extra: Mapping[str, str] | None = None,
) -> Response:
    """An error as a small page for browsers, as RFC 9457 problem JSON for everyone else
    (``extra``: the exception's own headers, such as a 405's ``Allow``)."""
    title = TITLES.get(status, "Service unavailable" if status == 503 else "Error")
    headers = {**(extra or {}), "cache-control": "no-store"}
    if status == 503:
        headers["retry-after"] = "5"
    if "text/html" in request.headers.get("accept", ""):
        return views.page(
            request, "message.html", title, status=status, headers=headers, message=detail
        )
    problem = {
        "type": f"urn:coatcheck:problem:{SLUGS.get(status, 'error')}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    return JSONResponse(
        problem, status_code=status, headers=headers, media_type="application/problem+json"
    )
