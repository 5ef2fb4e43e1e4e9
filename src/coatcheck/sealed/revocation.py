"""Per-user revocation for sealed cookies, kept as one ordinary record in any coatcheck store.

A sealed cookie is valid wherever the key ring is: nothing on the server can be deleted to end
it. What *can* be kept is a small per-user record the manager reads when a logged-in sealed
session is presented. It holds, in its data:

* ``"not_before": t`` -- every session of the user whose chain of cookies was issued before
  ``t`` is refused ("log out everywhere", account disabled);
* ``"ended:<session id>": deadline`` -- that one session is refused (logout, rotation), until
  its absolute lifetime is over and the entry is pruned.

The record is written with the store contract's own ``insert``/``update``/``load``, so every
store works unchanged. Its key is derived from the user id (with the user's shard, so Redis
Cluster keeps it beside the user's data); its ``user_id`` is None so that server-mode per-user
operations (limits, ``delete_user``) never count or delete it; it expires by itself once every
session it refuses would be dead anyway. Pure: the manager does the I/O.
"""

from __future__ import annotations

from typing import Any, TypeGuard

from ..core.policy import WritePlan
from ..core.records import Patch, SessionRecord, encode_value
from ..core.tokens import SessionKey, sha256, unkeyed_user_shard
from .record import SealedRecord

NOT_BEFORE = "not_before"
ENDED = "ended:"


def revocation_key(user_id: str) -> SessionKey:
    """Where a user's revocation record lives (deterministic; no token maps to it).

    Its shard stays the unkeyed one: the key never reaches a browser, its digest names the user
    to a store reader anyway, and on Redis a new shard would move the key, so that records
    written before token version 2 were no longer found and revoked cookies opened again."""
    digest = sha256(b"coatcheck-sealed-revocation\0" + user_id.encode())
    return SessionKey(unkeyed_user_shard(user_id), digest)


def ended_entry(record: SealedRecord) -> str:
    return ENDED + record.sid_text


def is_revoked(record: SealedRecord, revocations: SessionRecord | None) -> bool:
    """Does the user's revocation record refuse this sealed session?"""
    if revocations is None:
        return False
    not_before = revocations.data.get(NOT_BEFORE)
    if _is_time(not_before) and record.issued_at < not_before:
        return True
    return ended_entry(record) in revocations.data


def new_record(user_id: str, changes: dict[str, float], now: float, until: float) -> SessionRecord:
    """A user's first revocation record."""
    return SessionRecord(
        key=revocation_key(user_id),
        user_id=None,
        kind="api",
        created_at=now,
        last_seen_at=now,
        authenticated_at=None,
        expires_at=until,
        data=dict(changes),
    )


def plan(
    current: SessionRecord, changes: dict[str, float], now: float, until: float
) -> WritePlan | None:
    """The patch that merges ``changes`` into an existing record, or None if nothing changes.

    Every value is a time and only ever moves forward, so a late concurrent write cannot pull
    a "not before" stamp back; entries whose session is past its lifetime are pruned.
    """
    data = current.data
    updates = {
        name: encode_value(name, value)
        for name, value in changes.items()
        if not _is_time(data.get(name)) or value > data[name]
    }
    stale = frozenset(
        name
        for name, value in data.items()
        if name.startswith(ENDED) and name not in changes and _is_time(value) and value <= now
    )
    expires_at = max(current.expires_at, until)
    if not updates and not stale and expires_at == current.expires_at:
        return None
    return WritePlan(Patch(updates, stale), now, expires_at)


def _is_time(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)
