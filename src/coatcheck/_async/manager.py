"""The session manager: token in, policy decision, one store write out."""

from __future__ import annotations

import copy
import logging
from collections.abc import Collection, Sequence
from typing import Any

from ..core import events
from ..core.clock import Clock, system_clock
from ..core.errors import InvalidToken, SessionGone
from ..core.policy import Policy, Verdict
from ..core.records import (
    Kind,
    Patch,
    Revocation,
    SessionRecord,
    encode_data,
    encode_value,
)
from ..core.session import Session
from ..core.tokens import SessionKey, TokenCodec, configured_token_key, is_well_formed
from .operations import AsyncOperatorActions
from .stores.base import AsyncStore


class AsyncSessionManager(AsyncOperatorActions):
    """Applies a :class:`Policy` to sessions kept in a store.

    One instance serves a whole application; it holds no per-request state. The operator
    actions (revoke, list, purge, count) come from :class:`AsyncOperatorActions`.

    token_key: the key that hides a user's id in their tokens (docs/security.md, "The token
        key"): 32 bytes, raw or URL-safe base64. Without it, ``COATCHECK_TOKEN_KEY``; without
        that, the store's own key, read (or created) on first use, so every process on one
        store agrees with no configuration.
    """

    def __init__(
        self,
        store: AsyncStore,
        policy: Policy | None = None,
        *,
        clock: Clock = system_clock,
        log_key: bytes | None = None,
        token_key: str | bytes | None = None,
    ) -> None:
        self.store = store
        self.policy = policy or Policy()
        self.clock = clock
        self.events = events.EventLog(log_key)
        # Checked now (a bad COATCHECK_TOKEN_KEY fails at start-up); the store's key is read
        # on first use instead, so that a manager can be built while its store is down.
        self._configured_key = configured_token_key(token_key)
        self._tokens: TokenCodec | None = None

    async def token_codec(self) -> TokenCodec:
        """The codec this manager mints and parses tokens with, resolved once; the store is
        given the same one (the Redis store names user indexes with it)."""
        tokens = self._tokens
        if tokens is None:
            tokens = TokenCodec(self._configured_key or await self.store.token_key())
            self.store.use_tokens(tokens)
            self._tokens = tokens
        return tokens

    async def inspect(
        self,
        token: object,
        *,
        client_ip: str | None = None,
        delete_expired: bool = True,
        data: bool = True,
    ) -> tuple[Verdict, SessionRecord | None]:
        """What a presented token is, without creating anything.

        Malformed tokens are refused before any store call. A token found expired is deleted
        from the store on the spot and reported with the reason (``delete_expired=False``
        only reports: for operators' look-ups, which must not change anything). A token whose
        session was revoked (logout, revocation, eviction) is ``REVOKED`` until the session
        would have expired (:meth:`revocation` says why and when): that costs a second look-up,
        taken only when the session is missing, and only here, not by :meth:`load`.

        ``data=False`` returns the record with empty ``data`` and has the store leave it unread
        where it can (``load(data=False)``): for callers who need the facts only, as the
        session service's introspection.
        """
        return await self._inspect(token, client_ip, delete_expired, True, data)

    async def inspect_many(
        self,
        tokens: Sequence[object],
        *,
        client_ips: Sequence[str | None] | None = None,
        delete_expired: bool = True,
        data: bool = True,
    ) -> list[tuple[Verdict, SessionRecord | None]]:
        """:meth:`inspect` for each of several tokens (``client_ips``: each token's, in the
        same order; none by default), with one store round trip (``load_many``) for all of
        them; the answers in the order of ``tokens``.

        Each answer is the one ``inspect`` gives, taken at one instant: malformed tokens never
        reach the store, an expired session is deleted and reported, a missing one costs its
        tombstone look-up. A token given twice is looked up once and judged once per client
        IP it comes with (the same answer for the same IP, as two calls at one instant get).
        ``data``: as for :meth:`inspect`.
        """
        ips = [None] * len(tokens) if client_ips is None else list(client_ips)
        if len(ips) != len(tokens):
            raise ValueError("inspect_many: one client_ip per token")
        return await self._inspect_all(tokens, ips, delete_expired, True, data)

    async def _inspect(
        self,
        token: object,
        client_ip: str | None,
        delete_expired: bool,
        explain: bool,
        data: bool = True,
    ) -> tuple[Verdict, SessionRecord | None]:
        """:meth:`inspect`; ``explain=False`` (a request) reports a missing session as
        ``UNKNOWN`` without looking for its tombstone."""
        key = await self._key(token)
        if key is None:
            return Verdict.UNKNOWN, None
        record = await self.store.load(key, data=data)
        return await self._judge(key, record, client_ip, delete_expired, explain, self.clock())

    async def _inspect_all(
        self,
        tokens: Sequence[object],
        client_ips: Sequence[str | None],
        delete_expired: bool,
        explain: bool,
        data: bool = True,
    ) -> list[tuple[Verdict, SessionRecord | None]]:
        """:meth:`_inspect` for each token (with its client IP), one store call for all: a
        single ``load`` when only one token reaches the store, else one ``load_many``. A
        token given twice is looked up once, and judged once per client IP it comes with."""
        keys: dict[str, SessionKey] = {}
        for token in tokens:
            if isinstance(token, str) and token not in keys:
                key = await self._key(token)
                if key is not None:
                    keys[token] = key
        wanted = list(keys.values())
        if len(wanted) == 1:  # the common case: the plain per-request look-up
            loaded = [await self.store.load(wanted[0], data=data)]
        else:
            loaded = await self.store.load_many(wanted, data=data) if wanted else []
        records = dict(zip(keys, loaded, strict=True))
        now = self.clock()
        judged: dict[tuple[str, str | None], tuple[Verdict, SessionRecord | None]] = {}
        answers: list[tuple[Verdict, SessionRecord | None]] = []
        for token, client_ip in zip(tokens, client_ips, strict=True):
            if not isinstance(token, str) or token not in keys:
                answers.append((Verdict.UNKNOWN, None))
                continue
            asked = (token, client_ip)
            if asked not in judged:
                judged[asked] = await self._judge(
                    keys[token], records[token], client_ip, delete_expired, explain, now
                )
            answers.append(judged[asked])
        return answers

    async def _key(self, token: object) -> SessionKey | None:
        """The store key a token names, or None for a malformed one (refused without a store
        call, even the first, which would otherwise read the store's token key)."""
        tokens = self._tokens
        if tokens is None:
            if not is_well_formed(token):
                return None
            tokens = await self.token_codec()
        try:
            return tokens.parse(token)
        except InvalidToken:
            return None

    async def _judge(
        self,
        key: SessionKey,
        record: SessionRecord | None,
        client_ip: str | None,
        delete_expired: bool,
        explain: bool,
        now: float,
    ) -> tuple[Verdict, SessionRecord | None]:
        """The verdict on what the store holds under ``key``: a missing session is ``REVOKED``
        while its tombstone lasts (looked for only with ``explain``), else ``UNKNOWN``; a
        found one is judged by the policy and refused unless it is valid."""
        if record is None:
            if explain and await self._revoked(key) is not None:
                return Verdict.REVOKED, None
            return Verdict.UNKNOWN, None
        verdict = self.policy.verdict(record, now, client_ip)
        if verdict is not Verdict.VALID:
            await self._refuse(verdict, record, delete_expired)
            return verdict, None
        return verdict, record

    async def _refuse(self, verdict: Verdict, record: SessionRecord, delete_expired: bool) -> None:
        """A found record that is not a live session: an expired one is deleted (unless only
        reported), and why it was refused is logged."""
        if verdict in (Verdict.EXPIRED_IDLE, Verdict.EXPIRED_ABSOLUTE) and delete_expired:
            await self.store.delete(record.key)
        self.events.refused(verdict, record)

    async def load(
        self,
        token: str | None,
        *,
        client_ip: str | None = None,
        user_agent: str | None = None,
    ) -> Session:
        """The session for a request: the stored one if the token is live, else a new one.

        A new session records why the token was not accepted in ``expired_reason`` and is not
        written anywhere until something is stored in it.
        """
        if not token:
            return Session(None, client_ip=client_ip, user_agent=user_agent)
        verdict, record = await self._inspect(token, client_ip, True, False)
        return Session(
            record,
            verdict=verdict,
            client_ip=client_ip,
            user_agent=user_agent,
        )

    async def load_many(
        self,
        tokens: Sequence[str | None],
        *,
        client_ip: str | None = None,
        user_agent: str | None = None,
    ) -> list[Session]:
        """:meth:`load` for each of several tokens (e.g. several cookies of one name), with one
        store call for all of them; the sessions in the order of ``tokens``.

        Each answer is exactly what ``load`` would give: empty and malformed tokens never
        reach the store, an expired session is deleted and reported. A token given twice is
        looked up once but gets a session object of its own each time.
        """
        answers = await self._inspect_all(tokens, [client_ip] * len(tokens), True, False)
        sessions = []
        for token, (verdict, record) in zip(tokens, answers, strict=True):
            if not token:
                sessions.append(Session(None, client_ip=client_ip, user_agent=user_agent))
                continue
            if record is not None and any(s.record is record for s in sessions):
                record = record.with_data(copy.deepcopy(record.data))  # the same token again
            sessions.append(
                Session(record, verdict=verdict, client_ip=client_ip, user_agent=user_agent)
            )
        return sessions

    async def save(self, session: Session) -> None:
        """Persist what the request changed, in one conditional write (or none at all).

        Raises :class:`SessionGone` if the session was ended elsewhere meanwhile: the change is
        not applied and the old session is not brought back.
        """
        if session.ended:
            return
        record = session.record
        now = self.clock()
        if record is None:
            if session.modified:
                await self._insert(session, session.snapshot(), user_id=None, now=now)
            return
        plan = self.policy.plan_write(record, session.patch, now)
        if plan is None:
            return
        patch = plan.patch
        merged = None
        if patch and _may_grow(record.data, patch):
            merged = patch.apply_to(record.data)
            self._check_size(merged)
        version = await self.store.update(record.key, plan)
        # The record was loaded for this request alone: update it in place.
        if merged is not None:
            record.data = merged
        elif patch:
            patch.apply_in_place(record.data)
        record.last_seen_at = plan.last_seen_at
        record.expires_at = plan.expires_at
        record.version = version
        session.mark_saved(record)
        self.events.about(events.EXTENDED, session.record, level=logging.DEBUG)

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
        """Create and store a session directly (CLI, service API, tests); returns the token once.
        ``remember`` as for :meth:`login`."""
        self.policy.check_remember(remember)
        session = Session(None, kind=kind, client_ip=client_ip, user_agent=user_agent)
        token = await self._insert(
            session, dict(data or {}), user_id=user_id, now=self.clock(), remember=remember
        )
        assert session.record is not None
        return token, session.record

    async def login(
        self,
        session: Session,
        user_id: str,
        *,
        carry: bool | Collection[str] = True,
        kind: Kind | None = None,
        remember: bool = False,
    ) -> str:
        """Authenticate: a new token and record, the old one dead at once (no fixation).

        ``carry`` chooses which data moves to the new session: all of it (``True``), none
        (``False``) or the named keys. Data of a session that belonged to another user is never
        carried. The per-user limit is enforced here, atomically with the rotation.

        ``remember=True`` ("remember me") gives this session the policy's longer remember
        limits (``Policy.remember_absolute_lifetime`` / ``remember_idle_timeout``), for as long
        as it lives, rotations included; a :class:`ConfigError` if the policy sets neither.
        """
        self.policy.check_remember(remember)
        if session.user_id is not None and session.user_id != user_id:
            carry = False
        data = session.carried(carry)
        return await self._insert(
            session,
            data,
            user_id=user_id,
            now=self.clock(),
            kind=kind,
            authenticated=True,
            remember=remember,
        )

    async def rotate(self, session: Session, *, reauthenticated: bool = False) -> str:
        """A new token for the same user and data (privilege change or re-authentication)."""
        return await self._insert(
            session,
            session.snapshot(),
            user_id=session.user_id,
            now=self.clock(),
            authenticated=reauthenticated,
            keep_created=not reauthenticated,
        )

    async def logout(self, session: Session) -> None:
        """End this session server-side; the token is dead immediately (and ``revoked``, with
        reason ``logout``, to :meth:`inspect`)."""
        if session.record is not None:
            await self.store.delete(session.record.key, revoked=Revocation("logout", self.clock()))
            self.events.about(events.REVOKED, session.record, reason="logout")
        session.record = None
        session.token = None
        session.ended = True

    async def close(self) -> None:
        await self.store.close()

    async def _insert(
        self,
        session: Session,
        data: dict[str, Any],
        *,
        user_id: str | None,
        now: float,
        kind: Kind | None = None,
        authenticated: bool = False,
        keep_created: bool = False,
        remember: bool | None = None,
    ) -> str:
        """Store a new record for ``session``, replacing its current one if any. ``remember``
        None keeps the current record's flag (a rotation)."""
        self._check_size(data)
        old = session.record
        if remember is None:
            remember = old is not None and old.remember
        token, key = (self._tokens or await self.token_codec()).new_token(user_id)
        created = old.created_at if keep_created and old is not None else now
        record = SessionRecord(
            key=key,
            user_id=user_id,
            kind=kind or session.kind,
            created_at=created,
            last_seen_at=now,
            authenticated_at=now if authenticated else (old.authenticated_at if old else None),
            expires_at=self.policy.expires_at(created, now, remember),
            client_ip=session.client_ip or (old.client_ip if old else None),
            user_agent=session.user_agent or (old.user_agent if old else None),
            data=data,
            remember=remember,
        )
        limit = self.policy.user_limit() if user_id is not None else None
        try:
            evicted = await self.store.insert(
                record, replaces=old.key if old else None, limit=limit
            )
        except SessionGone:
            if not authenticated:
                raise
            # The pre-login session ended meanwhile (expired, revoked): the user has just
            # proven who they are, so the login itself still stands, on a fresh record.
            evicted = await self.store.insert(record, limit=limit)
        for digest in evicted:
            self.events.emit(
                events.EVICTED, SessionKey(key.shard, digest), user_id=user_id, reason="limit"
            )
        if old is not None:
            self.events.about(events.ROTATED, old, reason="login" if authenticated else "rotate")
        self.events.about(events.LOGGED_IN if authenticated else events.CREATED, record)
        session.mark_saved(record)
        session.token = token
        session.kind = record.kind
        session.expired_reason = None
        return token

    def _check_size(self, data: dict[str, Any]) -> None:
        """Refuse data whose JSON is over ``Policy.max_data_bytes`` (O(size of the data))."""
        self.policy.check_data_size(len(encode_data(data).encode()))


def _may_grow(data: dict[str, Any], patch: Patch) -> bool:
    """Could this patch make the data's JSON longer? Only then is the whole size checked.

    O(size of the patch): deletions shrink, and a value replaced by one whose JSON is no
    longer cannot grow the document, which was within the limit when it was saved. So the
    common writes (a counter, a timestamp, a flag) skip encoding the whole session.
    """
    for name, text in patch.set.items():
        if name not in data or len(text.encode()) > len(encode_value(name, data[name]).encode()):
            return True
    return False
