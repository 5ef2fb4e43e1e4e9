"""Middleware mode: a second service behind the same domain trusts the first one's login.

The web layer's usual middleware, with a backend that validates the session cookie and
``Authorization: Bearer`` API tokens through the session service instead of a local store
(:class:`~coatcheck._async.client.AsyncRemoteSessions`)::

    app = FastAPI()
    add_remote_sessions(app, "https://sessions.internal", service_key)

    @app.get("/me")
    async def me(session: AuthenticatedSession) -> dict[str, str | None]:
        return {"user": session.user_id}

Sessions are read-only here; logging in happens on the service; ``logout`` revokes there; the
service down is the web layer's 503 (docs/client.md, "Middleware mode").
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .._async.client import AsyncRemoteSessions, AsyncServiceClient
from .._sync.client import RemoteSessions, ServiceClient
from ..config import read_settings
from ..web.settings import WebSettings
from .cache import ClientCache

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from ..web.asgi import ASGIApp
    from ..web.asgi import SessionMiddleware as AsgiSessionMiddleware
    from ..web.wsgi import SessionMiddleware as WsgiSessionMiddleware
    from ..web.wsgi import WSGIApp

__all__ = [
    "AsyncRemoteSessions",
    "RemoteSessions",
    "add_remote_sessions",
    "remote_asgi",
    "remote_wsgi",
]

Lifespan = Callable[[Any], AbstractAsyncContextManager[Any]]


def web_settings(
    settings: WebSettings | None,
    cookie_name: str | None,
    config: Mapping[str, Any] | None = None,
) -> WebSettings:
    """The web settings given, else those of the ``COATCHECK_*`` names (the same names the
    service reads, so both agree on the cookie); ``cookie_name`` wins over either."""
    if settings is None:
        settings = WebSettings.from_settings(
            read_settings(os.environ if config is None else config)
        )
    if cookie_name is not None:
        settings = replace(settings, cookie=replace(settings.cookie, name=cookie_name))
    return settings


def add_remote_sessions(
    app: Starlette,
    service_url: str,
    service_key: str,
    *,
    cache: ClientCache | None = None,
    cookie_name: str | None = None,
    settings: WebSettings | None = None,
    timeout: float = 5.0,
    loopback_development: bool | None = None,
    config: Mapping[str, Any] | None = None,
) -> AsyncRemoteSessions:
    """Install middleware mode on a Starlette or FastAPI app; returns the backend.

    Cookies named ``cookie_name`` (default: ``settings.cookie``, else ``COATCHECK_*`` names in
    ``config`` or the environment, as the service reads them) and bearer API tokens are
    validated by the service at ``service_url`` with ``service_key`` (scope ``introspect``
    suffices; ``logout`` and "log out other sessions" need ``admin``). ``cache``: a
    :class:`ClientCache` (off by default). The client's revocation stream starts with the
    app's lifespan and the client closes at its end. ``loopback_development`` as for
    :func:`coatcheck.web.starlette.add_sessions`.
    """
    from ..web.starlette import add_sessions

    client = AsyncServiceClient(service_url, service_key, timeout=timeout, cache=cache)
    backend = AsyncRemoteSessions(client)
    add_sessions(
        app,
        manager=backend,
        settings=web_settings(settings, cookie_name, config),
        loopback_development=loopback_development,
        config=config,
        bearer=backend,
    )
    app.router.lifespan_context = _with_client(app.router.lifespan_context, backend)
    return backend


def _with_client(lifespan: Lifespan, backend: AsyncRemoteSessions) -> Lifespan:
    """The app's own lifespan, with the revocation stream started first (when there is a
    cache) and the client closed last."""

    @asynccontextmanager
    async def lifespan_with_client(app: Any) -> AsyncIterator[Any]:
        await backend.client.start_events(wait=0)
        try:
            async with lifespan(app) as state:
                yield state
        finally:
            await backend.close()

    return lifespan_with_client


def remote_asgi(
    app: ASGIApp,
    service_url: str,
    service_key: str,
    *,
    cache: ClientCache | None = None,
    cookie_name: str | None = None,
    settings: WebSettings | None = None,
    timeout: float = 5.0,
) -> AsgiSessionMiddleware:
    """Middleware mode for any ASGI app: ``app = remote_asgi(app, url, key)``. Close the
    client at shutdown with ``await app.handler.manager.close()``."""
    from ..web.asgi import SessionMiddleware

    client = AsyncServiceClient(service_url, service_key, timeout=timeout, cache=cache)
    backend = AsyncRemoteSessions(client)
    chosen = web_settings(settings, cookie_name)
    return SessionMiddleware(app, backend, chosen, bearer=backend)


def remote_wsgi(
    app: WSGIApp,
    service_url: str,
    service_key: str,
    *,
    cache: ClientCache | None = None,
    cookie_name: str | None = None,
    settings: WebSettings | None = None,
    timeout: float = 5.0,
) -> WsgiSessionMiddleware:
    """Middleware mode for any WSGI app (Flask's ``app.wsgi_app``, Django's application):
    ``app = remote_wsgi(app, url, key)``. With a cache, the revocation stream runs in a
    daemon thread; ``app.handler.manager.close()`` stops it."""
    from ..web.wsgi import SessionMiddleware

    client = ServiceClient(service_url, service_key, timeout=timeout, cache=cache)
    backend = RemoteSessions(client)
    return SessionMiddleware(app, backend, web_settings(settings, cookie_name), bearer=backend)
