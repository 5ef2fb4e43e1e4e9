"""API tokens kept in the session store as session records of kind ``api``.

Every store therefore supports them as it supports sessions: hashed keys, public ids,
tombstones that tell a revoked token from an unknown one, per-user listing and revocation, and
conditional writes. The session policy's idle and absolute limits do not apply: a token lives
until its own expiry (or is revoked). The format and the rules: :mod:`coatcheck.core.apitokens`.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..core import events
from ..core.apitokens import (
    API_TOKEN_KEY,
    ApiTokenError,
    ApiTokenInfo,
    check_expires_in,
    check_name,
    check_scopes,
    is_api_token,
    looks_like_api_token,
    metadata,
    stored_expiry,
)
from ..core.errors import InvalidSessionId, SessionConflict, SessionGone
from ..core.policy import Verdict, WritePlan
from ..core.records import (
    Patch,
    Revocation,
    RevokeReason,
    SessionRecord,
    parse_public_id,
)
from ..core.tokens import SessionKey
from .manager import AsyncSessionManager

NO_CHANGE = Patch()


class AsyncApiTokens:
    """Create, check, list and revoke API tokens on a session manager's store.

    touch_interval: a check writes the token's last-used time only when the stored one is
        older than this many seconds (or the token was never used): at most one small
        conditional write per token per interval, however many requests it makes.
    """

    def __init__(self, manager: AsyncSessionManager, *, touch_interval: float = 60) -> None:
        if not touch_interval >= 0:
            raise ApiTokenError(f"touch_interval must be >= 0, got {touch_interval!r}")
        self.manager = manager
        self.touch_interval = touch_interval

    async def create(
        self,
        user_id: str,
        name: str,
        *,
        scopes: Iterable[str] = (),
        expires_in: float | None = None,
    ) -> tuple[str, ApiTokenInfo]:
        """A new token for ``user_id``: the token text (shown once, never stored) and its info.

        Raises :class:`ApiTokenError` for a bad name, scope or expiry. Exempt from the
        per-user session limit (kind ``api``)."""
        if not isinstance(user_id, str) or not user_id:
            raise ApiTokenError("an API token needs a user id (a non-empty string)")
        name = check_name(name)
        granted = check_scopes(scopes)
        lifetime = check_expires_in(expires_in)
        manager = self.manager
        now = manager.clock()
        expires_at = None if lifetime is None else now + lifetime
        token, key = (await manager.token_codec()).new_api_token(user_id)
        record = SessionRecord(
            key=key,
            user_id=user_id,
            kind="api",
            created_at=now,
            last_seen_at=now,
            authenticated_at=now,
            expires_at=stored_expiry(now, expires_at),
            data={API_TOKEN_KEY: metadata(name, granted, expires_at)},
        )
        await manager.store.insert(record)
        manager.events.about(events.CREATED, record)
        return token, ApiTokenInfo.from_record(record)

    async def check(self, token: object) -> tuple[Verdict, ApiTokenInfo | None]:
        """What a presented token is: ``VALID`` with its info; ``UNKNOWN`` (malformed, never
        issued, or expired and cleaned up), ``REVOKED`` (its tombstone says so) or
        ``EXPIRED_ABSOLUTE`` with None. A malformed token costs no store call. A valid one
        has its last-used time written at most once per ``touch_interval``."""
        key = await self._key(token)
        if key is None:
            return Verdict.UNKNOWN, None
        manager = self.manager
        record = await manager.store.load(key)
        if record is None or not is_api_token(record):
            return await self._missing(key), None
        now = manager.clock()
        info = ApiTokenInfo.from_record(record)
        if info.expired(now):
            await manager.store.delete(key)
            manager.events.about(events.EXPIRED, record, reason=Verdict.EXPIRED_ABSOLUTE.value)
            return Verdict.EXPIRED_ABSOLUTE, None
        if info.last_used_at is None or now - record.last_seen_at >= self.touch_interval:
            plan = WritePlan(NO_CHANGE, now, record.expires_at)
            try:
                version = await manager.store.update(key, plan, expected_version=record.version)
            except SessionConflict:
                pass  # another request touched it first: that write stands for both
            except SessionGone:
                return await self._missing(key), None  # revoked meanwhile
            else:
                record.last_seen_at, record.version = now, version
                info = ApiTokenInfo.from_record(record)
        return Verdict.VALID, info

    async def verify(self, token: object, *, scope: str | None = None) -> ApiTokenInfo | None:
        """The info of a valid token that carries ``scope`` (if given), else None."""
        verdict, info = await self.check(token)
        if info is None or verdict is not Verdict.VALID:
            return None
        if scope is not None and scope not in info.scopes:
            return None
        return info

    async def list_user(self, user_id: str) -> list[ApiTokenInfo]:
        """The user's unexpired, unrevoked API tokens, oldest first (no sessions)."""
        now = self.manager.clock()
        return [info for _, info in await self._infos(user_id, now) if not info.expired(now)]

    async def revoke(
        self, token_id: str, *, user_id: str | None = None, reason: str = "revoked"
    ) -> bool:
        """End the API token with this id (``ApiTokenInfo.id``); False if there was none.

        Only an API token is ever ended, never a session with that id: the store checks the
        kind in the same atomic step as the delete. With ``user_id`` only that user's token (a
        "your tokens" page; tombstone ``revoked_by_user``); without, anyone's (an operator;
        tombstone ``revoked_by_admin``). ``reason`` goes to the event log. A value that is not
        shaped like an id is False."""
        try:
            wanted = parse_public_id(token_id)
        except InvalidSessionId:
            return False
        return await self.manager.revoke_session(
            wanted.hex(), user_id=user_id, reason=reason, api_token=True
        )

    async def revoke_token(self, token: str, *, reason: str = "revoked") -> ApiTokenInfo | None:
        """End the API token given as text; the info of what was ended, or None if it was not
        a live API token (tombstone ``revoked_by_admin``)."""
        key = await self._key(token)
        if key is None:
            return None
        record = await self.manager.store.load(key)
        if record is None or not is_api_token(record):
            return None
        now = self.manager.clock()
        ended = await self._end(record, "revoked_by_admin", reason, now)
        return ApiTokenInfo.from_record(record) if ended else None

    async def revoke_user(self, user_id: str, *, reason: str = "revoked") -> list[ApiTokenInfo]:
        """End every API token of a user (their sessions stay); what was ended."""
        now = self.manager.clock()
        ended = []
        for record, info in await self._infos(user_id, now):
            if await self._end(record, "revoked_by_admin", reason, now):
                ended.append(info)
        return ended

    # -- the steps --------------------------------------------------------------------------

    async def _key(self, token: object) -> SessionKey | None:
        """The store key of a well-formed API token; None (no store call) for anything else."""
        if not looks_like_api_token(token):
            return None
        return (await self.manager.token_codec()).parse_api_token(token)

    async def _missing(self, key: SessionKey) -> Verdict:
        """A token whose record is gone: REVOKED while its tombstone lasts, else UNKNOWN."""
        tombstone = await self.manager.store.tombstone(key)
        if tombstone is None or tombstone.expires_at <= self.manager.clock():
            return Verdict.UNKNOWN
        return Verdict.REVOKED

    async def _infos(self, user_id: str, now: float) -> list[tuple[SessionRecord, ApiTokenInfo]]:
        records = await self.manager.store.list_user(user_id, now)
        return [(r, ApiTokenInfo.from_record(r)) for r in records if is_api_token(r)]

    async def _end(self, record: SessionRecord, by: RevokeReason, reason: str, now: float) -> bool:
        """Delete one token's record, leaving a tombstone that says ``by``."""
        gone = await self.manager.store.delete(record.key, revoked=Revocation(by, now))
        if gone:
            self.manager.events.about(events.REVOKED, record, reason=reason)
        return gone
