"""Fixtures of the client tests: the real service (``coatcheck.service.app.create_app`` on
SQLite in the test's directory, a fake clock, an admin and an introspect key), reached
in-process over httpx's ASGI transport or served by uvicorn on a free loopback port, and a
loopback proxy that can cut the revocation stream.

* ``service``: in-process (``service.http`` is an ``httpx.AsyncClient`` on the app, counting
  its requests); async tests only.
* ``served``: a real server in a thread; ``served.url``, ``served.clock``.
* ``proxied``: ``served`` behind a :class:`~client.proxy.StreamProxy` (``proxied.url``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from service.conftest import make_keys, service_keys, service_settings, uvicorn_server

from coatcheck import FakeClock
from coatcheck.service.app import create_app
from coatcheck.service.context import ServiceContext

from .proxy import StreamProxy

BASE_URL = "http://service.test"
PATIENCE = 20.0  # seconds a background step (an event, a reconnection) may take at most


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Counter:
    """Requests an httpx client sent, by path (an event hook: counted, not timed)."""

    paths: list[str] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> None:
        self.paths.append(request.url.path)

    async def hook(self, request: httpx.Request) -> None:
        self(request)

    def count(self, path: str = "/v1/sessions/introspect") -> int:
        return self.paths.count(path)


@dataclass
class InProcess:
    """The service app with its context, clock and keys, and a counted in-process client."""

    app: Any
    context: ServiceContext
    clock: FakeClock
    admin_key: str
    introspect_key: str
    http: httpx.AsyncClient
    requests: Counter


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[InProcess]:
    settings = service_settings(f"sqlite:///{tmp_path}/service.db", tmp_path)
    clock = FakeClock(float(int(time.time())))
    context = ServiceContext.build(settings, clock=clock)
    app = create_app(settings, context=context)
    admin, introspect = await make_keys(context)
    counter = Counter()
    http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), event_hooks={"request": [counter.hook]}
    )
    try:
        yield InProcess(app, context, clock, admin, introspect, http, counter)
    finally:
        await http.aclose()
        await context.close()


@dataclass
class Served:
    """The service on a real loopback port (its own thread and event loop)."""

    url: str
    clock: FakeClock
    admin_key: str
    introspect_key: str
    store_url: str


@contextmanager
def serve(directory: Path, **overrides: Any) -> Iterator[Served]:
    """The service with these settings on SQLite in ``directory``, on a loopback port."""
    store_url = f"sqlite:///{directory}/service.db"
    admin, introspect = service_keys(store_url, directory)
    settings = service_settings(store_url, directory, **overrides)
    clock = FakeClock(float(int(time.time())))
    app = create_app(settings, context=ServiceContext.build(settings, clock=clock))
    with uvicorn_server(app) as url:
        yield Served(url, clock, admin, introspect, store_url)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    with serve(tmp_path) as running:
        yield running


@dataclass
class Proxied:
    served: Served
    proxy: StreamProxy

    @property
    def url(self) -> str:
        return self.proxy.url


@pytest.fixture
def proxied(served: Served) -> Iterator[Proxied]:
    port = int(served.url.rsplit(":", 1)[1])
    with StreamProxy(port) as proxy:
        yield Proxied(served, proxy)


def wait_until(ready: Callable[[], bool], what: str) -> None:
    """Block until ``ready()`` (a background step done), failing after ``PATIENCE``."""
    deadline = time.monotonic() + PATIENCE
    while not ready():
        if time.monotonic() > deadline:
            pytest.fail(f"still waiting for {what}")
        time.sleep(0.01)


async def until(ready: Callable[[], bool], what: str) -> None:
    """:func:`wait_until` for async tests (the event loop keeps running meanwhile)."""
    deadline = time.monotonic() + PATIENCE
    while not ready():
        if time.monotonic() > deadline:
            pytest.fail(f"still waiting for {what}")
        await anyio.sleep(0.01)
