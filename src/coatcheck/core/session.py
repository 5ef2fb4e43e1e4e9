"""The session a request works with: dict-like, remembering exactly what the request changed."""

from __future__ import annotations

from collections.abc import Collection, Iterator, MutableMapping
from typing import Any

from .apitokens import stored_expiry
from .errors import CoatcheckError
from .policy import Verdict
from .records import Kind, Patch, SessionRecord, decode_value, encode_value
from .tokens import SessionKey

NO_CHANGE = Patch()
_MISSING: Any = object()  # get() found no such key


class SessionReadOnly(CoatcheckError, RuntimeError):
    """A write to the session of a request authenticated by an API token (bearer)."""


class Session(MutableMapping[str, Any]):
    """Session data for one request.

    Reads see the loaded record plus this request's own changes. Every assignment is checked
    for JSON right away (so the error points at the line that set it) and recorded in a patch;
    the manager saves that patch once, atomically, at the end of the request.
    """

    read_only = False
    """True for a :class:`BearerSession`: nothing may be written, nothing is saved."""
    scopes: tuple[str, ...] | None = None
    """The scopes of the API token behind a bearer session; None for a cookie session."""
    token_id: str | None = None
    """The public id of the API token behind a bearer session; None for a cookie session."""

    def __init__(
        self,
        record: SessionRecord | None,
        *,
        token: str | None = None,
        verdict: Verdict | None = None,
        kind: Kind = "browser",
        client_ip: str | None = None,
        user_agent: str | None = None,
    ) -> None:
        self.record = record
        self.token = token
        self.kind: Kind = record.kind if record else kind
        self.client_ip = client_ip
        self.user_agent = user_agent
        self.expired_reason: Verdict | None = verdict if verdict is not Verdict.VALID else None
        self._set: dict[str, str] = {}
        self._deleted: set[str] = set()
        self.ended = False

    @property
    def is_new(self) -> bool:
        """True until the session exists in the store."""
        return self.record is None

    @property
    def key(self) -> SessionKey | None:
        return self.record.key if self.record else None

    @property
    def user_id(self) -> str | None:
        return self.record.user_id if self.record else None

    @property
    def authenticated_at(self) -> float | None:
        return self.record.authenticated_at if self.record else None

    @property
    def patch(self) -> Patch:
        if not (self._set or self._deleted):
            return NO_CHANGE
        return Patch(dict(self._set), frozenset(self._deleted))

    @property
    def modified(self) -> bool:
        return bool(self._set or self._deleted)

    def __getitem__(self, key: str) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        """``Mapping.get`` without raising and catching a KeyError for a missing key: CSRF,
        flash and login look-ups miss on most requests."""
        if key in self._set:
            return decode_value(self._set[key])
        if key in self._deleted or self.record is None:
            return default
        return self.record.data.get(key, default)

    def __setitem__(self, key: str, value: Any) -> None:
        self._set[key] = encode_value(key, value)
        self._deleted.discard(key)

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self._set.pop(key, None)
        self._deleted.add(key)

    def __contains__(self, key: object) -> bool:
        if key in self._set:
            return True
        if key in self._deleted or self.record is None:
            return False
        return key in self.record.data

    def __iter__(self) -> Iterator[str]:
        base = self.record.data if self.record else {}
        yield from (k for k in base if k not in self._deleted and k not in self._set)
        yield from self._set

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def clear(self) -> None:
        """Delete every key (recorded key by key, so concurrent writers keep theirs)."""
        for key in list(self):
            del self[key]

    def carried(self, carry: bool | Collection[str]) -> dict[str, Any]:
        """The data a login moves to the new session: all (True), none (False) or named keys."""
        if carry is True:
            return self.snapshot()
        if carry is False:
            return {}
        return {k: self[k] for k in carry if k in self}

    def snapshot(self) -> dict[str, Any]:
        """The data as this request sees it, as a plain dict."""
        return {k: self[k] for k in self}

    def mark_saved(self, record: SessionRecord) -> None:
        """Called by the manager after a successful save: the patch is now in the store."""
        self.record = record
        self._set.clear()
        self._deleted.clear()

    def __repr__(self) -> str:
        who = self.user_id if self.user_id is not None else "anonymous"
        return f"<Session {who} kind={self.kind} new={self.is_new} modified={self.modified}>"


class BearerSession(Session):
    """The read-only session of a request authenticated by an API token: its user, kind
    ``api``, the token's scopes, no data. Built by ``bearer_session`` (coatcheck's web layer);
    never saved, and every write raises :class:`SessionReadOnly`."""

    read_only = True

    def __init__(self, record: SessionRecord, *, scopes: tuple[str, ...], token_id: str) -> None:
        super().__init__(record)
        self.scopes = scopes
        self.token_id = token_id

    def __setitem__(self, key: str, value: Any) -> None:
        raise _read_only()

    def __delitem__(self, key: str) -> None:
        raise _read_only()

    def clear(self) -> None:
        raise _read_only()


_NO_KEY = SessionKey(b"", b"")  # a bearer session names no session record


def bearer_session(
    user_id: str,
    *,
    scopes: Collection[str],
    token_id: str,
    created_at: float,
    expires_at: float | None,
) -> Session:
    """The one way to build the read-only session of a request authenticated by an API
    token: the token's user, kind ``api``, its scopes and public id, no data. Its
    ``authenticated_at`` is the token's creation (what recent-login guards judge)."""
    record = SessionRecord(
        key=_NO_KEY,
        user_id=user_id,
        kind="api",
        created_at=created_at,
        last_seen_at=created_at,
        authenticated_at=created_at,
        expires_at=stored_expiry(created_at, expires_at),
    )
    return BearerSession(record, scopes=tuple(scopes), token_id=token_id)


def _read_only() -> SessionReadOnly:
    return SessionReadOnly(
        "this request is authenticated by an API token (Authorization: Bearer): its session is "
        "read-only, so nothing can be stored in it; keep per-client state elsewhere"
    )
