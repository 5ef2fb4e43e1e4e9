"""The FastAPI example under a real uvicorn server: concurrency over HTTP and a real browser."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from servers import REDIS_HOST, REDIS_PORT, chromium, free_port, reachable, require_server

ROOT = Path(__file__).resolve().parents[2]


def serve(store_url: str) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "COATCHECK_STORE_URL": store_url}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            str(ROOT / "examples" / "fastapi_app"),
            "app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
    )
    try:
        for _ in range(200):
            if reachable("127.0.0.1", port, timeout=0.1):
                break
            if process.poll() is not None:
                pytest.fail(f"uvicorn exited with {process.returncode}")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def redis_site() -> Iterator[str]:
    require_server("redis", REDIS_HOST, REDIS_PORT)
    prefix = f"cctest:{secrets.token_hex(4)}:"
    yield from serve(f"redis://{REDIS_HOST}:{REDIS_PORT}/0?prefix={prefix}")
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)
    client.close()


@pytest.fixture
def sqlite_site(tmp_path: Path) -> Iterator[str]:
    yield from serve(f"sqlite:///{tmp_path}/sessions.db")


def test_100_concurrent_requests_each_keep_their_key(redis_site: str) -> None:
    with httpx.Client(base_url=redis_site) as client:
        token = client.get("/csrf").json()["csrf_token"]
        cookie = client.cookies["session"]

    async def hammer() -> list[int]:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(base_url=redis_site, limits=limits, timeout=30) as c:
            headers = {"x-csrf-token": token, "cookie": f"session={cookie}"}
            responses = await asyncio.gather(
                *(c.post(f"/keys/k{i}", headers=headers) for i in range(100))
            )
        return [r.status_code for r in responses]

    statuses = asyncio.run(hammer())
    assert statuses == [200] * 100
    with httpx.Client(base_url=redis_site, cookies={"session": cookie}) as client:
        keys = client.get("/keys").json()["keys"]
    assert sorted(keys) == sorted(f"k{i}" for i in range(100))


def test_a_real_browser_logs_in_cannot_read_the_cookie_and_logs_out(sqlite_site: str) -> None:
    with chromium() as browser:
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{sqlite_site}/me")
        assert "/login" in page.url, "an anonymous browser is sent to the login page"
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", "alice-password")
        page.click("button")
        page.wait_for_url("**/me")
        assert page.text_content("#user") == "alice"
        assert "session=" not in page.evaluate("document.cookie")
        jar = {c["name"]: c for c in context.cookies()}
        assert jar["session"]["httpOnly"] is True
        assert jar["session"]["sameSite"] == "Lax"
        assert jar["session"]["value"] not in page.content(), "the token is not in the page"
        page.click("text=Log out")
        page.wait_for_url(f"{sqlite_site}/")
        page.go_back()
        page.goto(f"{sqlite_site}/me")
        assert "/login" in page.url, "after logout /me sends the browser to log in again"
