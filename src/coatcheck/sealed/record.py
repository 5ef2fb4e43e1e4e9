"""The session record a sealed cookie carries, and its session id."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from ..core.records import Kind, SessionRecord
from ..core.tokens import SessionKey, sha256, unkeyed_user_shard
from .b64 import b64url_decode

SID_BYTES = 16
USER_AGENT_CHARS = 200  # enough to tell devices apart; full strings would eat the 4 KB budget


@dataclass(slots=True, kw_only=True, init=False)
class _SealedFields(SessionRecord):
    """The fields of :class:`SealedRecord` (a dataclass drops a property named like a field, so
    its ``key`` property lives in the subclass)."""

    # Derived, never passed in (so ``dataclasses.replace`` cannot make it disagree with the
    # session id); compared through sid_text and user_id.
    key: SessionKey = field(init=False, compare=False)
    sid_text: str
    issued_at: float


class SealedRecord(_SealedFields):
    """A session record that lives in a cookie.

    sid_text: the session id, 16 random bytes as canonical unpadded base64url (22
        characters), as the cookie carries it; names this session in logs and per-session
        revocation. ``sid`` gives the bytes.
    issued_at: when this chain of cookies began (creation, login, re-authentication, or the
        re-issue after "log out other sessions"); kept across touches and plain rotation, and
        compared with a user's "not before" stamp. Unlike ``created_at`` it never extends the
        absolute lifetime.
    key: derived from the session id and user (see :func:`sealed_key`) so everything that
        expects a store key keeps working; computed on first use, as most requests never
        read it.
    """

    __slots__ = ("_derived_key",)

    def __init__(
        self,
        user_id: str | None,
        kind: Kind,
        created_at: float,
        last_seen_at: float,
        authenticated_at: float | None,
        expires_at: float,
        data: dict[str, Any],
        sid_text: str,
        issued_at: float,
        client_ip: str | None = None,
        user_agent: str | None = None,
        version: int = 1,
        remember: bool = False,
    ) -> None:
        """Written out so that the per-request constructions can pass arguments by position:
        the generated keyword-only ``__init__`` costs twice as much to call."""
        self.user_id = user_id
        self.kind = kind
        self.created_at = created_at
        self.last_seen_at = last_seen_at
        self.authenticated_at = authenticated_at
        self.expires_at = expires_at
        self.data = data
        self.sid_text = sid_text
        self.issued_at = issued_at
        self.client_ip = client_ip
        self.user_agent = user_agent
        self.version = version
        self.remember = remember
        self._derived_key: SessionKey | None = None

    @property
    def key(self) -> SessionKey:  # type: ignore[override]  # read-only: derived from the id
        """Derived when first read: hashing the session id would cost more than the rest of a
        read that never logs or revokes with it."""
        key = self._derived_key
        if key is None:
            key = self._derived_key = sealed_key(self.sid, self.user_id)
        return key

    @property
    def sid(self) -> bytes:
        """The session id's 16 bytes."""
        return b64url_decode(self.sid_text)

    def written(self, data: dict[str, Any], now: float, expires_at: float) -> SealedRecord:
        """This session after one more write (a plain constructor call: ``dataclasses.replace``
        costs several microseconds on this per-request path)."""
        return SealedRecord(
            self.user_id,
            self.kind,
            self.created_at,
            now,
            self.authenticated_at,
            expires_at,
            data,
            self.sid_text,
            self.issued_at,
            self.client_ip,
            self.user_agent,
            self.version + 1,
            self.remember,
        )


def new_sid() -> str:
    """A new session id as its text (``token_urlsafe`` is canonical unpadded base64url)."""
    return secrets.token_urlsafe(SID_BYTES)


def sealed_key(sid: bytes, user_id: str | None) -> SessionKey:
    """The store-shaped key of a sealed session (nothing is stored under it, and it never
    leaves the server: the cookie is encrypted, so its shard need not be keyed)."""
    shard = unkeyed_user_shard(user_id) if user_id is not None else sid[:4]
    return SessionKey(shard, sha256(b"coatcheck-sealed-session\0" + sid))
