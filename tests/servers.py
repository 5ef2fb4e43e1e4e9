"""Reaching the real servers the tests need, and failing loudly in CI when one is missing."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

POSTGRES_HOST, POSTGRES_PORT = "127.0.0.1", 5432
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379

HOW_TO_START = {
    "postgresql": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "redis": "redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no",
}


def reachable(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def missing(message: str) -> NoReturn:
    """A real part the test needs is absent: skip locally (saying how to get it), fail in CI."""
    if not IN_CI:  # only outside CI: there a missing server is a failure (below)
        pytest.skip(message)
    pytest.fail(f"CI=true and {message}", pytrace=False)


def require_server(name: str, host: str, port: int) -> None:
    """Skip (locally) or fail (in CI) when a server the test needs is not listening."""
    if not reachable(host, port):
        missing(f"{name} is not reachable at {host}:{port}; start it with: {HOW_TO_START[name]}")


def free_port() -> int:
    """A loopback port nobody listens on right now (for servers the tests start themselves)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


CHROMIUM = "/usr/bin/chromium"
# Without the background-networking switches Chromium keeps dialling out, and this machine's
# closed network refuses it many times a second.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Debian Chromium driven by Playwright (skip locally / fail in CI if absent)."""
    if not os.path.exists(CHROMIUM):
        missing(f"{CHROMIUM} is missing: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def stop_process(process: subprocess.Popen[Any], timeout: float = 20) -> None:
    """Stop a server process the tests started: terminate, wait, kill if it will not go."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
