"""PostgreSQL for the tests: a private table on the shared server, or a whole private server.

``postgres_url`` gives each test its own table (``cc_test_<hex>``) on the shared server at
127.0.0.1:5432 and drops it afterwards. ``postgres_instance`` builds a throw-away server
(``initdb`` into a temp dir, trust auth, a free loopback port) that a fault test may stop and
start at will; the shared server is never stopped.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import servers

SHARED_DSN = f"postgresql://postgres@{servers.POSTGRES_HOST}:{servers.POSTGRES_PORT}/test"


def drop_table(dsn: str, table: str) -> None:
    import psycopg
    from psycopg import sql

    from coatcheck.service.data.postgres import service_tables

    tables = (
        table,
        f"{table}_meta",
        f"{table}_tombstones",
        f"{table}_markers",
        *service_tables(table),
    )
    names = [sql.Identifier(name) for name in tables]
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.SQL(", ").join(names)))


@pytest.fixture
def postgres_table() -> str:
    """A fresh table name nobody else uses."""
    return f"cc_test_{secrets.token_hex(6)}"


@pytest.fixture
def postgres_url(postgres_table: str) -> Iterator[str]:
    """A store URL on the shared server with a private table, dropped after the test."""
    servers.require_server("postgresql", servers.POSTGRES_HOST, servers.POSTGRES_PORT)
    yield f"{SHARED_DSN}?table={postgres_table}"
    drop_table(SHARED_DSN, postgres_table)


def _bin_dir() -> Path | None:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: [int(x) if x.isdigit() else 0 for x in Path(p).parts[-3].split(".")],
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresInstance:
    """A private PostgreSQL server on a free loopback port, with trust auth."""

    def __init__(self, bin_dir: Path, root: Path) -> None:
        self.bin_dir = bin_dir
        self.root = root
        self.data = root / "data"
        self.log = root / "server.log"
        self.port = servers.free_port()
        self.host = "127.0.0.1"
        self.running = False

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/postgres"

    def url(self, **options: object) -> str:
        """A store URL on this server; ``options`` become query options."""
        query = "&".join(f"{k}={v}" for k, v in options.items())
        return f"{self.dsn}?{query}" if query else self.dsn

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout}{done.stderr}{log}")

    def init(self) -> None:
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
            "--no-sync", "--no-instructions",
        )  # fmt: skip

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-p {self.port} -c listen_addresses={self.host} -c unix_socket_directories='' "
            "-c fsync=off -c full_page_writes=off"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options,
                  "-w", "-t", "60", "start")  # fmt: skip
        self.running = True
        self._wait_until_accepting()

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: clean shutdown; ``immediate``: like a crash)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")
        self.running = False

    def _wait_until_accepting(self) -> None:
        import psycopg

        last: Exception | None = None
        for _ in range(300):
            try:
                with psycopg.connect(self.dsn, connect_timeout=2):
                    return
            except psycopg.OperationalError as exc:  # e.g. "the database system is starting up"
                last = exc
                time.sleep(0.05)
        raise RuntimeError(f"PostgreSQL on port {self.port} never accepted connections: {last}")


@pytest.fixture
def postgres_instance() -> Iterator[Callable[[], PostgresInstance]]:
    """Factory of private, started PostgreSQL servers; all are stopped and removed at the end."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        servers.missing(
            "PostgreSQL server binaries (initdb, pg_ctl) missing: apt-get install postgresql"
        )
    made: list[PostgresInstance] = []

    def make() -> PostgresInstance:
        root = Path(tempfile.mkdtemp(prefix="coatcheck-pg-"))
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
        instance = PostgresInstance(bin_dir, root)
        made.append(instance)
        instance.init()
        instance.start()
        return instance

    yield make
    for instance in made:
        try:
            if instance.running:
                instance.stop("immediate")
        finally:
            shutil.rmtree(instance.root, ignore_errors=True)
