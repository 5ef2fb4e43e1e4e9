"""A real session for a test user, made by the manager's own login path.

No fake session object and no bypass: the token comes from the manager's ``login``, so the
store, the policy (timeouts, per-user limits) and ``authenticated_at`` are exactly what a user
who had just typed a password would get, and the tests exercise the real lookup. Any manager
with the core's ``login``/``load``/``logout`` methods works: server mode
(:class:`SessionManager`, :class:`AsyncSessionManager`) and sealed cookie mode alike, since in
both the string ``login`` returns is the cookie value.
"""

from __future__ import annotations

import inspect
from collections.abc import Collection, Mapping
from typing import Any, Protocol, TypeGuard

from ..core.records import Kind
from ..core.session import Session
from .guard import ensure_testing_allowed


class LoginManager(Protocol):
    """The part of a synchronous session manager the test helpers use."""

    def login(
        self,
        session: Session,
        user_id: str,
        *,
        carry: bool | Collection[str] = ...,
        kind: Kind | None = ...,
    ) -> str: ...

    def load(
        self, token: str | None, *, client_ip: str | None = ..., user_agent: str | None = ...
    ) -> Session: ...

    def logout(self, session: Session) -> None: ...


class AsyncLoginManager(Protocol):
    """The part of an asynchronous session manager the test helpers use."""

    async def login(
        self,
        session: Session,
        user_id: str,
        *,
        carry: bool | Collection[str] = ...,
        kind: Kind | None = ...,
    ) -> str: ...

    async def load(
        self, token: str | None, *, client_ip: str | None = ..., user_agent: str | None = ...
    ) -> Session: ...

    async def logout(self, session: Session) -> None: ...


AnyLoginManager = LoginManager | AsyncLoginManager


def is_async(manager: AnyLoginManager) -> TypeGuard[AsyncLoginManager]:
    """True for managers whose methods are coroutines (``AsyncSessionManager`` and kin)."""
    return inspect.iscoroutinefunction(getattr(manager, "login", None))


def _fresh(kind: Kind, data: Mapping[str, Any] | None) -> Session:
    session = Session(None, kind=kind)
    for key, value in (data or {}).items():
        session[key] = value  # checked for JSON here, like any session value
    return session


def login_token(
    manager: LoginManager,
    user_id: str,
    *,
    kind: Kind = "browser",
    data: Mapping[str, Any] | None = None,
) -> str:
    """Log ``user_id`` in through ``manager`` and return the new session's token.

    ``data`` is stored in the session (as if the app had set it before login and carried it).
    Refused in a configuration declared as production (see :mod:`coatcheck.testing.guard`).
    """
    ensure_testing_allowed(explicit=True)
    if is_async(manager):
        raise TypeError(f"{type(manager).__name__} is asynchronous: use alogin_token")
    return manager.login(_fresh(kind, data), str(user_id), carry=True, kind=kind)


async def alogin_token(
    manager: AsyncLoginManager,
    user_id: str,
    *,
    kind: Kind = "browser",
    data: Mapping[str, Any] | None = None,
) -> str:
    """:func:`login_token` for an asynchronous manager (:class:`AsyncSessionManager`)."""
    ensure_testing_allowed(explicit=True)
    if not is_async(manager):
        raise TypeError(f"{type(manager).__name__} is synchronous: use login_token")
    return await manager.login(_fresh(kind, data), str(user_id), carry=True, kind=kind)
