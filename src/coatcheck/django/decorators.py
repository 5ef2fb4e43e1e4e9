"""Login guards for Django views, deciding through :func:`coatcheck.web.guards.require_login`.

A browser is sent with a 303 to ``LOGIN_URL?next=<this page>&reason=...``; an API client gets a
401 JSON body ``{"error": "login_required" | "session_expired" | "reauthenticate", ...}``. An
expired session is told apart from no session, so the login page can say so::

    @login_required
    def me(request): ...

    @fresh_login_required(max_age=5 * 60)   # password typed within the last five minutes
    def change_email(request): ...

Class-based views: ``method_decorator(login_required, name="dispatch")``.

``cacheable`` (:func:`coatcheck.web.caching.cacheable`, re-exported here) opts a view out of the
``Cache-Control: no-store`` that every response of a logged-in session gets::

    @cacheable
    def avatar(request): ...    # its own Cache-Control (e.g. "private, max-age=60") is kept
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponseBase

from ..web.caching import cacheable
from ..web.guards import Redirect, require_login
from .adapt import error_response, redirect_response, request_info
from .conf import get_config
from .store import SessionStore

__all__ = ["cacheable", "fresh_login_required", "login_required", "refusal"]

View = TypeVar("View", bound=Callable[..., Any])


def login_required(view: View) -> View:
    """Let authenticated requests through; send the others to log in (or a 401)."""
    return _guarded(view, None)


def fresh_login_required(max_age: float) -> Callable[[View], View]:
    """Like :func:`login_required`, and the login must be at most ``max_age`` seconds old
    (sensitive actions ask for the password again: reason ``reauthenticate``)."""

    def decorate(view: View) -> View:
        return _guarded(view, float(max_age))

    return decorate


def refusal(request: HttpRequest, max_age: float | None = None) -> HttpResponseBase | None:
    """The response that stops this request, or None to let it through."""
    store = getattr(request, "session", None)
    if not isinstance(store, SessionStore):
        raise ImproperlyConfigured(
            "coatcheck's login guards need SESSION_ENGINE = 'coatcheck.django' and "
            "coatcheck.django.middleware.SessionMiddleware"
        )
    config = get_config()
    info = request_info(request)
    decision = require_login(
        info,
        config.web,
        user_id=_user_id(request, store),
        expired_reason=store.expired_reason,
        authenticated_at=store.authenticated_at,
        max_age=max_age,
        now=config.manager.clock(),
    )
    if decision is None:
        return None
    if isinstance(decision, Redirect):
        return redirect_response(decision)
    return error_response(decision, info)


def _user_id(request: HttpRequest, store: SessionStore) -> str | None:
    """Who is logged in: django.contrib.auth's ``request.user`` when installed (it also checks
    the session's auth hash), else the coatcheck session's user."""
    user = getattr(request, "user", None)
    if user is None:
        return store.user_id
    return str(user.pk) if user.is_authenticated else None


def _guarded(view: View, max_age: float | None) -> View:
    if iscoroutinefunction(view):

        async def async_guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            stop = await sync_to_async(refusal)(request, max_age)  # session I/O is blocking
            return stop if stop is not None else await view(request, *args, **kwargs)

        markcoroutinefunction(async_guarded)
        return cast(View, wraps(view)(async_guarded))

    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        stop = refusal(request, max_age)
        return stop if stop is not None else view(request, *args, **kwargs)

    return cast(View, wraps(view)(guarded))
