"""What the web layer needs from a session manager, and the builder that makes one from
settings (server-side sessions or sealed cookies: :mod:`coatcheck.web.modes`)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol, Unpack

from ...config import Settings
from ...core.clock import Clock
from ...core.policy import Policy
from ...core.records import Kind
from ...core.session import Session
from ...web.modes import Overrides, resolve


class AsyncSessionBackend(Protocol):
    """What the web layer calls on a session manager (:class:`AsyncSessionManager`,
    :class:`AsyncSealedSessionManager`), so server-side and sealed-cookie managers plug in
    alike."""

    policy: Policy
    clock: Clock

    async def load(
        self, token: str | None, *, client_ip: str | None = None, user_agent: str | None = None
    ) -> Session: ...

    async def load_many(
        self,
        tokens: Sequence[str | None],
        *,
        client_ip: str | None = None,
        user_agent: str | None = None,
    ) -> list[Session]: ...

    async def save(self, session: Session) -> None: ...

    async def login(
        self,
        session: Session,
        user_id: str,
        *,
        carry: bool | Collection[str] = True,
        kind: Kind | None = None,
        remember: bool = False,
    ) -> str: ...

    async def rotate(self, session: Session, *, reauthenticated: bool = False) -> str: ...

    async def logout(self, session: Session) -> None: ...

    async def logout_other_sessions(self, session: Session) -> int: ...

    async def revoke_session(
        self, public_id: str, *, user_id: str | None = None, reason: str = "revoked"
    ) -> bool: ...

    async def close(self) -> None: ...


def build_async_backend(
    settings: Settings | None = None, **given: Unpack[Overrides]
) -> AsyncSessionBackend:
    """The one switch between server-side sessions and sealed cookies.

    ``settings`` (default: :func:`~coatcheck.config.read_settings` of the environment) say
    everything: ``session_mode``, the store, the policy, the cookie, the keys; an argument
    given here (:class:`~coatcheck.web.modes.Overrides`) wins over its setting.
    """
    from ..manager import AsyncSessionManager
    from ..sealed.manager import AsyncSealedSessionManager
    from ..stores.by_url import open_async_store

    plan = resolve(settings, given)
    if not plan.sealed:
        assert plan.store_url is not None
        return AsyncSessionManager(
            open_async_store(plan.store_url),
            plan.policy,
            log_key=plan.log_key,
            token_key=plan.token_key,
        )
    return AsyncSealedSessionManager(
        plan.sealed_keys,
        plan.policy,
        cookie=plan.cookie,
        store=open_async_store(plan.store_url) if plan.store_url else None,
        log_key=plan.log_key,
        opened_cache=plan.opened_cache,
    )
