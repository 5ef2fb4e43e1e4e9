"""Redis fixtures: a private prefix on the shared server, a throwaway Redis Cluster, and single
servers a test may stop and start.

* ``redis_url``: the shared server at 127.0.0.1:6379 (skipped locally, failing in CI when it
  is down) under a random ``cctest:<hex>:`` prefix; only keys under that prefix are touched,
  and they are deleted afterwards.
* ``redis_cluster``: a 3-primary Redis Cluster of ``redis-server`` processes on free loopback
  ports, started once per test session and killed at its end.
* ``redis_cluster_url``: that cluster under a random prefix, cleaned after each test.
* ``redis_instance``: a factory of private ``redis-server`` processes with ``stop()`` and
  ``start()``, for failure tests.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import redis.cluster
import servers
from servers import REDIS_HOST, REDIS_PORT, free_port, require_server

LOOPBACK = "127.0.0.1"
STARTUP_DEADLINE = 30.0  # seconds a server or the cluster may take to come up


def require_redis_binaries() -> None:
    """Skip (locally) or fail (in CI) when redis-server / redis-cli are not installed."""
    missing = [name for name in ("redis-server", "redis-cli") if shutil.which(name) is None]
    if not missing:
        return
    servers.missing(
        f"{' and '.join(missing)} not found; install them with: apt-get install redis-server"
    )


def new_prefix() -> str:
    return f"cctest:{secrets.token_hex(6)}:"


def delete_prefix(client: redis.Redis | redis.cluster.RedisCluster, prefix: str) -> None:
    """Delete every key under ``prefix`` (on every primary of a cluster)."""
    for name in client.scan_iter(match=prefix + "*", count=1000):
        client.unlink(name)


class RedisServer:
    """One ``redis-server`` on a free loopback port with its own directory, no persistence."""

    def __init__(self, directory: Path, *, cluster: bool = False) -> None:
        self.directory = directory
        self.cluster = cluster
        self.port = free_port()
        self.bus_port = free_port() if cluster else 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def _command(self) -> list[str]:
        command = [
            "redis-server",
            "--bind",
            LOOPBACK,
            "--port",
            str(self.port),
            "--dir",
            str(self.directory),
            "--save",
            "",
            "--appendonly",
            "no",
            "--logfile",
            "server.log",
        ]
        if self.cluster:
            command += [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-port",
                str(self.bus_port),
                "--cluster-node-timeout",
                "5000",
            ]
        return command

    def start(self) -> None:
        """Start (or restart, on the same port) and wait until it answers PING."""
        if self.process is not None and self.process.poll() is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            self._command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = redis.Redis(host=LOOPBACK, port=self.port, socket_timeout=1)
        deadline = time.monotonic() + STARTUP_DEADLINE
        try:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"redis-server on {self.address} exited: {self.log()}")
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on {self.address} did not come up")
                time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        """Terminate the server (its data is gone: no persistence)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def log(self) -> str:
        path = self.directory / "server.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else "(no log)"

    def client(self) -> redis.Redis:
        return redis.Redis(host=LOOPBACK, port=self.port, socket_timeout=5)


def start_server(directory: Path, *, cluster: bool = False) -> RedisServer:
    """A started server; retries with other ports if a free port was taken meanwhile."""
    for attempt in range(3):
        server = RedisServer(directory / f"try{attempt}", cluster=cluster)
        try:
            server.start()
        except RuntimeError:
            server.stop()
            if attempt == 2:
                raise
            continue
        return server
    raise AssertionError("unreachable")


def wait_for_cluster(nodes: list[RedisServer]) -> None:
    """Until every node reports cluster_state:ok and knows all nodes."""
    deadline = time.monotonic() + STARTUP_DEADLINE
    while True:
        ready = True
        for node in nodes:
            client = node.client()
            try:
                info = client.execute_command("CLUSTER", "INFO")
            finally:
                client.close()
            text = info.decode() if isinstance(info, bytes) else str(info)
            fields = dict(line.split(":", 1) for line in text.split() if ":" in line)
            ready &= fields.get("cluster_state") == "ok"
            ready &= fields.get("cluster_known_nodes") == str(len(nodes))
            ready &= fields.get("cluster_slots_assigned") == "16384"
        if ready:
            return
        if time.monotonic() > deadline:
            raise RuntimeError("the test Redis Cluster did not reach cluster_state:ok")
        time.sleep(0.05)


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The shared Redis at 127.0.0.1:6379 under a private, random key prefix."""
    require_server("redis", REDIS_HOST, REDIS_PORT)
    prefix = new_prefix()
    yield f"redis://{REDIS_HOST}:{REDIS_PORT}/0?prefix={prefix}"
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=0)
    try:
        delete_prefix(client, prefix)
    finally:
        client.close()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisServer]]:
    """A 3-primary Redis Cluster on free loopback ports, for the whole test session."""
    require_redis_binaries()
    root = tmp_path_factory.mktemp("redis-cluster")
    nodes: list[RedisServer] = []
    try:
        for i in range(3):
            nodes.append(start_server(root / f"node{i}", cluster=True))
        subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(node.address for node in nodes),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=STARTUP_DEADLINE,
        )
        wait_for_cluster(nodes)
        yield nodes
    finally:
        for node in nodes:
            node.stop()


@pytest.fixture
def redis_cluster_url(redis_cluster: list[RedisServer]) -> Iterator[str]:
    """The test cluster (first node as seed) under a private, random key prefix."""
    prefix = new_prefix()
    seed = redis_cluster[0]
    yield f"redis+cluster://{LOOPBACK}:{seed.port}?prefix={prefix}"
    client = redis.cluster.RedisCluster(host=LOOPBACK, port=seed.port)
    try:
        delete_prefix(client, prefix)
    finally:
        client.close()


@pytest.fixture
def redis_instance(tmp_path: Path) -> Iterator[Callable[[], RedisServer]]:
    """Starts private redis-server processes a test may stop() and start(); all are killed
    afterwards. Never the shared server."""
    require_redis_binaries()
    started: list[RedisServer] = []

    def make() -> RedisServer:
        server = start_server(tmp_path / f"redis{len(started)}")
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()
