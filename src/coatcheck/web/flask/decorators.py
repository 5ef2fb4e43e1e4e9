"""``login_required`` and ``fresh_login_required`` for Flask views, sync or async; both take
the ``scopes`` an API token (``Authorization: Bearer``) must carry."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any, TypeVar, cast, overload

import flask
from flask.wrappers import Response

from ...core.errors import ConfigError
from .. import guards
from .responses import current_session, error_response

F = TypeVar("F", bound=Callable[..., Any])


def _stop(max_age: float | None, scopes: tuple[str, ...]) -> Response | None:
    session = current_session()
    state = session.state
    decision = state.login_decision(max_age, scopes)
    if decision is None:
        return None
    if isinstance(decision, guards.Redirect):
        return cast(Response, flask.redirect(decision.location, decision.status))
    return error_response(decision, session.info)


def _guarded(view: F, max_age: float | None, scopes: tuple[str, ...] = ()) -> F:
    if inspect.iscoroutinefunction(view):

        @functools.wraps(view)
        async def async_guard(*args: Any, **kwargs: Any) -> Any:
            stop = _stop(max_age, scopes)
            return stop if stop is not None else await view(*args, **kwargs)

        return cast(F, async_guard)

    @functools.wraps(view)
    def guard(*args: Any, **kwargs: Any) -> Any:
        stop = _stop(max_age, scopes)
        return stop if stop is not None else view(*args, **kwargs)

    return cast(F, guard)


@overload
def login_required(view: F) -> F: ...


@overload
def login_required(*, scopes: Iterable[str]) -> Callable[[F], F]: ...


def login_required(view: F | None = None, *, scopes: Iterable[str] = ()) -> F | Callable[[F], F]:
    """Only for logged-in users. A browser is sent (303) to ``COATCHECK_LOGIN_URL`` with the
    page as ``next`` and ``reason`` (``login_required`` or ``session_expired``); an API client
    gets a 401 JSON body with that reason, a refused API token a 401 ``invalid_token``.

    ``@login_required(scopes=["repo:read"])``: a request authenticated by an API token must
    also carry these scopes (else 403 ``insufficient_scope``); a cookie session passes."""
    wanted = guards.required_scopes(scopes)
    if view is not None:
        return _guarded(view, None, wanted)

    def decorate(view: F) -> F:
        return _guarded(view, None, wanted)

    return decorate


def fresh_login_required(
    max_age: float | timedelta, *, scopes: Iterable[str] = ()
) -> Callable[[F], F]:
    """Like :func:`login_required`, and the login must be at most ``max_age`` old (seconds or
    a timedelta); otherwise reason ``reauthenticate``. For sensitive actions. An API token's
    creation counts as its login."""
    seconds = max_age.total_seconds() if isinstance(max_age, timedelta) else float(max_age)
    if seconds <= 0:
        raise ConfigError(f"fresh_login_required needs a positive max_age, got {max_age!r}")
    wanted = guards.required_scopes(scopes)

    def decorate(view: F) -> F:
        return _guarded(view, seconds, wanted)

    return decorate
