"""The autosession door as it is meant to be used: a test server started as its own process
(enabled by its environment, nothing else) and a real browser logged in through the door."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import chromium, free_port, reachable

APP = textwrap.dedent(
    """
    import os

    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from coatcheck import AsyncSessionManager, open_async_store
    from coatcheck.cookies import development
    from coatcheck.testing import AutoSessionASGI
    from coatcheck.web import asgi
    from coatcheck.web.settings import WebSettings

    settings = WebSettings.build(cookie=development())
    manager = AsyncSessionManager(open_async_store(os.environ["COATCHECK_STORE_URL"]))


    async def me(request):
        state = await request.scope[asgi.SCOPE_KEY].load()
        return JSONResponse({"user": state.user_id})


    site = asgi.SessionMiddleware(Starlette(routes=[Route("/me", me)]), manager, settings)
    app = AutoSessionASGI(site, manager, ["alice"], settings=settings, bind_host="127.0.0.1")
    """
)


def start(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    """uvicorn on a free loopback port; its stderr goes to ``tmp_path/server.log``."""
    (tmp_path / "door_app.py").write_text(APP)
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "--app-dir", str(tmp_path), "door_app:app"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    with (tmp_path / "server.log").open("w") as log:
        process = subprocess.Popen(
            command,
            env={**env, "COATCHECK_STORE_URL": f"sqlite:///{tmp_path}/sessions.db"},
            stderr=log,
            text=True,
        )
    return process, port


def clean_env() -> dict[str, str]:
    names = ("COATCHECK_TESTING", "COATCHECK_ENV", "APP_ENV", "ENVIRONMENT", "ENV")
    return {k: v for k, v in os.environ.items() if k not in names}


@pytest.fixture
def door_site(tmp_path: Path) -> Iterator[str]:
    process, port = start(tmp_path, {**clean_env(), "COATCHECK_TESTING": "1"})
    try:
        for _ in range(200):
            if reachable("127.0.0.1", port, timeout=0.1):
                break
            if process.poll() is not None:
                log = (tmp_path / "server.log").read_text()
                pytest.fail(f"uvicorn exited with {process.returncode}: {log}")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_server_without_the_flag_refuses_to_start(tmp_path: Path) -> None:
    process, _ = start(tmp_path, clean_env())
    assert process.wait(timeout=60) != 0
    stderr = (tmp_path / "server.log").read_text()
    assert "TestingNotAllowed" in stderr
    assert "COATCHECK_TESTING is not set" in stderr


def test_server_declared_production_refuses_to_start(tmp_path: Path) -> None:
    env = {**clean_env(), "COATCHECK_TESTING": "1", "APP_ENV": "production"}
    process, _ = start(tmp_path, env)
    assert process.wait(timeout=60) != 0
    stderr = (tmp_path / "server.log").read_text()
    assert "APP_ENV is 'production'" in stderr


def test_a_real_browser_is_logged_in_through_the_door(door_site: str) -> None:
    with chromium() as browser:
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{door_site}/me")
        assert '"user":null' in page.inner_text("body")
        refused = context.request.post(
            f"{door_site}/__coatcheck__/autosession", data={"user": "mallory"}
        )
        assert refused.status == 403
        answer = context.request.post(
            f"{door_site}/__coatcheck__/autosession", data={"user": "alice"}
        )
        assert answer.status == 200
        assert answer.headers["cache-control"] == "no-store"
        token = {c["name"]: c for c in context.cookies()}["session"]["value"]
        assert token not in answer.text()
        page.goto(f"{door_site}/me")
        assert '"user":"alice"' in page.inner_text("body")
        assert page.evaluate("document.cookie") == ""  # HttpOnly
