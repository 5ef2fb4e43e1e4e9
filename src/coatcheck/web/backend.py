"""What the web layer needs from a session manager, so server-side and sealed-cookie
managers plug in alike."""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Protocol, TypedDict, Unpack

from ..config import Settings, read_settings
from ..config.settings import SEALED_CACHE, SESSION_MODE
from ..cookies import CookieSettings
from ..core.clock import Clock
from ..core.policy import Policy
from ..core.records import Kind
from ..core.session import Session
from ..core.tokens import is_well_formed
from ..stores import DEFAULT_URL
from .settings import cookie_settings


class SessionBackend(Protocol):
    """A synchronous session manager (``SessionManager``, ``SealedSessionManager``)."""

    policy: Policy
    clock: Clock

    def load(
        self, token: str | None, *, client_ip: str | None = None, user_agent: str | None = None
    ) -> Session: ...

    def load_many(
        self,
        tokens: Sequence[str | None],
        *,
        client_ip: str | None = None,
        user_agent: str | None = None,
    ) -> list[Session]: ...

    def save(self, session: Session) -> None: ...

    def login(
        self,
        session: Session,
        user_id: str,
        *,
        carry: bool | Collection[str] = True,
        kind: Kind | None = None,
        remember: bool = False,
    ) -> str: ...

    def rotate(self, session: Session, *, reauthenticated: bool = False) -> str: ...

    def logout(self, session: Session) -> None: ...

    def logout_other_sessions(self, session: Session) -> int: ...

    def revoke_session(
        self, public_id: str, *, user_id: str | None = None, reason: str = "revoked"
    ) -> bool: ...

    def close(self) -> None: ...


class AsyncSessionBackend(Protocol):
    """An asynchronous session manager (``AsyncSessionManager``, ``AsyncSealedSessionManager``)."""

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


def value_check(manager: object) -> Callable[[object], bool]:
    """How a backend's cookie values look, checked without I/O: a manager with its own format
    says so with an ``is_well_formed`` method (the sealed ones do); else server-mode tokens."""
    check = getattr(manager, "is_well_formed", None)
    return check if callable(check) else is_well_formed


class Overrides(TypedDict, total=False):
    """Arguments of the builders that win over their settings.

    mode: ``server`` keeps sessions in the store at ``store_url`` (else the SQLite default);
        ``sealed`` keeps them in the cookie, encrypted with ``sealed_keys``, keeps the sessions
        of ``opened_cache`` recent cookie values (1024 by default, 0 for none;
        docs/sealed.md), and uses the store only if one is configured, for
        logout-everywhere stamps.
    token_key: server mode's token key (docs/security.md, "The token key").
    """

    mode: str | None
    store_url: str | None
    policy: Policy | None
    cookie: CookieSettings | None
    sealed_keys: str | Sequence[str | bytes] | None
    opened_cache: int | str | None
    token_key: str | bytes | None


@dataclass(frozen=True, slots=True)
class _Plan:
    """What both builders make, resolved once from settings and explicit arguments."""

    sealed: bool
    store_url: str | None
    policy: Policy
    cookie: CookieSettings
    sealed_keys: str | Sequence[str | bytes] | None
    opened_cache: int
    token_key: str | bytes | None
    log_key: bytes | None


def _plan(settings: Settings | None, given: Overrides) -> _Plan:
    """Explicit arguments win over ``settings``, which default to the environment's."""
    from ..sealed.codec import OPENED_CACHE_SIZE

    chosen = read_settings(os.environ) if settings is None else settings
    mode, opened_cache = given.get("mode"), given.get("opened_cache")
    explicit = read_settings({SESSION_MODE: mode, SEALED_CACHE: opened_cache}, environ={})
    sealed = (explicit.session_mode if mode else chosen.session_mode) == "sealed"
    cache = explicit.sealed_cache if opened_cache is not None else chosen.sealed_cache
    url = given.get("store_url") or chosen.store_url
    policy, cookie = given.get("policy"), given.get("cookie")
    sealed_keys, token_key = given.get("sealed_keys"), given.get("token_key")
    return _Plan(
        sealed=sealed,
        store_url=url if url or sealed else DEFAULT_URL,
        policy=policy if policy is not None else chosen.policy,
        cookie=cookie if cookie is not None else cookie_settings(chosen),
        sealed_keys=sealed_keys if sealed_keys is not None else chosen.sealed_keys or None,
        opened_cache=OPENED_CACHE_SIZE if cache is None else cache,
        token_key=token_key if token_key is not None else chosen.token_key,
        log_key=chosen.log_key,
    )


def build_backend(settings: Settings | None = None, **given: Unpack[Overrides]) -> SessionBackend:
    """The one switch between server-side sessions and sealed cookies (synchronous).

    ``settings`` (default: :func:`~coatcheck.config.read_settings` of the environment) say
    everything: ``session_mode``, the store, the policy, the cookie, the keys; an argument
    given here (:class:`Overrides`) wins over its setting.
    """
    from .._sync.manager import SessionManager
    from ..sealed import SealedSessionManager
    from ..stores import open_store

    plan = _plan(settings, given)
    if not plan.sealed:
        assert plan.store_url is not None
        return SessionManager(
            open_store(plan.store_url), plan.policy, log_key=plan.log_key, token_key=plan.token_key
        )
    return SealedSessionManager(
        plan.sealed_keys,
        plan.policy,
        cookie=plan.cookie,
        store=open_store(plan.store_url) if plan.store_url else None,
        log_key=plan.log_key,
        opened_cache=plan.opened_cache,
    )


def build_async_backend(
    settings: Settings | None = None, **given: Unpack[Overrides]
) -> AsyncSessionBackend:
    """:func:`build_backend` for asyncio applications."""
    from .._async.manager import AsyncSessionManager
    from ..sealed import AsyncSealedSessionManager
    from ..stores import open_async_store

    plan = _plan(settings, given)
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
