"""Introspection throughput of coatcheck's session service, beside floors on the same server.

    apt-get install -y wrk
    .venv/bin/python benchmarks/service.py [--quick] [--stores sqlite,postgres,redis]
        [--rounds 3] [--seconds 10] [--sessions 10000] [--pin] [--experiments] [--profile]

For each store (SQLite, PostgreSQL, Redis) one uvicorn worker (uvloop + httptools when
installed) serves the service as ``coatcheck serve`` builds it (``create_app(settings)``),
plus three floors that touch no store and answer a tiny JSON (benchmarks/service_app.py):
two routes added to the same app object, in front of the others, and a raw ASGI callable in
front of the whole app. ``GET /v1/bench/floor`` has no body; ``POST /v1/bench/floor-post``
reads the whole body of the same requests as an introspection and checks nothing (what a POST
with a body costs the server by itself); ``GET /v1/bench/raw-floor`` is answered before any of
the app's middleware, router or request objects, where the service's introspection fast path
sits (what "nothing" costs on this server). The
service key (scope ``introspect``) and the sessions are made through the service's own
classes (``ServiceContext``) on that store before the server starts.

wrk (``-t2 -c50``, benchmarks/service_introspect.lua) then sends ``POST
/v1/sessions/introspect`` with ``{"token": ...}`` and ``Authorization: Bearer <service key>``,
rotating over every session's token; the same requests to the POST floor; and ``GET
/v1/bench/floor`` and ``GET /v1/bench/raw-floor`` with the same header. ``--experiments`` adds
two lean introspection routes (benchmarks/service_lean.py): what the changes
docs/performance.md proposes would give, on the same server. Runs are interleaved (per store
its routes back to back, their order rotated every round; the stores in turn), as
PERFORMANCE-NOTES.md advises; the report gives medians with min-max over the rounds, wrk's
latency percentiles, the ratios to every floor taken per round on the same server (target for
introspection: >= 70 % of the floor on Redis and PostgreSQL) and the server time per request
(one worker, saturated: 1 / throughput). Before and after the measured runs a sample of tokens
is checked to introspect as active (the load measures the active path: ``touch`` is false, so
nothing is written).

``--cache SECONDS[,SECONDS...]`` serves every store once more per value (``<store>-cache<N>s``:
the same store, key and sessions) with the service's introspection cache on
(``COATCHECK_INTROSPECTION_CACHE``), interleaved with the others; each such server's hit rate
(validations answered without a session-store round trip, from its ``/metrics``; an upper
bound where look-ups are coalesced) is printed. With wrk rotating over every session, the hit
rate depends on how often a token comes back within the max age: ``--sessions`` sets that
working set.

``--compare-src DIR`` serves every store a second time (``<store>-B``: the same store, key and
sessions) from the coatcheck package in DIR, interleaved with the first: an A/B of a change; with
``--cache``, both codes are served with the cache on as well (``<store>-B-cache<N>s``).
``--pin`` puts the server on CPU 0 and wrk on CPU 1 (the store servers float). ``--profile``
afterwards samples each server under the same load with py-spy (``pip install py-spy``; on
PATH or ``--py-spy PATH``) and prints where its CPU time goes (benchmarks/service_profile.py).

Everything stays on 127.0.0.1: SQLite in a temporary directory, PostgreSQL in a schema of its
own (``ccbench_svc_<random>``, dropped at the end), Redis in database 12 under a random key
prefix (those keys deleted at the end). It prints numbers and ratios, never pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import importlib.util
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from service_app import FLOOR_PATH as FLOOR
from service_app import FLOOR_POST_PATH as FLOOR_POST
from service_app import RAW_FLOOR_PATH as RAW_FLOOR
from service_lean import LEAN_CACHED_PATH as LEAN_CACHED
from service_lean import LEAN_KEY_PATH as LEAN_KEY
from service_lean import LEAN_PATH as LEAN

BENCH_DIR = Path(__file__).resolve().parent
LUA_SCRIPT = BENCH_DIR / "service_introspect.lua"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REDIS_DB = 12  # the benchmark's own database number, so a stray key never meets the tests'
PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
STORES = ("sqlite", "postgres", "redis")
TARGET = 0.70  # introspection / floor on Redis and PostgreSQL (issue 12)
INTROSPECT = "/v1/sessions/introspect"
CACHE_ENV = "COATCHECK_INTROSPECTION_CACHE"
# What a web app's session typically carries: the load decodes it, the answer does not show it.
PAYLOAD: dict[str, Any] = {"cart": ["book-123", "pen-9"], "theme": "dark", "pad": "x" * 150}


class Skip(Exception):
    """A store or tool that is not there: reported, and the run goes on without it."""


@dataclass
class Target:
    """One store: its service's environment, its tokens file and, once started, its server."""

    store: str
    env: dict[str, str]
    tokens_file: Path
    sample: list[str]
    key: str = field(repr=False)
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    command: list[str] = field(default_factory=list)

    @property
    def log(self) -> Path:
        """The server's output (uvicorn logs a ClientDisconnect for each request that wrk
        leaves unanswered when a run ends: that goes here, not between the figures)."""
        return self.tokens_file.with_name(f"{self.store}-server.log")


@dataclass(frozen=True)
class Variant:
    """One route under load: a label, wrk's method and path."""

    label: str
    method: str
    path: str


FLOOR_VARIANT = Variant("floor", "GET", FLOOR)
FLOOR_POST_VARIANT = Variant("floor, POST", "POST", FLOOR_POST)
RAW_FLOOR_VARIANT = Variant("floor, raw", "GET", RAW_FLOOR)
FLOORS = (FLOOR_VARIANT, FLOOR_POST_VARIANT, RAW_FLOOR_VARIANT)
FLOOR_NAMES = {
    FLOOR_VARIANT: "GET floor",
    FLOOR_POST_VARIANT: "POST floor",
    RAW_FLOOR_VARIANT: "raw floor",
}
INTROSPECT_VARIANT = Variant("introspect", "POST", INTROSPECT)
EXPERIMENTS = (
    Variant("lean, key cached", "POST", LEAN),
    Variant("lean, key per call", "POST", LEAN_KEY),
)
LEAN_CACHED_VARIANT = Variant("lean, service's work", "POST", LEAN_CACHED)


@dataclass
class Run:
    """One wrk run's figures (latencies in microseconds)."""

    rps: float
    p50: float
    p90: float
    p99: float
    non2xx: int
    errors: int


# -- stores ---------------------------------------------------------------------------------


def service_env(store_url: str, data_dir: Path) -> dict[str, str]:
    """The server's environment: this one without any ``COATCHECK_*`` variable, plus the
    store URL and the data directory (the run does not depend on the caller's settings)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COATCHECK_")}
    env["COATCHECK_STORE_URL"] = store_url
    env["COATCHECK_DATA_DIR"] = str(data_dir)
    return env


def sqlite_url(workdir: Path, cleanup: list[Callable[[], Any]]) -> str:
    """A database file in the run's temporary directory (removed with it)."""
    (workdir / "sqlite").mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{workdir / 'sqlite' / 'coatcheck.db'}"


def postgres_url(workdir: Path, cleanup: list[Callable[[], Any]]) -> str:
    """A schema of its own: every table the service makes goes there (libpq's ``options``
    sets the search path), and the whole schema is dropped at the end."""
    try:
        import psycopg
    except ImportError as exc:
        raise Skip("psycopg is not installed (pip install 'coatcheck[postgres]')") from exc
    schema = f"ccbench_svc_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(PG_DSN, autocommit=True, connect_timeout=2) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
    except psycopg.Error as exc:
        raise Skip(f"PostgreSQL at {PG_DSN} is not reachable: {exc}") from exc

    def drop() -> None:
        with psycopg.connect(PG_DSN, autocommit=True, connect_timeout=2) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")

    cleanup.append(drop)
    return f"{PG_DSN}?options=-csearch_path%3D{schema}"


def redis_url(workdir: Path, cleanup: list[Callable[[], Any]]) -> str:
    """Database ``REDIS_DB`` under a random prefix; the keys the run made are deleted at the
    end, and keys left in that database by anything else of the run are reported."""
    try:
        import redis
    except ImportError as exc:
        raise Skip("redis-py is not installed (pip install 'coatcheck[redis]')") from exc
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB, socket_connect_timeout=1)
    try:
        before = set(client.scan_iter(count=1000))
    except redis.RedisError as exc:
        raise Skip(f"Redis at {REDIS_HOST}:{REDIS_PORT} is not reachable: {exc}") from exc
    prefix = f"ccbench:svc:{secrets.token_hex(4)}:"

    def delete() -> None:
        mine = list(client.scan_iter(match=prefix + "*", count=1000))
        for start in range(0, len(mine), 500):
            client.delete(*mine[start : start + 500])
        left = set(client.scan_iter(count=1000)) - before
        if left:
            shown = ", ".join(sorted(k.decode(errors="replace") for k in left)[:5])
            print(
                f"  note: Redis db {REDIS_DB} holds {len(left)} new key(s) "
                f"outside {prefix}*: {shown}"
            )
        client.close()

    cleanup.append(delete)
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}?prefix={prefix}"


URLS: dict[str, Callable[[Path, list[Callable[[], Any]]], str]] = {
    "sqlite": sqlite_url,
    "postgres": postgres_url,
    "redis": redis_url,
}


async def seed(env: dict[str, str], sessions: int) -> tuple[str, list[str]]:
    """A service key of scope ``introspect`` and ``sessions`` sessions, made through the
    service's own classes on the store the server will use: the key and the tokens."""
    from coatcheck.service.context import ServiceContext
    from coatcheck.service.settings import load_service_settings

    ctx = ServiceContext.build(load_service_settings(None, env, {}))
    try:
        await ctx.data.migrate()
        await ctx.sessions.store.migrate()
        key, _ = await ctx.service_keys.create(f"bench-{secrets.token_hex(3)}", "introspect")
        tokens: list[str] = []
        for start in range(0, sessions, 50):  # 50 inserts in flight: quick on every store
            made = await asyncio.gather(
                *(
                    ctx.sessions.create(f"bench-user-{i % 1000}", data=PAYLOAD)
                    for i in range(start, min(start + 50, sessions))
                )
            )
            tokens.extend(token for token, _ in made)
        return key, tokens
    finally:
        await ctx.close()


def prepare(store: str, workdir: Path, sessions: int, cleanup: list[Callable[[], Any]]) -> Target:
    url = URLS[store](workdir, cleanup)
    data_dir = workdir / store
    data_dir.mkdir(parents=True, exist_ok=True)
    env = service_env(url, data_dir)
    key, tokens = run_async(seed(env, sessions))
    tokens_file = workdir / f"{store}-tokens.txt"
    fd = os.open(tokens_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join([key, *tokens]) + "\n")
    return Target(store, env, tokens_file, secrets.SystemRandom().sample(tokens, 20), key)


def run_async(coro: Any) -> Any:
    """``asyncio.run`` on uvloop when installed (the loop the server runs on)."""
    if importlib.util.find_spec("uvloop"):
        import uvloop

        return uvloop.run(coro)
    return asyncio.run(coro)


# -- servers --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fast_server() -> bool:
    return all(importlib.util.find_spec(m) for m in ("uvloop", "httptools"))


def start(target: Target, pin: bool, factory: str) -> None:
    """uvicorn, one worker, serving ``factory`` (benchmarks/service_app.py's ``app``) for
    ``target``'s store."""
    target.port = free_port()
    command = [
        *(["taskset", "-c", "0"] if pin else []),
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        factory,
        "--app-dir",
        str(BENCH_DIR),
        "--host",
        "127.0.0.1",
        "--port",
        str(target.port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    command += ["--loop", "uvloop", "--http", "httptools"] if fast_server() else []
    target.command = command
    with target.log.open("ab") as log:
        target.proc = subprocess.Popen(command, env=target.env, stdout=log, stderr=log)
    deadline = time.monotonic() + 30
    while True:
        with contextlib.suppress(OSError):
            if call(target, "GET", FLOOR)[0] == 200:
                return
        if target.proc.poll() is not None or time.monotonic() > deadline:
            stop(target)
            tail = target.log.read_text(errors="replace")[-2000:]
            raise Skip(
                f"the service on {target.store} did not start: {shlex.join(command)}\n{tail}"
            )
        time.sleep(0.2)


def stop(target: Target) -> None:
    proc = target.proc
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if target.log.exists():
        errors = Counter(
            line.split(":")[0]
            for line in target.log.read_text(errors="replace").splitlines()
            if re.match(r"[\w.]+(Error|Exception|Disconnect)\b", line)
        )
        if errors:
            shown = ", ".join(f"{name} x{count}" for name, count in errors.most_common())
            print(f"  {target.store} server logged: {shown} (ClientDisconnect: wrk's end of a run)")


def call(
    target: Target,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    key: str | None = None,
) -> tuple[int, Any]:
    """One request to ``target``'s server: the status and the decoded JSON answer."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{target.port}{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"} if body is not None else {},
    )
    if key is not None:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return reply.status, json.loads(reply.read() or b"null")
    except urllib.error.HTTPError as reply:
        return reply.code, json.loads(reply.read() or b"null")


def check(target: Target, variants: list[Variant]) -> None:
    """The measured paths are what they claim: the sample introspects as active with the key
    (every experiment route answering exactly as the service), a request without the key is
    refused, and an unknown token is inactive; every floor answers its tiny JSON."""
    paths = [v.path for v in variants if v.method == "POST" and v not in FLOORS]
    for floor in FLOORS:
        if floor in variants:
            body = {"token": target.sample[0]} if floor.method == "POST" else None
            reply = call(target, floor.method, floor.path, body, target.key)
            if reply != (200, {"ok": True}):
                raise RuntimeError(f"{target.store}: {floor.path} answered {reply}")
    for token in target.sample:
        status, answer = call(target, "POST", INTROSPECT, {"token": token}, target.key)
        if status != 200 or not isinstance(answer, dict) or answer.get("active") is not True:
            raise RuntimeError(f"{target.store}: a seeded token introspected as {status} {answer}")
        for path in paths:
            other = call(target, "POST", path, {"token": token}, target.key)
            if other != (status, answer):
                raise RuntimeError(f"{target.store}: {path} answered {other}, not {answer}")
    for path in paths:
        status, _ = call(target, "POST", path, {"token": target.sample[0]})
        if status != 401:
            raise RuntimeError(f"{target.store}: {path} without a key answered {status}")
        status, answer = call(target, "POST", path, {"token": "cc2_unknown"}, target.key)
        if status != 200 or answer != {"active": False}:
            raise RuntimeError(f"{target.store}: {path}: an unknown token gave {status} {answer}")


# -- load -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    threads: int
    connections: int
    pin: bool

    def command(self, target: Target, variant: Variant, seconds: float) -> list[str]:
        """wrk against ``target``'s route ``variant``."""
        command = [
            *(["taskset", "-c", "1"] if self.pin else []),
            "wrk",
            f"-t{self.threads}",
            f"-c{self.connections}",
            f"-d{seconds:g}s",
            "--timeout",
            "5s",
            "-s",
            str(LUA_SCRIPT),
            f"http://127.0.0.1:{target.port}",
            "--",
            str(target.tokens_file),
            variant.method,
            variant.path,
        ]
        return command

    def run(self, target: Target, variant: Variant, seconds: float) -> Run:
        out = subprocess.run(
            self.command(target, variant, seconds),
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        ).stdout
        rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
        line = re.search(r"^CCBENCH (.*)$", out, re.MULTILINE)
        if rps is None or line is None:
            raise RuntimeError(f"wrk printed no figures:\n{out}")
        figures = {k: int(v) for k, v in (pair.split("=") for pair in line.group(1).split())}
        errors = sum(
            figures[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts")
        )
        return Run(
            float(rps.group(1)),
            figures["p50_us"],
            figures["p90_us"],
            figures["p99_us"],
            figures["non2xx"],
            errors,
        )


def measure(
    targets: list[Target], variants: list[Variant], load: Load, rounds: int, seconds: float
) -> dict[str, list[Run]]:
    """Every variant ``rounds`` times, interleaved: per store its variants back to back (their
    order rotated every round), the stores in turn."""
    runs: dict[str, list[Run]] = {}
    for target in targets:  # warm-up: pools fill, statements get prepared, caches fill
        for v in variants:
            load.run(target, v, 2)
    for number in range(rounds):
        for target in targets:
            turn = number % len(variants)
            for v in variants[turn:] + variants[:turn]:
                runs.setdefault(name(target, v), []).append(load.run(target, v, seconds))
    return runs


def name(target: Target, variant: Variant) -> str:
    return f"{target.store} {variant.label}"


# -- report ---------------------------------------------------------------------------------


def spread(values: list[float], scale: float = 1.0, digits: int = 0) -> str:
    """Median and min-max."""
    med, lo, hi = (x / scale for x in (statistics.median(values), min(values), max(values)))
    return f"{med:.{digits}f} ({lo:.{digits}f}-{hi:.{digits}f})"


def report(targets: list[Target], variants: list[Variant], runs: dict[str, list[Run]]) -> None:
    print(
        f"\n{'variant':28} {'req/s median (min-max)':>24} {'p50 ms':>18} {'p99 ms':>18} "
        f"{'non-2xx':>7} {'errors':>6}"
    )
    for label, results in runs.items():
        print(
            f"{label:28} {spread([r.rps for r in results]):>24} "
            f"{spread([r.p50 for r in results], 1000, 2):>18} "
            f"{spread([r.p99 for r in results], 1000, 2):>18} "
            f"{sum(r.non2xx for r in results):7d} {sum(r.errors for r in results):6d}"
        )
    print(
        "\nthroughput / each floor of the same server (GET: no body; POST: reads the same body;"
        " raw GET: answered in front of the app),"
        f" per round (target for introspect: >= {TARGET:.0%} of the floor on Redis and "
        "PostgreSQL); server time per request = 1 / throughput (one worker, saturated), and its "
        "excess over each floor's, medians over the rounds:"
    )
    for target in targets:
        for v in variants:
            found = runs.get(name(target, v), [])
            if v == FLOOR_VARIANT or not found:
                continue
            against = [
                f"{ratio_to(found, runs.get(name(target, floor), []))} of the {FLOOR_NAMES[floor]}"
                for floor in FLOORS
                if floor != v and name(target, floor) in runs
            ]
            print(
                f"  {name(target, v):28} {'; '.join(against)}; "
                f"{1e6 / statistics.median([a.rps for a in found]):5.0f} µs per request"
            )
    for floor in FLOORS:
        medians = [
            statistics.median([r.rps for r in runs[name(t, floor)]])
            for t in targets
            if name(t, floor) in runs
        ]
        if len(medians) > 1:
            print(
                f"  the {FLOOR_NAMES[floor]}s of the {len(medians)} servers (the same code) "
                f"differ by up to {max(medians) / min(medians) - 1:.1%}"
            )


def ratio_to(found: list[Run], floor: list[Run]) -> str:
    """The median ratio of ``found`` to ``floor`` (paired by round), the per-round ratios and
    the median server time above the floor's."""
    ratios = [a.rps / b.rps for a, b in zip(found, floor, strict=True)]
    extra = [1e6 / a.rps - 1e6 / b.rps for a, b in zip(found, floor, strict=True)]
    return (
        f"{statistics.median(ratios):6.1%} (per round {', '.join(f'{r:.0%}' for r in ratios)}, "
        f"{statistics.median(extra):+.0f} µs)"
    )


def hit_rates(targets: list[Target]) -> None:
    """Per cached server: validations answered without a session-store round trip, over the
    whole run (warm-up and checks included), from the server's own ``/metrics``. Where the
    service coalesces look-ups (PostgreSQL: one ``load_many`` answers several misses) this is
    an upper bound of the cache's hit rate, not the hit rate itself."""
    for target in targets:
        if CACHE_ENV not in target.env:
            continue
        valid, loads = metric_counts(target)
        if valid:
            print(
                f"  {target.store}: {valid:.0f} valid introspections, {loads:.0f} session "
                f"store round trips (load, load_many): {1 - loads / valid:.1%} without one"
            )


def metric_counts(target: Target) -> tuple[float, float]:
    """Valid validations and session-store round trips (``load``, ``load_many``) so far,
    from ``/metrics``."""
    request = urllib.request.Request(f"http://127.0.0.1:{target.port}/metrics")
    with urllib.request.urlopen(request, timeout=5) as reply:
        text = reply.read().decode()
    valid = re.search(r'^coatcheck_validations_total\{result="valid"\} (\S+)$', text, re.M)
    loads = re.findall(
        r'^coatcheck_store_latency_seconds_count\{operation="load(?:_many)?"\} (\S+)$', text, re.M
    )
    return (float(valid.group(1)) if valid else 0.0, sum(float(n) for n in loads))


# -- the run --------------------------------------------------------------------------------


def versions() -> str:
    names = [
        "coatcheck",
        "fastapi",
        "starlette",
        "pydantic",
        "uvicorn",
        "uvloop",
        "httptools",
        "redis",
        "hiredis",
        "psycopg",
        "psycopg-pool",
        "prometheus-client",
    ]
    found = []
    for name in names:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    found.append(f"python {sys.version.split()[0]}")
    banner = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout
    found.append(banner.split(" [")[0].strip() or "wrk")
    with contextlib.suppress(Exception):
        import redis

        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_connect_timeout=1)
        found.append(f"redis-server {client.info('server')['redis_version']}")
        client.close()
    with contextlib.suppress(Exception):
        import psycopg

        with psycopg.connect(PG_DSN, connect_timeout=2) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            found.append(f"postgresql {row[0] if row else '?'}")
    return ", ".join(found)


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


@contextlib.contextmanager
def running(
    stores: list[str],
    sessions: int,
    pin: bool,
    factory: str,
    variants: list[Variant],
    compare: Path | None = None,
    caches: tuple[float, ...] = (),
) -> Iterator[list[Target]]:
    """Every store seeded and its server started; all of it stopped and removed afterwards.
    ``compare``: a second server per store (``<store>-B``, on the same store, key and
    sessions) importing coatcheck from that source folder."""
    lean = (*EXPERIMENTS, LEAN_CACHED_VARIANT)
    experiments = "1" if any(v in lean for v in variants) else "0"
    cleanup: list[Callable[[], Any]] = []
    targets: list[Target] = []
    with tempfile.TemporaryDirectory(prefix="ccbench-svc-") as tmp:
        try:
            for store in stores:
                try:
                    target = prepare(store, Path(tmp), sessions, cleanup)
                    target.env["CCBENCH_EXPERIMENTS"] = experiments
                    start(target, pin, factory)
                except Skip as exc:
                    print(f"  skipped {store}: {exc}")
                    continue
                targets.append(target)
                check(target, variants)
                print(
                    f"  {store}: {len(target.sample)} sampled tokens active; "
                    f"server: {shlex.join(target.command)}"
                )
                served = [target]
                if compare is not None:
                    paths = [str(compare), *filter(None, [target.env.get("PYTHONPATH")])]
                    env = {**target.env, "PYTHONPATH": os.pathsep.join(paths)}
                    other = replace(target, store=f"{store}-B", env=env, proc=None)
                    start(other, pin, factory)
                    targets.append(other)
                    served.append(other)
                    check(other, variants)
                    print(f"  {other.store}: the same with PYTHONPATH={env['PYTHONPATH']}")
                for age in caches:
                    for base in served:  # with --compare-src, both codes with the cache on
                        env = {**base.env, CACHE_ENV: f"{age:g}"}
                        label = f"{base.store}-cache{age:g}s"
                        cached = replace(base, store=label, env=env, proc=None)
                        start(cached, pin, factory)
                        targets.append(cached)
                        check(cached, variants)
                        print(f"  {cached.store}: the same with {CACHE_ENV}={age:g}")
            yield targets
        finally:
            for target in targets:
                stop(target)
            for undo in reversed(cleanup):
                try:
                    undo()
                except Exception as exc:  # report, and go on removing the rest
                    print(f"  cleanup failed: {exc}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--stores", default=",".join(STORES), help="comma-separated: sqlite,postgres,redis"
    )
    parser.add_argument("--rounds", type=int, help="rounds (default 3, quick 1)")
    parser.add_argument("--seconds", type=float, help="seconds per wrk run (default 10, quick 3)")
    parser.add_argument(
        "--sessions", type=int, default=10_000, help="sessions per store (tokens wrk rotates over)"
    )
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--connections", type=int, default=50, help="wrk connections (default 50)")
    parser.add_argument("--quick", action="store_true", help="one short round")
    parser.add_argument("--pin", action="store_true", help="server on CPU 0, wrk on CPU 1")
    parser.add_argument(
        "--experiments",
        action="store_true",
        help="also the lean introspection routes of benchmarks/service_lean.py",
    )
    parser.add_argument(
        "--profile", action="store_true", help="then sample each server with py-spy"
    )
    parser.add_argument(
        "--profile-seconds", type=float, default=15, help="seconds of sampling per store"
    )
    parser.add_argument(
        "--app",
        default="service_app:app",
        help="the app factory uvicorn serves (module:function, from benchmarks/ or PYTHONPATH)",
    )
    parser.add_argument(
        "--profile-dir", type=Path, help="keep py-spy's raw files (<store>.txt) in this folder"
    )
    parser.add_argument(
        "--compare-src",
        type=Path,
        help="A/B: also serve each store from this source folder (its coatcheck package)",
    )
    parser.add_argument(
        "--cache",
        default="",
        help="also serve each store with the introspection cache on, per max age (1,2)",
    )
    parser.add_argument(
        "--lean-cached",
        action="store_true",
        help="also the service's own introspection work behind a plain Starlette route",
    )
    parser.add_argument("--py-spy", default=shutil.which("py-spy"), help="the py-spy program")
    args = parser.parse_args()
    stores = [s for s in args.stores.split(",") if s]
    unknown = sorted(set(stores) - set(STORES))
    if unknown:
        parser.error(f"unknown store(s) {', '.join(unknown)}; choose from {', '.join(STORES)}")
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk")
        return 2
    if args.profile and not args.py_spy:
        print("--profile needs py-spy: pip install py-spy (or --py-spy PATH)")
        return 2
    try:
        caches = tuple(float(age) for age in args.cache.split(",") if age)
    except ValueError:
        parser.error(f"--cache {args.cache!r}: seconds, comma-separated (like 2 or 1,2)")
    if any(not 0 < age <= 60 for age in caches):
        parser.error("--cache: each max age must be above 0 and at most 60 seconds")
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 3)
    seconds = args.seconds or (3 if args.quick else 10)
    load = Load(args.threads, args.connections, args.pin)
    variants = [*FLOORS, INTROSPECT_VARIANT, *(EXPERIMENTS if args.experiments else ())]
    variants += [LEAN_CACHED_VARIANT] if args.lean_cached else []
    print(f"# service: {shlex.join([os.path.relpath(sys.executable), *sys.argv])}")
    print(f"# {versions()}")
    print(
        f"# {os.cpu_count()} CPUs ({cpu_model()}); server pinned to CPU 0, wrk to CPU 1: {args.pin}"
    )
    if not fast_server():
        print("# note: uvloop/httptools not installed: plain uvicorn (asyncio loop, h11)")
    print(f"# load average at the start (other processes share the machine): {loadavg()}")
    started = time.monotonic()
    compare = args.compare_src.resolve() if args.compare_src else None
    if compare is not None and not (compare / "coatcheck" / "__init__.py").is_file():
        parser.error(f"--compare-src {compare}: no coatcheck package there (give its src/)")
    with running(stores, args.sessions, args.pin, args.app, variants, compare, caches) as targets:
        if targets:
            shown = shlex.join(load.command(targets[-1], INTROSPECT_VARIANT, seconds))
            print(f"  load: {shown}   (the other routes: their METHOD PATH at the end)")
            print(f"  {rounds} round(s), {args.sessions} sessions per store, touch=false")
            runs = measure(targets, variants, load, rounds, seconds)
            for target in targets:
                check(target, variants)  # still the active path after the load
            report(targets, variants, runs)
            hit_rates(targets)
            if args.profile:
                from service_profile import profile_all

                profile_all(targets, load, args.py_spy, args.profile_seconds, args.profile_dir)
    print(f"\n# done in {time.monotonic() - started:.0f} s; load average at the end {loadavg()}")
    return 0


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
