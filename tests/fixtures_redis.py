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
* ``redis_tls``: a private ``redis-server`` speaking TLS only, requiring client certificates,
  with its CA, client certificate and key (made with ``cryptography``) and a foreign CA.
"""

from __future__ import annotations

import datetime
import ipaddress
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.cluster
import servers
from servers import REDIS_HOST, REDIS_PORT, free_port, require_server, stop_process

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

    def __init__(
        self, directory: Path, *, cluster: bool = False, tls: dict[str, Path] | None = None
    ) -> None:
        self.directory = directory
        self.cluster = cluster
        self.tls = tls  # see tls_files(): the server accepts TLS connections only
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
        if self.tls is not None:
            command[command.index("--port") + 1] = "0"  # no plain port
            command += [
                "--tls-port",
                str(self.port),
                "--tls-cert-file",
                str(self.tls["server_cert"]),
                "--tls-key-file",
                str(self.tls["server_key"]),
                "--tls-ca-cert-file",
                str(self.tls["ca"]),
                "--tls-auth-clients",
                "yes",
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
        client = self.client(timeout=1)
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
        stop_process(self.process, timeout=10)
        self.process = None

    def log(self) -> str:
        path = self.directory / "server.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else "(no log)"

    def client(self, timeout: float = 5) -> redis.Redis:
        if self.tls is None:
            return redis.Redis(host=LOOPBACK, port=self.port, socket_timeout=timeout)
        return redis.Redis(
            host=LOOPBACK,
            port=self.port,
            socket_timeout=timeout,
            ssl=True,
            ssl_ca_certs=str(self.tls["ca"]),
            ssl_certfile=str(self.tls["client_cert"]),
            ssl_keyfile=str(self.tls["client_key"]),
        )


def start_server(
    directory: Path, *, cluster: bool = False, tls: dict[str, Path] | None = None
) -> RedisServer:
    """A started server; retries with other ports if a free port was taken meanwhile."""
    for attempt in range(3):
        server = RedisServer(directory / f"try{attempt}", cluster=cluster, tls=tls)
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


def tls_files(directory: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate signed by it, and a
    second CA that signed neither: PEM files in ``directory``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    directory.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}

    def write(name: str, data: bytes) -> None:
        files[name] = directory / f"{name}.pem"
        files[name].write_bytes(data)

    def named(text: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    def builder(subject: str, issuer: str, key: ec.EllipticCurvePrivateKey) -> Any:
        return (
            x509.CertificateBuilder()
            .subject_name(named(subject))
            .issuer_name(named(issuer))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        )

    def ca(name: str) -> tuple[ec.EllipticCurvePrivateKey, Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            builder(name, name, key)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
            )
            .sign(key, hashes.SHA256())
        )
        return key, cert

    def leaf(name: str, usage: Any, ca_key: Any, ca_cert: Any) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            builder("127.0.0.1", "coatcheck test CA", key)
            .add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(LOOPBACK))]),
                critical=False,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()), False
            )
            .sign(ca_key, hashes.SHA256())
        )
        write(f"{name}_cert", cert.public_bytes(serialization.Encoding.PEM))
        write(
            f"{name}_key",
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )

    ca_key, ca_cert = ca("coatcheck test CA")
    write("ca", ca_cert.public_bytes(serialization.Encoding.PEM))
    write("foreign_ca", ca("someone else's CA")[1].public_bytes(serialization.Encoding.PEM))
    leaf("server", ExtendedKeyUsageOID.SERVER_AUTH, ca_key, ca_cert)
    leaf("client", ExtendedKeyUsageOID.CLIENT_AUTH, ca_key, ca_cert)
    return files


@pytest.fixture
def redis_tls(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server on TLS only (client certificates required); its ``tls`` holds
    the PEM files (``ca``, ``client_cert``, ``client_key``, ``foreign_ca``)."""
    require_redis_binaries()
    server = start_server(tmp_path / "redis-tls", tls=tls_files(tmp_path / "pki"))
    yield server
    server.stop()
