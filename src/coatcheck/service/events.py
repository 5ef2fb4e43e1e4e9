"""Revocation events: what ``GET /v1/events`` streams so that clients caching validations can
drop an entry the moment its session or API token ends.

An event names the ended session by its public id and the first 16 hex digits of its store
digest, never a token. Ids are integers that only grow; the store keeps at least the last
10,000 events (``EVENTS_KEPT``), and a client whose ``Last-Event-ID`` is older than
:meth:`RevocationEvents.oldest_id` must flush its cache (the stream's ``reset`` event).
A payload this version cannot read (a newer version's, or damaged) is skipped, but a wait
still reports how far it read (:class:`EventBatch`), so a reader moves past it instead of
reading it again and again.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Final

from ..core.records import parse_public_id
from .data.base import ServiceData, ServiceDataError

DIGEST_PREFIX_RE: Final = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True, slots=True)
class RevocationEvent:
    """One ended session or API token."""

    id: int
    public_id: str
    digest_prefix: str | None
    at: float

    def payload(self) -> str:
        """The stream's ``data:`` line: ``{"id": public id, "digest_prefix": ...}``."""
        return json.dumps({"id": self.public_id, "digest_prefix": self.digest_prefix})


def check_digest_prefix(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.hex()[:16]
    if not isinstance(value, str) or not DIGEST_PREFIX_RE.fullmatch(value):
        raise ServiceDataError(
            f"digest_prefix must be 16 lower-case hex digits or None, got {value!r:.40}"
        )
    return value


def _decode(event_id: int, raw: str) -> RevocationEvent | None:
    """The event, or None for a payload this version cannot read (skipped, not fatal)."""
    try:
        fields = json.loads(raw)
        prefix = fields.get("digest_prefix")
        return RevocationEvent(
            event_id,
            str(fields["id"]),
            None if prefix is None else str(prefix),
            float(fields.get("at", 0.0)),
        )
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def _decoded(rows: list[tuple[int, str]]) -> list[RevocationEvent]:
    events = [_decode(event_id, raw) for event_id, raw in rows]
    return [event for event in events if event is not None]


@dataclass(frozen=True, slots=True)
class EventBatch:
    """What one wait read: the readable events, oldest first, and how far it read.

    ``last_id`` is the highest id read, readable or not (the caller's own ``last_id`` when
    nothing was read): the next wait starts there. ``unreadable`` counts the payloads this
    version could not read; they are not in ``events``, and as any of them may have been a
    revocation, the event stream tells its client to flush."""

    events: tuple[RevocationEvent, ...]
    last_id: int
    unreadable: int = 0


class RevocationEvents:
    """Publish and read revocation events over a :class:`ServiceData`."""

    def __init__(self, data: ServiceData) -> None:
        self.data = data

    async def publish(
        self,
        public_id: str,
        digest_prefix: str | bytes | None = None,
        *,
        now: float | None = None,
    ) -> int:
        """The new event's id. ``public_id``: 16 hex digits; ``digest_prefix``: the first 16
        hex digits of the store digest (bytes are accepted and cut), or None."""
        text = parse_public_id(public_id).hex()
        at = time.time() if now is None else now
        payload = json.dumps(
            {"id": text, "digest_prefix": check_digest_prefix(digest_prefix), "at": at}
        )
        return await self.data.append_event(payload, at)

    async def after(self, last_id: int, limit: int = 100) -> list[RevocationEvent]:
        """The readable ones of the next ``limit`` events after ``last_id``, oldest first."""
        return _decoded(await self.data.events_after(last_id, limit))

    async def wait(self, last_id: int, timeout: float) -> EventBatch:  # noqa: ASYNC109 (spec 12's API)
        """The events after ``last_id`` as soon as there are any (readable or not), or an
        empty batch at ``last_id`` after ``timeout`` seconds."""
        rows = await self.data.wait_events(last_id, timeout)
        events = tuple(_decoded(rows))
        newest = rows[-1][0] if rows else last_id
        return EventBatch(events, newest, len(rows) - len(events))

    async def oldest_id(self) -> int | None:
        """The oldest kept event's id, or None when there are none."""
        return await self.data.oldest_event_id()

    async def newest_id(self) -> int | None:
        """The newest kept event's id, or None when there are none (one read)."""
        return await self.data.newest_event_id()
