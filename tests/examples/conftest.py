"""Fixtures that run each example app for the shared behavioural suite (see example_sites)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from example_sites import APPS, BASE, EXAMPLES, Site, load_module
from starlette.testclient import TestClient

from coatcheck import FakeClock
from coatcheck.sealed import generate_key


@pytest.fixture(scope="session")
def django_application(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Django settings are per process: one SQLite file serves the whole run."""
    os.environ["COATCHECK_STORE_URL"] = f"sqlite:///{tmp_path_factory.mktemp('django')}/sessions.db"
    project = EXAMPLES / "django_project"
    sys.path.insert(0, str(project))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demosite.settings")
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()


@pytest.fixture(params=APPS)
def site(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Site]:
    clock = FakeClock(time.time())
    monkeypatch.setattr("coatcheck.core.clock.time", SimpleNamespace(time=clock))
    kind = request.param
    if kind == "django":
        application = request.getfixturevalue("django_application")
        yield Site(
            kind,
            lambda: httpx.Client(transport=httpx.WSGITransport(app=application), base_url=BASE),
            clock,
            application,
        )
        return
    monkeypatch.setenv("COATCHECK_STORE_URL", f"sqlite:///{tmp_path}/sessions.db")
    sealed = kind.endswith("-sealed")
    if sealed:
        monkeypatch.setenv("COATCHECK_SESSION_MODE", "sealed")
        monkeypatch.setenv("COATCHECK_SEALED_KEYS", generate_key())
        kind = kind.removesuffix("-sealed")
    if kind == "flask":
        module = load_module(EXAMPLES / "flask_app" / "app.py", f"flask_example_{id(tmp_path)}")
        site = Site(
            kind,
            lambda: httpx.Client(transport=httpx.WSGITransport(app=module.app), base_url=BASE),
            clock,
            module.app,
        )
        site.sealed = sealed
        yield site
        return
    module = load_module(EXAMPLES / "fastapi_app" / "app.py", f"fastapi_example_{id(tmp_path)}")
    clients: list[TestClient] = []

    def fastapi_client() -> TestClient:
        client = TestClient(module.app, base_url=BASE, follow_redirects=False)
        client.__enter__()
        clients.append(client)
        return client

    site = Site(kind, fastapi_client, clock)
    site.sealed = sealed
    yield site
    for client in clients:
        client.__exit__(None, None, None)
