"""Shared fixtures of the service tests: a service (API and pages) over a store URL, with a
fake clock and two service keys, reached in-process (httpx over ASGI) or through a real uvicorn
on a free loopback port.

* ``anyio_backend``: async tests run on asyncio (``@pytest.mark.anyio``).
* ``make_api``: async factory ``await make_api(store_url=None, **settings)`` -> ApiService (SQLite
  in the test's directory by default); every one made is closed afterwards.
* ``api_service``: one such service on SQLite.
* ``uvicorn_server(app)``: a context manager serving ``app`` on loopback; yields its base URL.
* ``service_keys(store_url)``: an admin and an introspect key made in the store beforehand (for
  a server whose event loop is not the test's).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from servers import free_port
from uvicorn_thread import running

from coatcheck import FakeClock
from coatcheck.service.app import create_app
from coatcheck.service.context import ServiceContext
from coatcheck.service.settings import ServiceSettings

BASE_URL = "http://service.test"
SERVER_START_DEADLINE = 20.0  # seconds uvicorn may take to come up


@dataclass
class ApiService:
    """A service app with its context, clock and keys (``admin_key``, ``introspect_key``)."""

    app: Any
    context: ServiceContext
    clock: FakeClock
    admin_key: str
    introspect_key: str
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def client(self, key: str | None = None, *, anonymous: bool = False) -> httpx.AsyncClient:
        """An in-process client sending ``key`` (default: the admin key; none if anonymous)."""
        headers = {} if anonymous else {"authorization": f"Bearer {key or self.admin_key}"}
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url=BASE_URL, headers=headers
        )
        self.clients.append(client)
        return client

    @property
    def admin(self) -> httpx.AsyncClient:
        return self.client()

    @property
    def introspector(self) -> httpx.AsyncClient:
        return self.client(self.introspect_key)


def service_settings(store_url: str, directory: Path, **overrides: Any) -> ServiceSettings:
    return ServiceSettings(store_url=store_url, data_dir=directory, **overrides)


async def make_keys(context: ServiceContext) -> tuple[str, str]:
    admin, _ = await context.service_keys.create("test-admin", "admin")
    introspect, _ = await context.service_keys.create("test-introspect", "introspect")
    return admin, introspect


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def make_api(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[ApiService]]]:
    made: list[ApiService] = []

    async def make(store_url: str | None = None, **overrides: Any) -> ApiService:
        url = store_url or f"sqlite:///{tmp_path}/service.db"
        settings = service_settings(url, tmp_path, **overrides)
        clock = FakeClock(float(int(time.time())))
        context = ServiceContext.build(settings, clock=clock)
        app = create_app(settings, context=context)
        admin, introspect = await make_keys(context)
        made.append(ApiService(app, context, clock, admin, introspect))
        return made[-1]

    yield make
    for service in made:
        for client in service.clients:
            await client.aclose()
        await service.context.close()


@pytest.fixture
async def api_service(make_api: Callable[..., Awaitable[ApiService]]) -> ApiService:
    return await make_api()


def service_keys(store_url: str, directory: Path) -> tuple[str, str]:
    """An admin and an introspect key, made in the store by a context of their own."""

    async def run() -> tuple[str, str]:
        context = ServiceContext.build(service_settings(store_url, directory))
        try:
            return await make_keys(context)
        finally:
            await context.close()

    return asyncio.run(run())


@contextmanager
def uvicorn_server(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread on a free loopback port; its base URL. The
    app's lifespan runs (so its context is closed when the server stops)."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    with running(server, port, SERVER_START_DEADLINE) as url:
        yield url
