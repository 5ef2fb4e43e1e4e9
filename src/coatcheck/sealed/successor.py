"""The sealed record that follows a session's current one: after a login, a rotation, or the
first save of a new session. Pure: the manager seals and sends it."""

from __future__ import annotations

from typing import Any

from ..core.policy import Policy
from ..core.records import Kind, SessionRecord
from ..core.session import Session
from .codec import USER_AGENT_CHARS, SealedRecord, new_sid


def successor(
    policy: Policy,
    session: Session,
    data: dict[str, Any],
    *,
    user_id: str | None,
    now: float,
    kind: Kind | None = None,
    authenticated: bool = False,
    keep_created: bool = False,
    remember: bool | None = None,
) -> SealedRecord:
    """A new sealed session (new id) following ``session``'s current one, if any.
    ``remember`` None keeps the current one's flag (a rotation)."""
    old = sealed_record(session.record)
    keep = keep_created and old is not None
    created = old.created_at if keep and old else now
    user_agent = session.user_agent or (old.user_agent if old else None)
    if remember is None:
        remember = old is not None and old.remember
    return SealedRecord(
        user_id=user_id,
        kind=kind or session.kind,
        created_at=created,
        last_seen_at=now,
        authenticated_at=now if authenticated else (old.authenticated_at if old else None),
        expires_at=policy.expires_at(created, now, remember),
        data=data,
        sid_text=new_sid(),
        issued_at=old.issued_at if keep and old else now,
        client_ip=session.client_ip or (old.client_ip if old else None),
        user_agent=user_agent[:USER_AGENT_CHARS] if user_agent else None,
        remember=remember,
    )


def sealed_record(record: SessionRecord | None) -> SealedRecord | None:
    """The session's record, which a sealed cookie manager loaded (else a TypeError)."""
    if record is None or isinstance(record, SealedRecord):
        return record
    raise TypeError("this session was not loaded by a sealed cookie manager")
