"""Introspection look-ups coalesced into one store round trip per event-loop pass.

Without the introspection cache every ``POST /v1/sessions/introspect`` is one store look-up;
under many concurrent connections, many of them are started in the same pass of the event
loop. :class:`CoalescedInspections` gathers the calls that arrive while a batch is open (the
first call opens it and schedules its flush with ``loop.call_soon``, so the batch holds what
the loop runs before it gets there), and the flush answers the whole batch with one
:meth:`~coatcheck.AsyncSessionManager.inspect_many` (one ``load_many`` round trip). Each caller
gets exactly what ``inspect`` would have given it; a store error reaches every caller of the
batch as the same exception; a caller cancelled meanwhile is left out, or its answer dropped,
without disturbing the others.
"""

from __future__ import annotations

import asyncio
from typing import Final

from .._async.manager import AsyncSessionManager
from ..core.policy import Verdict
from ..core.records import SessionRecord

COALESCED_KINDS: Final = frozenset({"postgresql"})
"""Store kinds whose look-ups are coalesced. Measured (docs/performance.md, "Coalesced
lookups"): on PostgreSQL one ``load_many`` saves a pool lease and a query per call; the Redis
store already sends concurrent commands down one connection, and coalescing there cost more
(an extra loop pass, a pipeline) than it saved. The embedded stores were not measured."""

MAX_BATCH: Final = 64
"""Tokens in one round trip at most; a call arriving at a full batch opens the next one."""

Answer = tuple[Verdict, SessionRecord | None]


class _Batch:
    """The calls gathered for one flush, on the loop that runs it."""

    __slots__ = ("client_ips", "futures", "loop", "tokens")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.tokens: list[str] = []
        self.client_ips: list[str | None] = []
        self.futures: list[asyncio.Future[Answer]] = []


class CoalescedInspections:
    """``sessions.inspect`` for concurrent callers, answered in batches of at most
    ``max_batch`` tokens; with ``coalesce=False``, each call is a plain ``inspect``."""

    def __init__(
        self, sessions: AsyncSessionManager, *, max_batch: int = MAX_BATCH, coalesce: bool = True
    ) -> None:
        self.sessions = sessions
        self.max_batch = max_batch
        self.coalesce = coalesce
        self._open: _Batch | None = None
        self._running: set[asyncio.Task[None]] = set()  # kept referenced until done

    async def inspect(self, token: str, client_ip: str | None = None) -> Answer:
        """What ``sessions.inspect(token, client_ip=client_ip, data=False)`` says, looked up
        together with the other calls of this loop pass (the service answers with a
        session's facts, never its data: the store leaves the data unread)."""
        if not self.coalesce:
            return await self.sessions.inspect(token, client_ip=client_ip, data=False)
        loop = asyncio.get_running_loop()
        batch = self._open
        if batch is None or batch.loop is not loop or len(batch.tokens) >= self.max_batch:
            batch = self._open = _Batch(loop)
            loop.call_soon(self._flush, batch)
        future: asyncio.Future[Answer] = loop.create_future()
        batch.tokens.append(token)
        batch.client_ips.append(client_ip)
        batch.futures.append(future)
        return await future

    def _flush(self, batch: _Batch) -> None:
        """Close the batch and start its look-up (callers cancelled already are left out)."""
        if self._open is batch:
            self._open = None
        wanted = [i for i, future in enumerate(batch.futures) if not future.done()]
        if not wanted:
            return
        task = batch.loop.create_task(
            self._answer(
                [batch.tokens[i] for i in wanted],
                [batch.client_ips[i] for i in wanted],
                [batch.futures[i] for i in wanted],
            )
        )
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _answer(
        self,
        tokens: list[str],
        client_ips: list[str | None],
        futures: list[asyncio.Future[Answer]],
    ) -> None:
        try:
            answers = await self.sessions.inspect_many(tokens, client_ips=client_ips, data=False)
        except asyncio.CancelledError:  # the loop is shutting down: so are its callers
            for future in futures:
                future.cancel()
            raise
        except Exception as exc:  # every caller of the batch gets it
            for future in futures:
                if not future.done():
                    future.set_exception(exc)
            return
        for future, answer in zip(futures, answers, strict=True):
            if not future.done():
                future.set_result(answer)
