"""``create_app``: the whole service as one ASGI application, the JSON API beside the people's
pages, over one :class:`ServiceContext` that the application's lifespan closes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from .api import ServiceApi, api_app, is_api_path, sessions
from .api.fast_path import FastPath
from .api.limits import BodyLimit
from .context import ServiceContext
from .pages import pages_app
from .settings import ServiceSettings


class PagesBeside:
    """Sends every HTTP request the API does not answer to the pages (the API keeps its own
    404s and 405s as problems; the pages answer theirs as pages)."""

    def __init__(self, app: ASGIApp, pages: ASGIApp) -> None:
        self.app = app
        self.pages = pages

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not is_api_path(scope["path"]):
            await self.pages(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def create_app(settings: ServiceSettings, *, context: ServiceContext | None = None) -> ServiceApi:
    """The service for ``settings`` (server-side sessions only: sealed mode is a ConfigError).

    ``context``: one built beforehand (tests build it with a fake clock and make service keys
    in it); the application closes it at shutdown either way. Nothing touches the store before
    the first request, so the service starts while its store is down.
    """
    ctx = context or ServiceContext.build(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        cache = ctx.introspection_cache
        if cache is not None:
            cache.start()  # follows the revocation events; the cache serves once it has read
        try:
            yield
        finally:
            try:
                if cache is not None:
                    await cache.stop()
            finally:
                await ctx.close()

    app = api_app(ctx, lifespan)
    app.add_middleware(PagesBeside, pages=pages_app(ctx))
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes, metrics=ctx.metrics)
    # Introspect and refresh, most of the traffic, answered before FastAPI's stack (.api.fast_path)
    app.fast_path = FastPath(
        app, sessions.introspection.routes, limit=settings.max_body_bytes, metrics=ctx.metrics
    )
    return app
