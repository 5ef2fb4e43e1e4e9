"""Single-flight refresh across processes: two uvicorn processes on one session store
(PostgreSQL, Redis) get simultaneous requests of one session whose access token expired, with
refresh-token rotation on and a token endpoint slower than the lease. Exactly one refresh
reaches the provider, both requests succeed, the user stays logged in.

Only the first process serves the port the provider's client is registered for (logins come
back to it); the second serves the same, already logged-in session on a port of its own: the
test apps' development cookie is a host-only loopback cookie, sent to any port of 127.0.0.1.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from servers import free_port, reachable, stop_process

from coatcheck import SessionManager, open_store

from .apps import JSON, SERVER_START, Site, rp_settings
from .provider_harness import OidcProvider

TESTS = Path(__file__).resolve().parent.parent


@contextmanager
def app_process(provider: OidcProvider, store_url: str, port: int, log: Path) -> Iterator[str]:
    """tests/oidc/process_app.py served by a uvicorn process of its own on ``port``."""
    env = {
        **os.environ,
        "COATCHECK_STORE_URL": store_url,
        "COATCHECK_OIDC_ISSUER": provider.issuer,
        "COATCHECK_OIDC_CLIENT_ID": provider.client_id,
        "COATCHECK_OIDC_CLIENT_SECRET": provider.client_secret,
        "COATCHECK_OIDC_BASE_URL": provider.app.base,
        "COATCHECK_OIDC_REFRESH_SKEW": "1s",
        "COATCHECK_OIDC_REFRESH_LEASE": "1s",
    }
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "oidc.process_app:app",
        "--app-dir", str(TESTS), "--host", "127.0.0.1", "--port", str(port),
        "--log-level", "warning",
    ]  # fmt: skip
    with log.open("w") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + SERVER_START
        while not reachable("127.0.0.1", port):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the app process did not start:\n{log.read_text()}")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process, timeout=10)


@pytest.fixture(params=["postgres_url", "redis_url"])
def store_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(request.param))


@pytest.fixture
def sites(
    oidc_provider: OidcProvider, store_url: str, tmp_path: Path
) -> Iterator[tuple[Site, str]]:
    """The first process (the provider's registered port) as a Site, and the second's URL."""
    first_port, second_port = oidc_provider.app.port, free_port()
    sessions = SessionManager(open_store(store_url))
    try:
        with (
            app_process(oidc_provider, store_url, first_port, tmp_path / "first.log") as first,
            app_process(oidc_provider, store_url, second_port, tmp_path / "second.log") as second,
        ):
            settings = rp_settings(oidc_provider, refresh_lease=1.0)
            yield Site(first, oidc_provider, settings, store_url, sessions), second
    finally:
        sessions.close()


def test_two_processes_refresh_one_session_once(sites: tuple[Site, str]) -> None:
    site, second = sites
    browser, before = site.logged_in()
    other = browser.client.get(f"{second}/", headers=JSON)
    assert other.json()["user"] == "alice", "the second process serves the same session"
    browser.wait_until_expired(float(before["expires_at"]))
    site.provider.counters(reset=True)
    urls = [f"{site.url}/", f"{second}/"]
    with site.provider.configured(token_delay_ms=3000), ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda url: browser.client.get(url, headers=JSON), urls))
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    tokens = {a.json()["token"] for a in answers}
    assert len(tokens) == 1 and before["token"] not in tokens, "both saw the one new token"
    counted = site.provider.counters()
    assert counted.grant("refresh_token") == 1
    assert counted.refresh_replays == 0
    assert counted.error("refresh_token", "invalid_grant") == 0
    for url in urls:
        assert browser.client.get(url, headers=JSON).json()["user"] == "alice"
    (record,) = site.user_sessions("alice")
    assert "coatcheck.oidc.lease" not in record.data, "the lease was released"
