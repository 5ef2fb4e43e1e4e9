"""A second service, for real: ``coatcheck serve`` in one process (SQLite in a fresh
directory), the Starlette app of remote_app.py with ``add_remote_sessions`` under uvicorn in
another, both on loopback. A login through the service's /login page is accepted by the
second service, and refused right after its revocation (no cache); an API token likewise."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from servers import free_port, stop_process
from service.test_serve_process import Servers, clean_env, cli, login, servers

from coatcheck.client import ServiceClient

HERE = Path(__file__).resolve().parent
PASSWORD = "second-service-password"
START_DEADLINE = 30.0
JSON = {"accept": "application/json"}

__all__ = ["servers"]  # the fixture, from the service's process tests


@pytest.fixture
def second_service(tmp_path: Path, servers: Servers) -> tuple[str, str, Path]:
    """``coatcheck serve`` from an empty directory, with the user alice: its URL, an admin
    service key, the directory."""
    service = servers.start(tmp_path)
    assert cli(tmp_path, "users", "add", "alice", stdin=f"{PASSWORD}\n").returncode == 0
    made = cli(tmp_path, "service-keys", "create", "second-service", "--scope", "admin")
    assert made.returncode == 0, made.stderr
    return service.url, made.stdout.strip(), tmp_path


def start_second_app(service_url: str, key: str, cwd: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**clean_env(), "REMOTE_SERVICE_URL": service_url, "REMOTE_SERVICE_KEY": key}
    log = (cwd / "second-app.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "remote_app:from_environment",
         "--app-dir", str(HERE), "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning"],
        cwd=cwd, env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_DEADLINE
    while True:
        if process.poll() is not None:
            pytest.fail(f"the second app exited:\n{(cwd / 'second-app.log').read_text()}")
        try:
            if httpx.get(f"{url}/public", headers=JSON, timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"the second app never answered:\n{(cwd / 'second-app.log').read_text()}")
        time.sleep(0.1)


@pytest.fixture
def second_app(second_service: tuple[str, str, Path]) -> Iterator[str]:
    process, url = start_second_app(*second_service)
    try:
        yield url
    finally:
        stop_process(process)


def test_a_login_on_the_service_is_accepted_until_revoked(
    second_service: tuple[str, str, Path], second_app: str
) -> None:
    service_url, key, _ = second_service
    browser = login(service_url, "alice", PASSWORD)
    cookie = browser.cookies.get("session")
    assert cookie, "the service's login set no development cookie named 'session'"
    headers = {**JSON, "cookie": f"session={cookie}"}

    me = httpx.get(f"{second_app}/me", headers=headers, timeout=10)
    assert me.status_code == 200, me.text
    assert me.json()["user"] == "alice" and me.json()["kind"] == "browser"

    with ServiceClient(service_url, key) as admin:
        assert admin.revoke_session(me.json()["id"])
    refused = httpx.get(f"{second_app}/me", headers=headers, timeout=10)
    assert refused.status_code == 401
    assert httpx.get(f"{second_app}/public", headers=headers, timeout=10).json() == {"user": None}


def test_an_api_token_is_accepted_until_revoked(
    second_service: tuple[str, str, Path], second_app: str
) -> None:
    _, _, directory = second_service
    made = cli(directory, "tokens", "create", "--user", "alice", "--name", "ci",
               "--scope", "repo:read")  # fmt: skip
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    headers = {**JSON, "authorization": f"Bearer {token}"}
    answer = httpx.get(f"{second_app}/repo", headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"user": "alice", "scopes": ["repo:read"]}
    listed = cli(directory, "tokens", "list", "--user", "alice", "--json")
    assert listed.returncode == 0, listed.stderr
    (listed_token,) = json.loads(listed.stdout)["tokens"]
    assert cli(directory, "tokens", "revoke", listed_token["id"]).returncode == 0
    assert httpx.get(f"{second_app}/repo", headers=headers, timeout=10).status_code == 401
