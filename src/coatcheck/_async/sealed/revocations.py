"""Writing a user's revocation record (what it holds: :mod:`coatcheck.sealed.revocation`)."""

from __future__ import annotations

from ...core.errors import SessionGone
from ...sealed import revocation
from ..stores.base import AsyncStore

ATTEMPTS = 3


async def merge_revocation(
    store: AsyncStore, user_id: str, changes: dict[str, float], now: float, until: float
) -> None:
    """Merge ``changes`` into the user's revocation record, creating it if needed; the
    record must outlive ``until`` (when every session it refuses is dead anyway)."""
    key = revocation.revocation_key(user_id)
    for attempt in range(1, ATTEMPTS + 1):
        current = await store.load(key)
        try:
            if current is None:
                await store.insert(revocation.new_record(user_id, changes, now, until))
            else:
                plan = revocation.plan(current, changes, now, until)
                if plan is not None:
                    await store.update(key, plan)
            return
        except SessionGone:
            if attempt == ATTEMPTS:
                raise
            # Expired and purged between our load and update: create it afresh.
        except Exception:
            # A concurrent first revocation of this user inserted the record first (each
            # store reports the duplicate its own way): merge into theirs. Anything else
            # (the store is down) is raised as it came.
            if current is not None or attempt == ATTEMPTS:
                raise
            if await store.load(key) is None:
                raise
