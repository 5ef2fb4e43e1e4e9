"""``GET /v1/events``: revocations as server-sent events, so that a client caching validations
drops an entry the moment its session or API token ends (docs/service.md, "Events").

Each event: ``id: N``, ``event: revoked``, ``data: {"id": public id, "digest_prefix": ...}``.
A ``reset`` event (data ``{}``) comes first when ``Last-Event-ID`` is older than the oldest
event kept: events were missed, the client must flush its cache. An event this version cannot
read is sent as a ``reset`` with its id, for the same reason (and the stream moves past it).
Without ``Last-Event-ID`` the stream starts after the newest event. A ``: keep-alive`` comment
every 15 seconds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import StreamingResponse

from ...core.errors import StoreUnavailable
from ..context import ServiceContext
from .auth import introspect_scope
from .replies import problems
from .state import context_of

KEEP_ALIVE_SECONDS: Final = 15.0
RETRY_MILLISECONDS: Final = 2000  # how soon an EventSource reconnects after the stream ends
MEDIA_TYPE: Final = "text/event-stream"

router = APIRouter(prefix="/v1", tags=["events"], dependencies=[Depends(introspect_scope)])

LastEventId = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        pattern=r"^[0-9]{1,18}$",
        description="the id of the last event received: the stream resumes after it",
    ),
]


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "An endless stream of `revoked` events (and `reset`, see above)",
            "content": {MEDIA_TYPE: {"schema": {"type": "string"}}},
        },
        **problems("unauthorized", "validation-error", "store-unavailable"),
    },
    summary="Revocations as server-sent events, resumable with Last-Event-ID",
)
async def events(request: Request, last_event_id: LastEventId = None) -> StreamingResponse:
    ctx = context_of(request)
    # Read before answering: a store that is down is a 503, not a stream that ends at once.
    if last_event_id is None:
        start, reset = await _newest_id(ctx), False
    else:
        start, reset = await _resume(ctx, int(last_event_id))
    return StreamingResponse(
        _stream(ctx, request, start, reset),
        media_type=MEDIA_TYPE,
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


async def _resume(ctx: ServiceContext, last: int) -> tuple[int, bool]:
    """Where a resumed stream starts, and whether events after ``last`` may have been lost:
    the oldest kept one is beyond ``last + 1``, or none are kept although the client saw
    some (the event log was emptied)."""
    oldest = await ctx.events.oldest_id()
    if oldest is None:
        return 0, last > 0
    return last, last + 1 < oldest


async def _newest_id(ctx: ServiceContext) -> int:
    """The newest event's id (0 when there is none)."""
    return await ctx.events.newest_id() or 0


async def _stream(
    ctx: ServiceContext, request: Request, last: int, reset: bool
) -> AsyncIterator[str]:
    """The stream's text; ends when the client goes away or the store fails (the client then
    reconnects with Last-Event-ID and misses nothing)."""
    yield f"retry: {RETRY_MILLISECONDS}\n\n"
    if reset:
        yield "event: reset\ndata: {}\n\n"
    while not await request.is_disconnected():
        try:
            batch = await ctx.events.wait(last, KEEP_ALIVE_SECONDS)
        except StoreUnavailable:
            return
        if batch.last_id == last:
            yield ": keep-alive\n\n"
            continue
        for event in batch.events:
            yield f"id: {event.id}\nevent: revoked\ndata: {event.payload()}\n\n"
        if batch.unreadable:  # what ended is unknown: the client must flush, and move on
            yield f"id: {batch.last_id}\nevent: reset\ndata: {{}}\n\n"
        last = batch.last_id
