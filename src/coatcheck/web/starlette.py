"""Starlette and FastAPI: the ASGI middleware installed the native way, plus ``Depends`` helpers.

Everything here is a thin layer over :mod:`coatcheck.web.asgi` and :mod:`coatcheck.web.guards`,
so a Starlette or FastAPI app behaves exactly like every other coatcheck app::

    app = FastAPI()
    add_sessions(app, store_url="redis://127.0.0.1:6379/0")

    @app.get("/me")
    async def me(session: AuthenticatedSession) -> dict[str, str | None]:
        return {"user": session.user_id}

The session is loaded from the store only by the helpers (``get_session``, ``require_login``,
the ``Session`` dependency), so a route that never asks for it costs no store call.

A request without a session cookie may authenticate with an API token
(``Authorization: Bearer cc_...``): its session is the token's user, read-only, and
``Depends(require_scopes("repo:read"))`` also checks the token's scopes (docs/api-tokens.md).
"""

from __future__ import annotations

import html
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any

from .._extras import missing_extra

try:
    from starlette.middleware import Middleware
    from starlette.requests import HTTPConnection, Request
    from starlette.responses import Response
    from starlette.types import ExceptionHandler
except ModuleNotFoundError as exc:
    raise missing_extra("starlette", "coatcheck.web.starlette needs Starlette", exc) from exc

from .._async.web.bearer import AsyncBearerVerifier
from .._async.web.handler import AsyncRequestSession
from ..config import Settings, read_settings
from ..cookies import development, host_is_loopback
from ..core.errors import ConfigError
from ..core.policy import Policy
from . import guards
from .asgi import SCOPE_KEY, ASGIApp, Receive, Scope, Send, SessionMiddleware, request_from_scope
from .backend import AsyncSessionBackend, build_async_backend
from .caching import cacheable
from .csrf import FORM_FIELD
from .errors import WebError
from .settings import WebSettings

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from .._async.oidc.provider import AsyncOIDCProvider
    from ..oidc import OIDCSettings

__all__ = [
    "EXCEPTION_HANDLERS",
    "AsyncRequestSession",
    "AuthenticatedSession",
    "Session",
    "add_oidc",
    "add_sessions",
    "cacheable",
    "csrf_input",
    "csrf_token",
    "get_session",
    "require_login",
    "require_recent_login",
    "require_scopes",
    "session_middleware",
    "web_error_response",
]


# -- installing -------------------------------------------------------------------------------


def session_middleware(
    manager: AsyncSessionBackend,
    settings: WebSettings | None = None,
    *,
    loopback_development: bool = False,
    bearer: AsyncBearerVerifier | bool = True,
) -> Middleware:
    """A ``Middleware`` entry for ``Starlette(middleware=[...])`` / ``FastAPI(middleware=[...])``.

    Pass ``exception_handlers=EXCEPTION_HANDLERS`` too, so that guard and store errors raised by
    the helpers become responses inside the app, where the session middleware still sees them
    (stale cookies get expired, pending changes are saved). ``bearer``: API tokens on
    requests without a session cookie (True: the manager's own store; False: off; or a
    verifier, e.g. the service client's).
    """
    return Middleware(
        _session_app,
        manager=manager,
        settings=settings or WebSettings(),
        loopback_development=loopback_development,
        bearer=bearer,
    )


def add_sessions(
    app: Starlette,
    *,
    store_url: str | None = None,
    manager: AsyncSessionBackend | None = None,
    policy: Policy | None = None,
    settings: WebSettings | None = None,
    loopback_development: bool | None = None,
    config: Mapping[str, Any] | None = None,
    bearer: AsyncBearerVerifier | bool = True,
) -> AsyncSessionBackend:
    """Install server-side sessions on a Starlette or FastAPI app; returns the manager.

    Give either a ready ``manager`` (you close it) or a ``store_url`` and optional ``policy``.
    Everything not given here comes from the ``COATCHECK_*`` names in ``config`` (default:
    the environment; a dict loaded from TOML works too), read by
    :func:`coatcheck.config.read_settings`: the store (``COATCHECK_STORE_URL``, else
    ``sqlite:///coatcheck.db``), ``COATCHECK_SESSION_MODE=sealed`` for sealed cookies, the
    policy, and the web ``settings``. A manager built here is closed when the app's lifespan
    ends. ``loopback_development=True`` (or ``COATCHECK_LOOPBACK_DEVELOPMENT``) serves
    requests over plain ``http://`` to 127.0.0.1/localhost/::1 with the development cookie
    (``session``, no ``Secure``) and every other request with ``settings.cookie``, so one app
    runs both on a laptop and behind TLS. ``bearer`` as for :func:`session_middleware`.
    """
    if manager is not None and (store_url is not None or policy is not None):
        raise ConfigError("add_sessions takes either manager= or store_url=/policy=, not both")
    owned = manager is None
    needed = settings is None or manager is None or loopback_development is None
    read = read_settings(os.environ if config is None else config) if needed else Settings()
    settings = settings or WebSettings.from_settings(read)
    if loopback_development is None:
        loopback_development = read.loopback_development
    if manager is None:
        manager = build_async_backend(
            read, store_url=store_url, policy=policy, cookie=settings.cookie
        )
    app.add_middleware(
        _session_app,
        manager=manager,
        settings=settings,
        loopback_development=loopback_development,
        bearer=bearer,
    )
    for exc_class, handler in EXCEPTION_HANDLERS.items():
        app.add_exception_handler(exc_class, handler)
    if owned:
        app.router.lifespan_context = _closing(app.router.lifespan_context, manager)
    return manager


def add_oidc(
    app: Starlette,
    oidc: OIDCSettings | None = None,
    *,
    store_url: str | None = None,
    manager: AsyncSessionBackend | None = None,
    policy: Policy | None = None,
    settings: WebSettings | None = None,
    config: Mapping[str, Any] | None = None,
    provider: AsyncOIDCProvider | None = None,
    bearer: AsyncBearerVerifier | bool = True,
) -> AsyncSessionBackend:
    """Install server-side sessions and OpenID Connect login on a Starlette or FastAPI app,
    in place of :func:`add_sessions` (docs/oidc.md); returns the manager.

    ``oidc``: the relying party's settings, else the ``COATCHECK_OIDC_*`` names in ``config``
    (default: the environment). The manager, policy and web ``settings`` as for
    :func:`add_sessions` (``settings.cookie`` is used as given); web settings read here send
    the login guards to ``oidc.login_path`` unless ``COATCHECK_LOGIN_URL`` says otherwise.
    ``provider``: an :class:`~coatcheck.oidc.AsyncOIDCProvider` of your own. The stack is
    :func:`coatcheck.web.oidc.with_oidc`'s; a sealed-cookie backend raises ``OIDCConfigError``.
    """
    from .._async.manager import AsyncSessionManager
    from .._async.oidc.flow import SEALED_REFUSAL
    from ..config.settings import LOGIN_URL
    from ..oidc import OIDCConfigError, read_oidc_settings
    from .oidc import with_oidc

    if manager is not None and (store_url is not None or policy is not None):
        raise ConfigError("add_oidc takes either manager= or store_url=/policy=, not both")
    source = os.environ if config is None else config
    oidc = oidc or read_oidc_settings(source)
    if oidc is None:
        raise OIDCConfigError("add_oidc needs OIDCSettings or COATCHECK_OIDC_ISSUER (and client)")
    owned = manager is None
    read = read_settings(source) if settings is None or manager is None else Settings()
    if settings is None:
        settings = WebSettings.from_settings(read)
        if not source.get(LOGIN_URL):  # the login guards send browsers to the OIDC login
            settings = replace(settings, login_url=oidc.login_path)
    if manager is None:
        manager = build_async_backend(
            read, store_url=store_url, policy=policy, cookie=settings.cookie
        )
    if not isinstance(manager, AsyncSessionManager):
        raise OIDCConfigError(SEALED_REFUSAL)
    backend, relying_party = manager, oidc

    # The parameter is named ``app``: Starlette before 0.38 builds middleware as ``cls(app=...)``.
    def oidc_stack(app: ASGIApp) -> ASGIApp:
        return with_oidc(app, backend, relying_party, settings, provider=provider, bearer=bearer)

    app.add_middleware(oidc_stack)
    for exc_class, handler in EXCEPTION_HANDLERS.items():
        app.add_exception_handler(exc_class, handler)
    if owned:
        app.router.lifespan_context = _closing(app.router.lifespan_context, manager)
    return manager


def _session_app(
    app: ASGIApp,
    manager: AsyncSessionBackend,
    settings: WebSettings,
    loopback_development: bool = False,
    bearer: AsyncBearerVerifier | bool = True,
) -> ASGIApp:
    """The session middleware, or with ``loopback_development`` a pair of them chosen per
    request: development cookies for plain-http loopback requests, secure ones otherwise."""
    secure = SessionMiddleware(app, manager, settings, bearer=bearer)
    if not loopback_development or settings.cookie.loopback_only:
        return secure
    dev_settings = replace(settings, cookie=development(settings.cookie))
    local = SessionMiddleware(app, manager, dev_settings, bearer=secure.handler.bearer or False)

    async def choose(scope: Scope, receive: Receive, send: Send) -> None:
        plain_loopback = scope.get("scheme") == "http" and host_is_loopback(_host(scope))
        await (local if plain_loopback else secure)(scope, receive, send)

    return choose


def _host(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"host":
            return bytes(value).decode("latin-1")
    return None


def _closing(
    lifespan: Callable[[Any], AbstractAsyncContextManager[Any]], manager: AsyncSessionBackend
) -> Callable[[Any], AbstractAsyncContextManager[Any]]:
    """The app's own lifespan, then the manager's store connections closed on shutdown."""

    @asynccontextmanager
    async def lifespan_then_close(app: Any) -> AsyncIterator[Any]:
        try:
            async with lifespan(app) as state:
                yield state
        finally:
            await manager.close()

    return lifespan_then_close


# -- errors -----------------------------------------------------------------------------------


async def web_error_response(request: Request, exc: Exception) -> Response:
    """Render a :class:`WebError` (guard, CSRF, store down) as the web core shapes it."""
    if not isinstance(exc, WebError):  # pragma: no cover - registered for WebError only
        raise exc
    state = request.scope.get(SCOPE_KEY)
    info = (
        state.request
        if isinstance(state, AsyncRequestSession)
        else request_from_scope(request.scope)
    )
    status, headers, body = exc.render(info)
    return Response(body, status_code=status, headers=dict(headers))


EXCEPTION_HANDLERS: Mapping[Any, ExceptionHandler] = {WebError: web_error_response}


# -- the session ------------------------------------------------------------------------------


def _state(request: HTTPConnection) -> AsyncRequestSession:
    state = request.scope.get(SCOPE_KEY)
    if not isinstance(state, AsyncRequestSession):
        raise RuntimeError(
            f"no coatcheck session for {request.url.path!r}: the path is under "
            "WebSettings.exempt_paths, or the session middleware is not installed "
            "(coatcheck.web.starlette.add_sessions)"
        )
    return state


async def get_session(request: Request) -> AsyncRequestSession:
    """The request's session, loaded: a FastAPI dependency, or ``await get_session(request)``.

    Afterwards ``request.session`` is the same object (unless Starlette's own
    ``SessionMiddleware`` claimed that name first).
    """
    state = await _state(request).load()
    request.scope.setdefault("session", state)
    return state


async def require_login(request: Request) -> AsyncRequestSession:
    """The logged-in session, or a 303 to the login page (browsers) / 401 JSON (API clients).

    Use as a dependency (``Depends(require_login)``, or the ``AuthenticatedSession`` type) or
    call it from a plain Starlette endpoint: ``session = await require_login(request)``.
    """
    return await _guard(request, None)


def require_scopes(*scopes: str) -> Callable[[Request], Awaitable[AsyncRequestSession]]:
    """:func:`require_login`, and a request authenticated by an API token must carry every
    one of ``scopes`` (else 403 ``insufficient_scope``); a cookie session passes. A dependency:
    ``Depends(require_scopes("repo:read"))``, or ``await require_scopes(...)(request)``."""
    wanted = guards.required_scopes(scopes)

    async def scoped_login(request: Request) -> AsyncRequestSession:
        return await _guard(request, None, wanted)

    return scoped_login


def require_recent_login(
    max_age: float, *, scopes: Iterable[str] = ()
) -> Callable[[Request], Awaitable[AsyncRequestSession]]:
    """A dependency for sensitive actions: the login must be at most ``max_age`` seconds old,
    else the user is asked to log in again (reason ``reauthenticate``). ``scopes`` as for
    :func:`require_scopes` (an API token's creation counts as its login)."""
    if max_age <= 0:
        raise ConfigError(f"max_age must be positive, got {max_age!r}")
    wanted = guards.required_scopes(scopes)

    async def recent_login(request: Request) -> AsyncRequestSession:
        return await _guard(request, max_age, wanted)

    return recent_login


async def _guard(
    request: Request, max_age: float | None, scopes: tuple[str, ...] = ()
) -> AsyncRequestSession:
    state = await get_session(request)
    decision = state.login_decision(max_age, scopes)
    if decision is None:
        return state
    if isinstance(decision, guards.Redirect):
        # A WebError too, so the redirect works even where EXCEPTION_HANDLERS are not installed.
        raise WebError(
            decision.status, "login_required", "Please log in.", [("location", decision.location)]
        )
    raise decision


# -- templates --------------------------------------------------------------------------------


class _Markup(str):
    """Trusted HTML: Jinja2/MarkupSafe leave objects with ``__html__`` unescaped."""

    __slots__ = ()

    def __html__(self) -> str:
        return str(self)


def csrf_token(request: HTTPConnection) -> str:
    """The session's CSRF token for a form or a script (the session must be loaded already:
    the route depends on ``Session``/``require_login`` or awaited ``get_session``)."""
    return _state(request).csrf_token()


def csrf_input(request: HTTPConnection) -> str:
    """``<input type="hidden" name="csrf_token" value="...">`` for an HTML form; safe to put
    in a Jinja2 template unescaped (``{{ csrf_input(request) }}``)."""
    token = html.escape(csrf_token(request), quote=True)
    return _Markup(f'<input type="hidden" name="{FORM_FIELD}" value="{token}">')


# -- FastAPI ``Annotated`` dependencies ------------------------------------------------------

try:
    from fastapi import Depends
except ImportError as exc:  # pragma: no cover - plain Starlette: the functions above are the API
    if not TYPE_CHECKING:
        _no_fastapi = exc

        def __getattr__(name: str) -> Any:
            if name in ("Session", "AuthenticatedSession"):
                needer = f"coatcheck.web.starlette.{name} needs FastAPI"
                raise missing_extra("fastapi", needer, _no_fastapi) from _no_fastapi
            raise AttributeError(name)
else:
    Session = Annotated[AsyncRequestSession, Depends(get_session)]
    """The request's loaded session: ``async def view(session: Session)``."""

    AuthenticatedSession = Annotated[AsyncRequestSession, Depends(require_login)]
    """A logged-in session, or the login redirect / 401 (see :func:`require_login`)."""
