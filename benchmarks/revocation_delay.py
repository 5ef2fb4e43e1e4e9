"""The revocation delay a client cache adds, and what the cache saves.

    .venv/bin/python benchmarks/revocation_delay.py [--stores sqlite,redis]
        [--revocations 200] [--uncached 2000] [--cached 200000]

For each store, two ``coatcheck serve`` processes (A and B) run on it, from one temporary
directory (SQLite: its file there; Redis: database 12 under a random key prefix, deleted at the
end). An
``AsyncServiceClient`` with a ``ClientCache`` listens to the revocation stream of one process;
a second client without a cache revokes. Each of ``--revocations`` rounds creates a session,
warms the cache (two introspections, the second a hit), waits a random 0 to ``--spacing``
seconds (so revocations fall at random points of a store's poll cycle, as in life, not right
after the previous event), revokes the session, and then polls the cached client
(``introspect``, yielding to the event loop between calls) until it refuses the token. Two
topologies:

* same process: the stream and the revocation go through process A (the event is handed over
  in-process);
* across processes: the stream comes from B, the revocation goes to A (B learns of it through
  the store: Redis blocks on its event stream, SQLite is polled every 0.2 s).

The delay is reported from the start of the revoke call and from its answer, p50/p99/max in ms.

Then the client-side validation rate: an uncached client introspecting through the service
(sequentially, and with 50 concurrent tasks), against the cached client answering a warm token
from memory; the ratio (target >= 5x, issue 12). Everything stays on 127.0.0.1. It prints
numbers, never pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from coatcheck.client import AsyncServiceClient, ClientCache

COATCHECK = str(Path(sys.executable).with_name("coatcheck"))
REDIS_URL = "redis://127.0.0.1:6379/12"
STORES = ("sqlite", "redis")
START_DEADLINE = 30.0
CONCURRENCY = 50
STREAM_WAIT = 15.0


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("COATCHECK_")}


def store_url(store: str) -> str:
    if store == "sqlite":
        return "sqlite:///coatcheck-data/coatcheck.db"
    return f"{REDIS_URL}?prefix=ccbench:{secrets.token_hex(4)}:"


def cli(cwd: Path, url: str, *args: str) -> str:
    done = subprocess.run(
        [COATCHECK, *args, "--store", url],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"coatcheck {' '.join(args)} failed: {done.stderr}")
    return done.stdout.strip()


def start(cwd: Path, url: str, name: str) -> Server:
    port = free_port()
    log = (cwd / f"{name}.log").open("wb")
    process = subprocess.Popen(
        [COATCHECK, "serve", "--port", str(port), "--store", url],
        cwd=cwd,
        env=clean_env(),
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
    )
    server = Server(process, f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + START_DEADLINE
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"coatcheck serve exited: {(cwd / f'{name}.log').read_text()}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"coatcheck serve never answered on {server.url}")
        time.sleep(0.1)


def stop(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@contextmanager
def two_services(store: str) -> Iterator[tuple[Server, Server, str]]:
    """Processes A and B on one store, and an admin service key."""
    directory = Path(tempfile.mkdtemp(prefix="ccbench-revocation-"))
    url = store_url(store)
    servers: list[Server] = []
    try:
        key = cli(directory, url, "service-keys", "create", "bench", "--scope", "admin")
        servers.append(start(directory, url, "a"))
        servers.append(start(directory, url, "b"))
        yield servers[0], servers[1], key
    finally:
        for server in servers:
            stop(server)
        cleanup(store, url)
        shutil.rmtree(directory, ignore_errors=True)


def cleanup(store: str, url: str) -> None:
    if store == "redis":
        import redis

        prefix = url.split("prefix=", 1)[1]
        client = redis.Redis.from_url(REDIS_URL)
        names = list(client.scan_iter(match=prefix + "*", count=1000))
        if names:
            client.delete(*names)
        client.close()


# -- measurements -------------------------------------------------------------------------


async def revocation_delays(
    stream_url: str, revoke_url: str, key: str, rounds: int, spacing: float
) -> tuple[list[float], list[float]]:
    """Seconds from the revoke call's start, and from its answer, to the first refusal."""
    cache = ClientCache(max_age=30.0)
    from_start: list[float] = []
    from_answer: list[float] = []
    async with (
        AsyncServiceClient(stream_url, key, cache=cache) as cached,
        AsyncServiceClient(revoke_url, key) as admin,
    ):
        if not await cached.start_events(STREAM_WAIT):
            raise RuntimeError("the revocation stream did not connect")
        for _ in range(rounds):
            token = (await admin.create_session("bench")).token
            hits = cache.hits
            if not (
                (await cached.introspect(token)).active and (await cached.introspect(token)).active
            ):
                raise RuntimeError("a fresh session is not active")
            if cache.hits != hits + 1:
                raise RuntimeError("the cache did not warm")
            await asyncio.sleep(random.uniform(0, spacing))
            started = time.perf_counter()
            await admin.revoke(token)
            answered = time.perf_counter()
            while (await cached.introspect(token)).active:  # noqa: ASYNC110  # the measured poll
                await asyncio.sleep(0)
            refused = time.perf_counter()
            from_start.append(refused - started)
            from_answer.append(refused - answered)
    return from_start, from_answer


async def validation_rates(
    url: str, key: str, uncached: int, cached: int
) -> tuple[float, float, float]:
    """Validations per second: uncached sequential, uncached concurrent, cached."""
    async with AsyncServiceClient(url, key) as admin:
        token = (await admin.create_session("bench")).token
        started = time.perf_counter()
        for _ in range(uncached):
            await admin.introspect(token)
        sequential = uncached / (time.perf_counter() - started)

        async def worker(calls: int) -> None:
            for _ in range(calls):
                await admin.introspect(token)

        started = time.perf_counter()
        per_task = max(1, uncached // CONCURRENCY)
        await asyncio.gather(*(worker(per_task) for _ in range(CONCURRENCY)))
        concurrent = per_task * CONCURRENCY / (time.perf_counter() - started)

    cache = ClientCache(max_age=3600.0)
    async with AsyncServiceClient(url, key, cache=cache) as client:
        if not await client.start_events(STREAM_WAIT):
            raise RuntimeError("the revocation stream did not connect")
        await client.introspect(token)
        started = time.perf_counter()
        for _ in range(cached):
            await client.introspect(token)
        from_cache = cached / (time.perf_counter() - started)
        if cache.hits < cached:
            raise RuntimeError("the cached run missed the cache")
    return sequential, concurrent, from_cache


def ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report_delays(store: str, topology: str, delays: tuple[list[float], list[float]]) -> None:
    start, answer = delays
    print(
        f"  {store:<9}{topology:<19}"
        f"{1000 * statistics.median(start):>8.2f}{ms(start, 0.99):>8.2f}{1000 * max(start):>8.2f}"
        f"{1000 * statistics.median(answer):>10.2f}{ms(answer, 0.99):>8.2f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stores", default="sqlite,redis")
    parser.add_argument("--revocations", type=int, default=200)
    parser.add_argument("--spacing", type=float, default=0.25, help="longest pause, seconds")
    parser.add_argument("--uncached", type=int, default=2000)
    parser.add_argument("--cached", type=int, default=200_000)
    args = parser.parse_args()
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    unknown = sorted(set(stores) - set(STORES))
    if unknown:
        parser.error(f"unknown stores {', '.join(unknown)}: choose from {', '.join(STORES)}")
    print(f"python {sys.version.split()[0]}, httpx {httpx.__version__}, {os.cpu_count()} CPUs")
    print(f"revocation delay over {args.revocations} revocations, ms (cache max_age 30 s)")
    print(
        f"  {'store':<9}{'topology':<19}{'p50':>8}{'p99':>8}{'max':>8}{'p50 ans':>10}{'p99 ans':>8}"
    )
    rates: list[tuple[str, tuple[float, float, float]]] = []
    for store in stores:
        try:
            with two_services(store) as (a, b, key):
                same = asyncio.run(
                    revocation_delays(a.url, a.url, key, args.revocations, args.spacing)
                )
                report_delays(store, "same process", same)
                across = asyncio.run(
                    revocation_delays(b.url, a.url, key, args.revocations, args.spacing)
                )
                report_delays(store, "across processes", across)
                rates.append(
                    (store, asyncio.run(validation_rates(a.url, key, args.uncached, args.cached)))
                )
        except (RuntimeError, OSError, ImportError) as exc:
            print(f"  {store}: skipped ({exc})")
    print("client-side validations per second (one client process)")
    print(f"  {'store':<9}{'uncached':>12}{'uncached x50':>14}{'cached':>12}{'ratio':>9}")
    for store, (sequential, concurrent, cached) in rates:
        ratio = cached / max(sequential, concurrent)
        print(
            f"  {store:<9}{sequential:>12,.0f}{concurrent:>14,.0f}{cached:>12,.0f}{ratio:>8,.0f}x"
        )
    print("ratio: cached against the better uncached figure (target >= 5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
