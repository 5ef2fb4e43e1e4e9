"""What the web layer needs from a session manager, so server-side and sealed-cookie
managers plug in alike."""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Sequence
from typing import Protocol

from ..cookies import CookieSettings
from ..core.clock import Clock
from ..core.errors import ConfigError
from ..core.policy import Policy
from ..core.records import Kind
from ..core.session import Session
from ..core.tokens import is_well_formed
from ..stores import STORE_URL_ENV


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


MODE_ENV = "COATCHECK_SESSION_MODE"
MODES = ("server", "sealed")
SEALED_CACHE_ENV = "COATCHECK_SEALED_CACHE"


def _mode(mode: str | None) -> str:
    chosen = (mode or os.environ.get(MODE_ENV) or "server").strip().lower()
    if chosen not in MODES:
        raise ConfigError(f"session mode must be 'server' or 'sealed', got {chosen!r} ({MODE_ENV})")
    return chosen


def _opened_cache(value: int | str | None) -> int:
    """The sealed manager's opened-values cache size: given, else ``COATCHECK_SEALED_CACHE``,
    else the default; a whole number, 0 turns it off."""
    from ..config import optional_int
    from ..sealed.codec import OPENED_CACHE_SIZE

    raw = os.environ.get(SEALED_CACHE_ENV) if value is None else value
    chosen = optional_int({SEALED_CACHE_ENV: raw}, SEALED_CACHE_ENV, None)
    return OPENED_CACHE_SIZE if chosen is None else chosen


def _url(store_url: str | None) -> str | None:
    return store_url or os.environ.get(STORE_URL_ENV) or None


def build_backend(
    *,
    mode: str | None = None,
    store_url: str | None = None,
    policy: Policy | None = None,
    cookie: CookieSettings | None = None,
    sealed_keys: str | Sequence[str | bytes] | None = None,
    opened_cache: int | str | None = None,
    token_key: str | bytes | None = None,
) -> SessionBackend:
    """The one switch between server-side sessions and sealed cookies (synchronous).

    ``mode`` (or ``COATCHECK_SESSION_MODE``): ``server`` keeps sessions in the store at
    ``store_url`` (or ``COATCHECK_STORE_URL``, else the SQLite default); ``sealed`` keeps them
    in the cookie, encrypted with ``sealed_keys`` (or ``COATCHECK_SEALED_KEYS``), keeps the
    sessions of ``opened_cache`` recent cookie values (or ``COATCHECK_SEALED_CACHE``; 1024 by
    default, 0 for none; docs/sealed.md), and uses the store only if one is configured, for
    logout-everywhere stamps. ``token_key`` (or ``COATCHECK_TOKEN_KEY``, else the store's own):
    server mode's token key (docs/security.md, "The token key").
    """
    from .._sync.manager import SessionManager
    from ..sealed import SealedSessionManager
    from ..stores import DEFAULT_URL, open_store

    url = _url(store_url)
    if _mode(mode) == "server":
        return SessionManager(open_store(url or DEFAULT_URL), policy, token_key=token_key)
    store = open_store(url) if url else None
    return SealedSessionManager(
        sealed_keys, policy, cookie=cookie, store=store, opened_cache=_opened_cache(opened_cache)
    )


def build_async_backend(
    *,
    mode: str | None = None,
    store_url: str | None = None,
    policy: Policy | None = None,
    cookie: CookieSettings | None = None,
    sealed_keys: str | Sequence[str | bytes] | None = None,
    opened_cache: int | str | None = None,
    token_key: str | bytes | None = None,
) -> AsyncSessionBackend:
    """:func:`build_backend` for asyncio applications."""
    from .._async.manager import AsyncSessionManager
    from ..sealed import AsyncSealedSessionManager
    from ..stores import DEFAULT_URL, open_async_store

    url = _url(store_url)
    if _mode(mode) == "server":
        return AsyncSessionManager(
            open_async_store(url or DEFAULT_URL), policy, token_key=token_key
        )
    store = open_async_store(url) if url else None
    return AsyncSealedSessionManager(
        sealed_keys, policy, cookie=cookie, store=store, opened_cache=_opened_cache(opened_cache)
    )
