"""The revocation stream (``GET /v1/events``) that keeps a :class:`ClientCache` honest.

The listening logic is written once, with asyncio (:class:`EventListener`). Each face of the
client runs it its own way: :class:`AsyncEventRunner` as a task on the application's event
loop, :class:`EventRunner` in a daemon thread with a private event loop (a blocking read could
not be interrupted when the client closes; a task can). ``scripts/unasync.py`` turns the async
client's ``AsyncEventRunner`` into ``EventRunner`` like every other ``Async`` name.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from .cache import ClientCache

log = logging.getLogger("coatcheck.client")

EVENTS_PATH = "/v1/events"
STREAM_TIMEOUT = 45.0  # three keep-alive comments (every 15 s) missed: the stream is dead
BACKOFF = (0.1, 5.0)  # first and longest wait between reconnection attempts, in seconds
POLL = 0.01  # how often wait_connected looks


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One server-sent event: its ``event`` type (``message`` if none) and ``data``."""

    event: str
    data: str
    id: str | None


class EventParser:
    """The text/event-stream format (WHATWG HTML, "server-sent events"), one line at a time."""

    def __init__(self) -> None:
        self.last_id: str | None = None
        self._event = ""
        self._data: list[str] = []

    def feed(self, line: str) -> StreamEvent | None:
        """Take one line (without its end); the event it completes, if any."""
        if not line:
            data, event = self._data, self._event or "message"
            self._data, self._event = [], ""
            return StreamEvent(event, "\n".join(data), self.last_id) if data else None
        if line.startswith(":"):
            return None  # a comment (the keep-alive)
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self.last_id = value
        return None


class StreamRefused(Exception):
    """The service answered the stream request with something else than 200."""


class EventListener:
    """Reads the stream for ever (until cancelled), reconnecting with backoff, and applies it
    to the cache: connected -> flushed and live; ``revoked`` -> drop by public id and digest
    prefix; ``reset`` -> flush; disconnected -> bypassed."""

    def __init__(
        self,
        cache: ClientCache,
        url: str,
        headers: Mapping[str, str],
        *,
        connect_timeout: float = 5.0,
        stream_timeout: float = STREAM_TIMEOUT,
        backoff: tuple[float, float] = BACKOFF,
    ) -> None:
        self.cache = cache
        self.url = url
        self._headers = dict(headers)
        self._timeout = httpx.Timeout(connect_timeout, read=stream_timeout)
        self._backoff = backoff
        self.last_event_id: str | None = None
        self.connections = 0
        self.events = 0

    def __repr__(self) -> str:
        state = "connected" if self.cache.live else "disconnected"
        return f"<EventListener {self.url} {state} last_event_id={self.last_event_id}>"

    async def serve(self) -> None:
        """:meth:`run` on a connection of the stream's own (apart from the request pool, where
        it would hold one place for ever); httpx's default settings."""
        async with httpx.AsyncClient() as http:
            await self.run(http)

    async def run(self, http: httpx.AsyncClient) -> None:
        """Listen for ever (until cancelled), reconnecting with backoff."""
        delay = self._backoff[0]
        failing = False
        while True:
            try:
                await self._listen(http)
                failing = False
                delay = self._backoff[0]
            except (httpx.HTTPError, StreamRefused) as exc:
                level = logging.DEBUG if failing else logging.WARNING
                log.log(level, "revocation stream down (%s); client cache bypassed", _why(exc))
                failing = True
            finally:
                self.cache.disconnected()
            await asyncio.sleep(random.uniform(delay / 2, delay))  # noqa: S311  # jitter only
            delay = min(delay * 2, self._backoff[1])

    async def _listen(self, http: httpx.AsyncClient) -> None:
        headers = {**self._headers, "accept": "text/event-stream", "cache-control": "no-cache"}
        if self.last_event_id is not None:
            headers["last-event-id"] = self.last_event_id
        async with http.stream("GET", self.url, headers=headers, timeout=self._timeout) as answer:
            if answer.status_code != 200:
                raise StreamRefused(f"HTTP {answer.status_code}")
            parser = EventParser()
            parser.last_id = self.last_event_id
            self.cache.connected()
            self.connections += 1
            log.info("revocation stream connected; client cache live")
            async for line in answer.aiter_lines():
                event = parser.feed(line)
                if event is not None:
                    self.apply(event)

    def apply(self, event: StreamEvent) -> None:
        """One event: ``revoked`` drops what it names, ``reset`` (or anything unreadable)
        flushes; other types are ignored."""
        self.events += 1
        if event.event == "revoked":
            named = _revoked(event.data)
            if named is None:
                log.warning("unreadable revocation event %s; client cache flushed", event.id)
                self.cache.flush()
            else:
                self.cache.drop(public_id=named[0], prefix=named[1])
        elif event.event == "reset":
            self.cache.flush()
        if event.id is not None:
            self.last_event_id = event.id


def _revoked(data: str) -> tuple[str | None, str | None] | None:
    """The public id and digest prefix a ``revoked`` event names, or None."""
    try:
        body = json.loads(data)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    public_id, prefix = body.get("id"), body.get("digest_prefix")
    if not isinstance(public_id, str) or not isinstance(prefix, str | None):
        return None
    return public_id, prefix


def _why(exc: Exception) -> str:
    return str(exc) if isinstance(exc, StreamRefused) else type(exc).__name__


class AsyncEventRunner:
    """The listener as a task on the running event loop (the asyncio client's face)."""

    def __init__(self, listener: EventListener) -> None:
        self.listener = listener
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        """Start listening (from code running on the loop); later calls do nothing."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.listener.serve())

    async def wait_connected(self, wait: float) -> bool:
        """Wait until the stream is connected (True) or ``wait`` seconds pass (False)."""
        self.start()
        deadline = time.monotonic() + wait
        while not self.listener.cache.live:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(POLL)
        return True

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.listener.cache.disconnected()


class EventRunner:
    """The listener in a daemon thread with an event loop of its own (the blocking client's
    face); :meth:`stop` cancels it from any thread."""

    def __init__(self, listener: EventListener) -> None:
        self.listener = listener
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = threading.Event()

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        """Start the thread; later calls do nothing."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._main, name="coatcheck-client-events", daemon=True
                )
                self._thread.start()

    def _main(self) -> None:
        asyncio.run(self._listen())

    async def _listen(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._ready.set()
        with contextlib.suppress(asyncio.CancelledError):
            await self.listener.serve()

    def wait_connected(self, wait: float) -> bool:
        """Wait until the stream is connected (True) or ``wait`` seconds pass (False)."""
        self.start()
        deadline = time.monotonic() + wait
        while not self.listener.cache.live:
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL)
        return True

    def stop(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._ready.wait()
            loop, task = self._loop, self._task
            if loop is not None and task is not None:
                with contextlib.suppress(RuntimeError):  # the loop already closed
                    loop.call_soon_threadsafe(task.cancel)
            thread.join()
            self._ready.clear()
        self.listener.cache.disconnected()
