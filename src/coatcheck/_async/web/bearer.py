"""Bearer API tokens in the web layer: how a request without a session cookie but with
``Authorization: Bearer cc_...`` becomes a read-only session of the token's user.

The handler holds an :class:`AsyncBearerVerifier`; a server-mode manager gets
:class:`AsyncLocalBearerVerifier` (API tokens in its own store) by default, and the service
client supplies one that asks the session service. Either builds the session with
:func:`bearer_session`.
"""

from __future__ import annotations

from typing import Protocol

from ...core.session import Session, bearer_session
from ..apitokens import AsyncApiTokens
from ..manager import AsyncSessionManager

__all__ = [
    "AsyncBearerVerifier",
    "AsyncLocalBearerVerifier",
    "bearer_session",
    "local_verifier",
]


class AsyncBearerVerifier(Protocol):
    """Turns a presented bearer token into a read-only session (:func:`bearer_session`), or
    None when the token is malformed, unknown, revoked or expired."""

    async def verify_bearer(
        self, token: str, *, client_ip: str | None, user_agent: str | None
    ) -> Session | None: ...


class AsyncLocalBearerVerifier:
    """Checks API tokens in the store of a local session manager (:class:`AsyncApiTokens`)."""

    def __init__(self, tokens: AsyncApiTokens) -> None:
        self.tokens = tokens

    async def verify_bearer(
        self, token: str, *, client_ip: str | None, user_agent: str | None
    ) -> Session | None:
        info = await self.tokens.verify(token)
        if info is None:
            return None
        session = bearer_session(
            info.user_id,
            scopes=info.scopes,
            token_id=info.id,
            created_at=info.created_at,
            expires_at=info.expires_at,
        )
        session.client_ip, session.user_agent = client_ip, user_agent
        return session


def local_verifier(manager: object) -> AsyncBearerVerifier | None:
    """The verifier a handler gets by default: API tokens in a server-mode manager's store,
    last-used times written at most once per the policy's touch interval. None for any other
    backend (sealed cookies keep no token records): give one explicitly there."""
    if isinstance(manager, AsyncSessionManager):
        tokens = AsyncApiTokens(manager, touch_interval=manager.policy.touch_interval)
        return AsyncLocalBearerVerifier(tokens)
    return None
