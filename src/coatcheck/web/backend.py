"""What the web layer needs from a session manager, so server-side and sealed-cookie
managers plug in alike."""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from ..core.clock import Clock
from ..core.policy import Policy
from ..core.records import Kind
from ..core.session import Session


class SessionBackend(Protocol):
    """A synchronous session manager (``SessionManager``, ``SealedSessionManager``)."""

    policy: Policy
    clock: Clock

    def load(
        self, token: str | None, *, client_ip: str | None = None, user_agent: str | None = None
    ) -> Session: ...

    def save(self, session: Session) -> None: ...

    def login(
        self,
        session: Session,
        user_id: str,
        *,
        carry: bool | Collection[str] = True,
        kind: Kind | None = None,
    ) -> str: ...

    def rotate(self, session: Session, *, reauthenticated: bool = False) -> str: ...

    def logout(self, session: Session) -> None: ...

    def logout_other_sessions(self, session: Session) -> int: ...

    def close(self) -> None: ...


class AsyncSessionBackend(Protocol):
    """An asynchronous session manager (``AsyncSessionManager``, ``AsyncSealedSessionManager``)."""

    policy: Policy
    clock: Clock

    async def load(
        self, token: str | None, *, client_ip: str | None = None, user_agent: str | None = None
    ) -> Session: ...

    async def save(self, session: Session) -> None: ...

    async def login(
        self,
        session: Session,
        user_id: str,
        *,
        carry: bool | Collection[str] = True,
        kind: Kind | None = None,
    ) -> str: ...

    async def rotate(self, session: Session, *, reauthenticated: bool = False) -> str: ...

    async def logout(self, session: Session) -> None: ...

    async def logout_other_sessions(self, session: Session) -> int: ...

    async def close(self) -> None: ...
