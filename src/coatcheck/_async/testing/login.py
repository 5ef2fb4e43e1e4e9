"""A real session for a test user, made by the manager's own login path.

No fake session object and no bypass: the token comes from the manager's ``login``, so the
store, the policy (timeouts, per-user limits) and ``authenticated_at`` are exactly what a user
who had just typed a password would get, and the tests exercise the real lookup. Server mode
and sealed cookie mode alike: in both, the string ``login`` returns is the cookie value.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Protocol

from ...core.records import Kind
from ...core.session import Session
from ...testing.faces import expect_async, fresh_session
from ...testing.guard import ensure_testing_allowed


class AsyncLoginManager(Protocol):
    """The part of a session manager the test helpers use (:class:`AsyncSessionManager`,
    :class:`AsyncSealedSessionManager`)."""

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


async def alogin_token(
    manager: AsyncLoginManager,
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
    expect_async(manager)
    return await manager.login(fresh_session(kind, data), str(user_id), carry=True, kind=kind)
