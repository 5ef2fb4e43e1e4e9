"""``coatcheck serve`` as a real process: the quick start from an empty directory, and two
processes on one PostgreSQL or Redis store that share nothing but the store."""

from __future__ import annotations

import html
import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from servers import free_port, stop_process

from .test_data import drop_service_tables

COATCHECK = str(Path(sys.executable).with_name("coatcheck"))
START_DEADLINE = 30.0  # seconds a server may take to answer /healthz
PASSWORD = "quick-start-password"


def clean_env() -> dict[str, str]:
    """The test process's environment without any ``COATCHECK_*`` variable: no configuration."""
    return {k: v for k, v in os.environ.items() if not k.startswith("COATCHECK_")}


def cli(
    cwd: Path, *args: str, stdin: str = "", umask: int = -1
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COATCHECK, *args],
        cwd=cwd,
        env=clean_env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        umask=umask,
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@dataclass
class Served:
    """One ``coatcheck serve`` process, its address and what it printed."""

    process: subprocess.Popen[bytes]
    url: str
    out_file: Path
    err_file: Path

    @property
    def out(self) -> str:
        return self.out_file.read_text()

    def logs(self) -> str:
        return f"stdout:\n{self.out}\nstderr:\n{self.err_file.read_text()}"

    def stop(self) -> None:
        stop_process(self.process)


class Servers:
    """Starts ``coatcheck serve`` processes and stops every one at the end of the test."""

    def __init__(self) -> None:
        self.started: list[Served] = []

    def start(self, cwd: Path, *args: str, name: str = "serve") -> Served:
        port = free_port()
        out, err = cwd / f"{name}-{port}.out", cwd / f"{name}-{port}.err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            process = subprocess.Popen(
                [COATCHECK, "serve", "--port", str(port), *args],
                cwd=cwd,
                env=clean_env(),
                stdout=stdout,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
            )
        served = Served(process, f"http://127.0.0.1:{port}", out, err)
        self.started.append(served)
        self._wait_healthy(served)
        return served

    @staticmethod
    def _wait_healthy(served: Served) -> None:
        deadline = time.monotonic() + START_DEADLINE
        while True:
            if served.process.poll() is not None:
                pytest.fail(f"coatcheck serve exited with {served.process.returncode}\n"
                            f"{served.logs()}")  # fmt: skip
            try:
                if httpx.get(f"{served.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"coatcheck serve never became healthy\n{served.logs()}")
            time.sleep(0.1)

    def stop_all(self) -> None:
        for served in self.started:
            served.stop()


@pytest.fixture
def servers() -> Iterator[Servers]:
    made = Servers()
    yield made
    made.stop_all()


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def login(url: str, user: str, password: str) -> httpx.Client:
    """A browser-like client logged in through the login page (CSRF token from the form)."""
    client = httpx.Client(base_url=url, timeout=10)
    form = client.get("/login")
    assert form.status_code == 200
    match = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert match, form.text
    done = client.post(
        "/login",
        data={"username": user, "password": password, "csrf_token": html.unescape(match[1])},
    )
    assert done.status_code == 303, done.text
    return client


# --- the quick start -----------------------------------------------------------------------------


def test_quick_start_from_an_empty_directory(tmp_path: Path, servers: Servers) -> None:
    first = servers.start(tmp_path)
    out = first.out
    assert "coatcheck: first start, created:" in out
    for created in (
        "coatcheck-data/ ",
        "coatcheck-data/secret.toml ",
        "coatcheck-data/coatcheck.db ",
    ):
        assert f"  {created}" in out, out
    assert "coatcheck users add NAME" in out
    assert f"coatcheck: serving {first.url} on sqlite:///coatcheck-data/coatcheck.db" in out
    assert "development cookie" in out
    assert httpx.get(f"{first.url}/autosession?user=alice").status_code == 404  # no test door
    data = tmp_path / "coatcheck-data"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    secret = data / "secret.toml"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    keys = secret.read_bytes()

    added = cli(tmp_path, "users", "add", "alice", stdin=f"{PASSWORD}\n")
    assert added.returncode == 0, added.stderr
    assert "first start" not in added.stderr  # the server made everything already

    browser = login(first.url, "alice", PASSWORD)
    page = browser.get("/account/sessions")
    assert page.status_code == 200 and "alice" in page.text
    assert login_fails(first.url, "alice", "wrong-password")

    made = cli(tmp_path, "service-keys", "create", "quick-start", "--scope", "admin")
    assert made.returncode == 0, made.stderr
    api = httpx.Client(base_url=first.url, headers=bearer(made.stdout.strip()), timeout=10)
    created = api.post("/v1/sessions", json={"user_id": "alice", "kind": "api"})
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    assert api.post("/v1/sessions/introspect", json={"token": token}).json()["active"] is True
    listed = api.get("/v1/users/alice/sessions").json()["sessions"]
    assert len(listed) == 2  # the browser's and the API's
    # Password hashes and session digests: the owner's only, WAL files too (they exist
    # while the server holds the database open).
    for name in ("coatcheck.db", "coatcheck.db-wal", "coatcheck.db-shm"):
        assert mode(data / name) == 0o600, name

    first.stop()
    again = servers.start(tmp_path, name="again")
    assert "first start" not in again.out and "created" not in again.out
    assert secret.read_bytes() == keys
    api = httpx.Client(base_url=again.url, headers=bearer(made.stdout.strip()), timeout=10)
    answer = api.post("/v1/sessions/introspect", json={"token": token}).json()
    assert answer["active"] is True and answer["user_id"] == "alice"  # same keys, same store


def test_first_start_database_is_private_whatever_the_umask(tmp_path: Path) -> None:
    made = cli(tmp_path, "users", "list", umask=0o002)
    assert made.returncode == 0, made.stderr
    assert "coatcheck-data/coatcheck.db" in made.stderr + made.stdout
    assert mode(tmp_path / "coatcheck-data" / "coatcheck.db") == 0o600


def test_an_existing_database_keeps_its_mode(tmp_path: Path) -> None:
    """A database file the owner made (or that an older version made) is not re-moded."""
    data = tmp_path / "coatcheck-data"
    data.mkdir(mode=0o700)
    database = data / "coatcheck.db"
    database.touch()
    database.chmod(0o640)
    listed = cli(tmp_path, "users", "list")
    assert listed.returncode == 0, listed.stderr
    assert "coatcheck.db" not in listed.stderr + listed.stdout  # not reported as created
    assert mode(database) == 0o640


def login_fails(url: str, user: str, password: str) -> bool:
    client = httpx.Client(base_url=url, timeout=10)
    form = client.get("/login")
    match = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert match
    answer = client.post(
        "/login",
        data={"username": user, "password": password, "csrf_token": html.unescape(match[1])},
    )
    return answer.status_code == 401


def test_testing_flag_opens_the_door_with_a_warning(tmp_path: Path, servers: Servers) -> None:
    served = servers.start(tmp_path, "--testing")
    assert "TESTING MODE" in served.err_file.read_text()
    door = httpx.get(f"{served.url}/autosession?user=alice")
    assert door.status_code == 303, door.text
    assert "set-cookie" in door.headers
    assert httpx.get(f"{served.url}/autosession?user=mallory").status_code == 403
    refused = cli(tmp_path, "serve", "--testing", "--host", "0.0.0.0", "--port", "1")
    assert refused.returncode == 2 and "not a loopback address" in refused.stderr


def test_a_world_readable_secret_file_stops_the_start(tmp_path: Path) -> None:
    assert cli(tmp_path, "users", "list").returncode == 0  # creates coatcheck-data/
    secret = tmp_path / "coatcheck-data" / "secret.toml"
    secret.chmod(0o644)
    run = cli(tmp_path, "serve", "--port", str(free_port()))
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "coatcheck: error: secret file coatcheck-data/secret.toml has permissions 0644, wider "
        "than 0600: it holds the token key, so other users must not read it; run: chmod 600 "
        "coatcheck-data/secret.toml"
    ]


# --- two processes, one store --------------------------------------------------------------------


@pytest.fixture(params=["postgres", "redis"])
def shared_store(request: pytest.FixtureRequest) -> Iterator[str]:
    """A private table (PostgreSQL) or key prefix (Redis) on the shared test server, removed
    after the test by its fixture."""
    if request.param == "redis":
        yield str(request.getfixturevalue("redis_url"))
        return
    url = str(request.getfixturevalue("postgres_url"))
    yield url
    drop_service_tables(url)


def test_two_processes_share_nothing_but_the_store(
    tmp_path: Path, servers: Servers, shared_store: str
) -> None:
    made = cli(tmp_path, "service-keys", "create", "two-process", "--scope", "admin",
               "--store", shared_store)  # fmt: skip
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    one = servers.start(tmp_path, "--store", shared_store, name="one")
    two = servers.start(tmp_path, "--store", shared_store, name="two")
    assert "first start" not in one.out + two.out
    assert not (tmp_path / "coatcheck-data").exists()  # a shared store needs no local files
    a = httpx.Client(base_url=one.url, headers=bearer(key), timeout=10)
    b = httpx.Client(base_url=two.url, headers=bearer(key), timeout=10)

    created = a.post("/v1/sessions", json={"user_id": "carol", "user_agent": "two-process"})
    assert created.status_code == 201, created.text
    token, session_id = created.json()["token"], created.json()["id"]

    seen = b.post("/v1/sessions/introspect", json={"token": token}).json()
    assert (seen["active"], seen["user_id"], seen["id"]) == (True, "carol", session_id)
    assert [s["id"] for s in b.get("/v1/users/carol/sessions").json()["sessions"]] == [session_id]
    refreshed = b.post("/v1/sessions/refresh", json={"token": token}).json()
    assert refreshed["active"] is True and refreshed["id"] == session_id
    assert b.post("/v1/sessions/revoke", json={"token": token}).json() == {"revoked": True}
    assert a.post("/v1/sessions/introspect", json={"token": token}).json() == {"active": False}

    api_token = b.post("/v1/tokens", json={"user_id": "carol", "name": "ci"}).json()
    assert (
        a.post("/v1/sessions/introspect", json={"token": api_token["token"]}).json()["token_type"]
        == "api_token"
    )
    ended = cli(tmp_path, "tokens", "revoke", api_token["id"], "--store", shared_store)
    assert ended.returncode == 0, ended.stderr
    for side in (a, b):
        answer = side.post("/v1/sessions/introspect", json={"token": api_token["token"]})
        assert answer.json() == {"active": False}
