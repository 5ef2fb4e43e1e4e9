"""The session manager's operator actions: revoking, listing, purging and counting sessions.

:class:`AsyncOperatorActions` is a base of :class:`~coatcheck.AsyncSessionManager`, kept apart
so that the request path (load, save, login, rotate, logout) in ``manager.py`` reads alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core import events
from ..core.clock import Clock
from ..core.errors import ConfigError, InvalidToken
from ..core.events import EventLog
from ..core.policy import Policy, Verdict
from ..core.records import Revocation, RevokeReason, SessionRecord, Tombstone, parse_public_id
from ..core.session import Session
from ..core.tokens import SessionKey, TokenCodec, is_well_formed
from ..stores.base import DEFAULT_PURGE_BATCH
from .stores.base import AsyncStore


class AsyncOperatorActions:
    """Ending sessions on purpose and looking at them; the manager supplies the state below."""

    store: AsyncStore
    policy: Policy
    clock: Clock
    events: EventLog
    _tokens: TokenCodec | None

    if TYPE_CHECKING:

        async def token_codec(self) -> TokenCodec: ...

    async def revocation(self, token: object) -> Tombstone | None:
        """Why and when the session of a revoked token ended (its tombstone), until the session
        would have expired; None for any other token (live, expired, rotated, unknown)."""
        if not is_well_formed(token):
            return None
        try:
            key = (self._tokens or await self.token_codec()).parse(token)
        except InvalidToken:
            return None
        return await self._revoked(key)

    async def _revoked(self, key: SessionKey) -> Tombstone | None:
        tombstone = await self.store.tombstone(key)
        if tombstone is None or tombstone.expires_at <= self.clock():
            return None
        return tombstone

    async def revoke(self, token: str, *, reason: str = "revoked") -> bool:
        """End the session a token belongs to; False if there was none. An operator's act: its
        tombstone says ``revoked_by_admin`` (``reason`` goes to the event log)."""
        if not is_well_formed(token):
            return False
        key = (self._tokens or await self.token_codec()).parse(token)
        return await self.revoke_key(key, reason=reason)

    async def revoke_key(
        self,
        key: SessionKey,
        *,
        reason: str = "revoked",
        by: RevokeReason | None = "revoked_by_admin",
    ) -> bool:
        """End the session with this store key; ``by`` is what its tombstone says (None: leave
        none, e.g. for an expiry the application decides on its own)."""
        revoked = None if by is None else Revocation(by, self.clock())
        gone = await self.store.delete(key, revoked=revoked)
        if gone:
            self.events.emit(events.REVOKED, key, reason=reason)
        return gone

    async def revoke_session(
        self,
        public_id: str,
        *,
        user_id: str | None = None,
        reason: str = "revoked",
        api_token: bool | None = None,
    ) -> bool:
        """End the session with this public id (the ``id`` listings show); False if there was
        none. With ``user_id``, only a session of that user is ended (a "your sessions" page:
        a user can end their own sessions only); without, any (an operator). Its tombstone says
        ``revoked_by_user`` or ``revoked_by_admin`` accordingly. ``api_token`` False ends only
        a record that is not an API token, True only an API token (checked by the store in the
        same step as the delete); None, the default, whichever record has the id.

        Raises :class:`InvalidSessionId` for a value that is not shaped like a public id.
        """
        by: RevokeReason = "revoked_by_admin" if user_id is None else "revoked_by_user"
        key = await self.store.delete_by_public_id(
            parse_public_id(public_id),
            user_id=user_id,
            revoked=Revocation(by, self.clock()),
            api_token=api_token,
        )
        if key is None:
            return False
        self.events.emit(events.REVOKED, key, user_id=user_id, reason=reason)
        return True

    async def revoke_user(
        self, user_id: str, *, keep: SessionKey | None = None, reason: str = "revoked"
    ) -> int:
        """End every session of a user (or every other one, with ``keep``): an operator's act,
        ``revoked_by_admin`` in the tombstones."""
        return await self._end_user(user_id, keep, reason, "revoked_by_admin")

    async def logout_other_sessions(self, session: Session) -> int:
        """ "Log out everywhere else": every session of this user but this one (tombstones say
        ``revoked_by_user``)."""
        if session.record is None or session.user_id is None:
            return 0
        return await self._end_user(
            session.user_id, session.record.key, "logout_others", "revoked_by_user"
        )

    async def _end_user(
        self, user_id: str, keep: SessionKey | None, reason: str, by: RevokeReason
    ) -> int:
        revoked = Revocation(by, self.clock())
        count = await self.store.delete_user(user_id, keep=keep, revoked=revoked)
        self.events.emit(events.REVOKED, keep, user_id=user_id, reason=f"{reason}: {count} ended")
        return count

    async def revoke_all(self) -> int:
        """End every session of every user (incident response). Leaves no tombstones (their
        tokens are ``unknown`` afterwards) and keeps the ones already there."""
        count = await self.store.delete_all()
        self.events.emit(events.REVOKED, None, reason=f"revoke_all: {count} ended")
        return count

    async def list_user(self, user_id: str) -> list[SessionRecord]:
        """The user's live sessions, oldest first."""
        now = self.clock()
        return [
            r
            for r in await self.store.list_user(user_id, now)
            if self.policy.verdict(r, now) is Verdict.VALID
        ]

    async def purge(self, *, batch_size: int = DEFAULT_PURGE_BATCH) -> int:
        """Delete sessions whose stored expiry has passed, in batches; returns how many."""
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        return await self.store.purge_expired(self.clock(), batch_size=batch_size)

    async def count_active(self, since: float) -> int:
        """Live sessions written at or after ``since`` (a request inside the touch interval
        writes nothing, so "active" is accurate to ``policy.touch_interval``)."""
        return await self.store.count_active(since, self.clock())
