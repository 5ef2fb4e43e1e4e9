"""The sealed-cookie session manager: the session travels in the cookie, encrypted.

It offers the interface the web layer uses from :class:`~coatcheck.AsyncSessionManager`
(``policy``, ``clock``, ``load``, ``load_many``, ``inspect``, ``save``, ``login``, ``rotate``,
``logout``, ``logout_other_sessions``, ``revoke_user``, ``create``, ``close``;
``revoke_session`` refuses clearly), so switching modes changes one constructor and no
application code.

Where server mode writes a record, this manager sets ``session.token`` to a new sealed value
and the web layer sends it as the cookie. Only a user's revocation record (optional, see
:mod:`coatcheck.sealed.revocation`) ever touches a store.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Sequence
from dataclasses import replace
from typing import Any

from ...cookies import MAX_COOKIE_BYTES, CookieSettings, CookieTooLarge
from ...core import events
from ...core.clock import Clock, system_clock
from ...core.errors import ConfigError, SessionTooLarge
from ...core.policy import Policy, Verdict
from ...core.records import Kind, SessionRecord, encode_data
from ...core.session import Session
from ...sealed import revocation
from ...sealed.codec import (
    OPENED_CACHE_SIZE,
    KeyRing,
    OpenedValues,
    SealedRecord,
    is_well_formed,
    seal,
    unseal,
)
from ...sealed.successor import sealed_record, successor
from ..stores.base import AsyncStore
from .revocations import merge_revocation

# Max-Age values below this (any real session's) never make a Set-Cookie longer than the one
# the quick size check measures.
_MAX_AGE_BOUND = 10**20


class AsyncSealedSessionManager:
    """Sessions sealed into the cookie with AES-256-GCM; no store needed.

    keys: the key ring (first encrypts, all decrypt): a :class:`KeyRing`, a list of base64url
        keys or raw 32-byte keys, a comma-separated string, or None to read
        ``COATCHECK_SEALED_KEYS``.
    cookie: the same :class:`CookieSettings` the web layer uses. Its name is sealed into every
        value (a value moved to another cookie does not open) and its attributes count
        towards the 4096-byte limit checked at save time.
    store: optional; keeps per-user revocation records so that logout, rotation and
        "log out everywhere" of logged-in sessions hold even against a copied cookie. Costs
        one read by key per request of a logged-in session. Without it nothing can be revoked.
    opened_cache: how many recently sealed or opened cookie values to keep with their
        sessions, so that a cookie presented again skips base64, AES-GCM and the payload's
        checks (see :class:`~coatcheck.sealed.opened.OpenedValues`); 0 keeps none.
    """

    def __init__(
        self,
        keys: KeyRing | str | bytes | Iterable[str | bytes] | None = None,
        policy: Policy | None = None,
        *,
        cookie: CookieSettings | None = None,
        store: AsyncStore | None = None,
        clock: Clock = system_clock,
        log_key: bytes | None = None,
        opened_cache: int = OPENED_CACHE_SIZE,
    ) -> None:
        self.keys = KeyRing.of(keys)
        opened = OpenedValues(opened_cache)
        # None when off: a cache that keeps nothing would still hash and encode every value.
        self.opened = opened if opened.size else None
        self.policy = policy or Policy()
        if self.policy.max_sessions_per_user is not None:
            raise ConfigError(
                "max_sessions_per_user cannot be enforced in sealed cookie mode: no server "
                "keeps a list of a user's sessions to count; use server mode"
            )
        self.cookie = cookie or CookieSettings()
        self._room: tuple[CookieSettings | None, int] = (None, 0)  # see _value_room
        self.store = store
        self.clock = clock
        self.events = events.EventLog(log_key)

    # -- reading ----------------------------------------------------------------------------

    is_well_formed = staticmethod(is_well_formed)
    """Is a cookie value shaped like a sealed one (no decryption)? The web layer drops the
    rest among several cookies of one name before opening any."""

    async def inspect(
        self, token: object, *, client_ip: str | None = None
    ) -> tuple[Verdict, SessionRecord | None]:
        """What a presented cookie value is. Anything that does not open (junk, tampering,
        another key or cookie name) is ``UNKNOWN``, as is a revoked session."""
        verdict, record = self._open(token, client_ip)
        if record is None or record.user_id is None or self.store is None:
            return verdict, record  # nothing can revoke it
        stamp = await self.store.load(revocation.revocation_key(record.user_id))
        return self._unless_revoked(record, stamp)

    async def load(
        self,
        token: str | None,
        *,
        client_ip: str | None = None,
        user_agent: str | None = None,
    ) -> Session:
        """The session a cookie carries if it is live, else a new one with ``expired_reason``."""
        if not token:
            return Session(None, client_ip=client_ip, user_agent=user_agent)
        verdict, record = await self.inspect(token, client_ip=client_ip)
        return Session(record, verdict=verdict, client_ip=client_ip, user_agent=user_agent)

    async def load_many(
        self,
        tokens: Sequence[str | None],
        *,
        client_ip: str | None = None,
        user_agent: str | None = None,
    ) -> list[Session]:
        """:meth:`load` for each of several cookie values (several cookies of one name), in
        their order; the revocation records of the users they name are read in one store call.
        """
        opened = [self._open(token, client_ip) for token in tokens]
        users: dict[str, None] = {}  # the users named, in order, once each
        for _, record in opened:
            if record is not None and record.user_id is not None:
                users[record.user_id] = None
        stamps: dict[str | None, SessionRecord | None] = {}
        if users and self.store is not None:
            keys = [revocation.revocation_key(user) for user in users]
            stamps = dict(zip(users, await self.store.load_many(keys), strict=True))
        sessions = []
        for token, (verdict, record) in zip(tokens, opened, strict=True):
            if not token:  # no value at all: a plain new session, as load(None) gives
                sessions.append(Session(None, client_ip=client_ip, user_agent=user_agent))
                continue
            if record is not None and record.user_id in stamps:
                verdict, record = self._unless_revoked(record, stamps[record.user_id])
            session = Session(record, verdict=verdict, client_ip=client_ip, user_agent=user_agent)
            sessions.append(session)
        return sessions

    def _open(self, token: object, client_ip: str | None) -> tuple[Verdict, SealedRecord | None]:
        """The sealed record a value carries and the policy's verdict, before revocation."""
        record = unseal(self.keys, token, self.cookie.name, self.policy, self.opened)
        if record is None:
            return Verdict.UNKNOWN, None
        verdict = self.policy.verdict(record, self.clock(), client_ip)
        if verdict is not Verdict.VALID:
            self.events.refused(verdict, record)
            return verdict, None
        return verdict, record

    def _unless_revoked(
        self, record: SealedRecord, stamp: SessionRecord | None
    ) -> tuple[Verdict, SealedRecord | None]:
        if revocation.is_revoked(record, stamp):
            self.events.about(events.REFUSED, record, reason="revoked")
            return Verdict.UNKNOWN, None
        return Verdict.VALID, record

    # -- writing ----------------------------------------------------------------------------

    async def save(self, session: Session) -> None:
        """Re-seal when the cookie must change: data changed, or the touch interval passed
        (a read inside it produces no new cookie). Sets ``session.token`` to the new value.

        Raises :class:`SessionTooLarge` (nothing changed, the old cookie stays valid) when the
        cookie would exceed what browsers keep.
        """
        if session.ended:
            return
        old = sealed_record(session.record)
        now = self.clock()
        if old is None:
            if session.modified:
                record = successor(self.policy, session, session.snapshot(), user_id=None, now=now)
                self._adopt(session, record, self._seal(record), events.CREATED)
            return
        plan = self.policy.plan_write(old, session.patch, now)
        if plan is None:
            return
        data = plan.patch.apply_to(old.data)  # a copy even when only touched: writes are the rule
        record = old.written(data, now, plan.expires_at)
        self._adopt(session, record, self._seal(record), events.EXTENDED, level=logging.DEBUG)

    async def create(
        self,
        user_id: str | None,
        *,
        kind: Kind = "browser",
        data: dict[str, Any] | None = None,
        client_ip: str | None = None,
        user_agent: str | None = None,
        remember: bool = False,
    ) -> tuple[str, SessionRecord]:
        """Seal a new session directly (tests, scripts); returns the cookie value and record."""
        self.policy.check_remember(remember)
        session = Session(None, kind=kind, client_ip=client_ip, user_agent=user_agent)
        record = successor(
            self.policy,
            session,
            dict(data or {}),
            user_id=user_id,
            now=self.clock(),
            remember=remember,
        )
        return self._adopt(session, record, self._seal(record), events.CREATED), record

    async def login(
        self,
        session: Session,
        user_id: str,
        *,
        carry: bool | Collection[str] = True,
        kind: Kind | None = None,
        remember: bool = False,
    ) -> str:
        """Authenticate: a fresh session id and cookie. ``carry`` and ``remember`` as in server
        mode (a remembered session carries the flag in its sealed payload, so every process
        applies the policy's remember limits); data of a session that belonged to another user
        is never carried.

        The old cookie cannot be deleted: if it was logged in and a store is configured it is
        recorded as ended; an anonymous pre-login cookie stays a valid *anonymous* session.
        """
        self.policy.check_remember(remember)
        if session.user_id is not None and session.user_id != user_id:
            carry = False
        old = sealed_record(session.record)
        record = successor(
            self.policy,
            session,
            session.carried(carry),
            user_id=user_id,
            now=self.clock(),
            kind=kind,
            authenticated=True,
            remember=remember,
        )
        token = self._seal(record)
        if old is not None:
            await self._retire(old, events.ROTATED, "login")
        return self._adopt(session, record, token, events.LOGGED_IN)

    async def rotate(self, session: Session, *, reauthenticated: bool = False) -> str:
        """A new session id and cookie for the same user and data (privilege change, step-up)."""
        old = sealed_record(session.record)
        record = successor(
            self.policy,
            session,
            session.snapshot(),
            user_id=session.user_id,
            now=self.clock(),
            authenticated=reauthenticated,
            keep_created=not reauthenticated,
        )
        token = self._seal(record)
        if old is not None:
            await self._retire(old, events.ROTATED, "rotate")
        event = events.LOGGED_IN if reauthenticated else events.CREATED
        return self._adopt(session, record, token, event)

    async def logout(self, session: Session) -> None:
        """End this session: the web layer expires the cookie. A copy of the cookie kept
        elsewhere stays valid until its timeouts unless a store is configured (then a
        logged-in session is recorded as ended)."""
        old = sealed_record(session.record)
        if old is not None:
            await self._retire(old, events.REVOKED, "logout")
        session.record = None
        session.token = None
        session.ended = True

    async def logout_other_sessions(self, session: Session) -> int:
        """ "Log out everywhere else": stamp the user's "not before" with now, then re-issue
        this session with a fresh ``issued_at`` (same id, same absolute deadline) so it alone
        survives. Needs a store. Returns 0: sealed sessions cannot be counted."""
        current = sealed_record(session.record)
        if current is None or current.user_id is None:
            return 0
        store = self._require_store("logout_other_sessions")
        now = self.clock()
        reissued = replace(
            current,
            issued_at=now,
            last_seen_at=now,
            expires_at=self.policy.expires_at(current.created_at, now, current.remember),
        )
        token = self._seal(reissued)
        await self._not_before(store, current.user_id, now)
        # Not mark_saved: changes this request made to the data are still to be saved.
        session.record = reissued
        session.token = token
        self.events.emit(
            events.REVOKED, current.key, user_id=current.user_id, reason="logout_others"
        )
        return 0

    async def revoke_session(
        self, public_id: str, *, user_id: str | None = None, reason: str = "revoked"
    ) -> bool:
        """Not available in sealed mode: raises :class:`ConfigError` saying what to use."""
        raise ConfigError(
            "revoke_session (ending one session by its id) is not available in sealed cookie "
            "mode: no server keeps a list of a user's sealed sessions, so they have no ids to "
            "pick from; end the current one with logout, every other one with "
            "logout_other_sessions, or all of a user's with revoke_user (docs/sealed.md)"
        )

    async def revoke_user(self, user_id: str, *, reason: str = "revoked") -> int:
        """End every sealed session of a user issued until now (account disabled, password
        reset). Needs a store. Returns 0: sealed sessions cannot be counted."""
        store = self._require_store("revoke_user")
        await self._not_before(store, user_id, self.clock())
        self.events.emit(events.REVOKED, None, user_id=user_id, reason=f"{reason}: not before")
        return 0

    async def close(self) -> None:
        if self.store is not None:
            await self.store.close()

    # -- helpers ----------------------------------------------------------------------------

    def _seal(self, record: SealedRecord) -> str:
        """The cookie value for ``record``, or SessionTooLarge if its Set-Cookie would not fit."""
        value = seal(self.keys, record, self.cookie.name, self.opened)
        # Sealed now: every record sealed here was last seen at this moment. The web layer sends
        # a remembered session's cookie with Max-Age whatever the settings say.
        policy = self.policy
        max_age = policy.cookie_max_age(record.created_at, record.last_seen_at, record.remember)
        settings, room = self._room
        if settings is not self.cookie:
            room = self._value_room()
        if len(value) <= room and max_age < _MAX_AGE_BOUND:
            return value
        header = self.cookie.set_cookie("", max_age, persistent=record.remember or None)
        size = len(header.encode()) + len(value)
        if size > MAX_COOKIE_BYTES:
            raise SessionTooLarge(
                f"the sealed session cookie would be {size} bytes (its Set-Cookie header; "
                f"{len(encode_data(record.data).encode())} bytes of session data as JSON), "
                f"over the {MAX_COOKIE_BYTES} bytes browsers keep; nothing was sent and the "
                "previous cookie stays as it was. Store less in the session, or use server "
                "mode (the session manager with a store: the cookie then holds only a token)"
            )
        return value

    def _value_room(self) -> int:
        """The longest value that surely fits beside the cookie's attributes (only longer
        ones need the exact size of their header); kept until the settings change. Measured
        with Max-Age, which a remembered session's cookie has whatever the settings say."""
        try:
            attributes = len(self.cookie.set_cookie("", _MAX_AGE_BOUND, persistent=True).encode())
        except CookieTooLarge:  # the attributes alone are too long: every save says so
            attributes = MAX_COOKIE_BYTES + 1
        self._room = (self.cookie, MAX_COOKIE_BYTES - attributes)
        return self._room[1]

    def _adopt(
        self,
        session: Session,
        record: SealedRecord,
        token: str,
        event: str,
        *,
        level: int = logging.INFO,
    ) -> str:
        session.mark_saved(record)
        session.token = token
        session.kind = record.kind
        session.expired_reason = None
        self.events.about(event, record, level=level)  # derives the key only if logged
        return token

    async def _retire(self, record: SealedRecord, event: str, reason: str) -> None:
        """This session is over: record it as ended for its user, if there is a store."""
        if self.store is not None and record.user_id is not None:
            deadline = self.policy.absolute_deadline(record.created_at, record.remember)
            entry = {revocation.ended_entry(record): deadline}
            await merge_revocation(self.store, record.user_id, entry, self.clock(), deadline)
        self.events.about(event, record, reason=reason)

    async def _not_before(self, store: AsyncStore, user_id: str, now: float) -> None:
        """Refuse every session of the user issued before ``now`` (for as long as one could
        still be alive: one absolute lifetime, a remembered session's if remember me is on)."""
        changes = {revocation.NOT_BEFORE: now}
        until = self.policy.absolute_deadline(now, True)
        await merge_revocation(store, user_id, changes, self.clock(), until)

    def _require_store(self, operation: str) -> AsyncStore:
        if self.store is None:
            raise ConfigError(
                f"{operation} in sealed cookie mode needs a store for revocation records "
                "(AsyncSealedSessionManager(..., store=...)): a sealed cookie cannot be revoked "
                "one by one, only refused by a per-user 'not before' stamp; see docs/sealed.md"
            )
        return self.store
