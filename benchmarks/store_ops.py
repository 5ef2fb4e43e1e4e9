"""Per-operation cost of coatcheck's stores beside the raw client floor, measured in one run.

    .venv/bin/python benchmarks/store_ops.py [--rounds 7] [--ops 300] [--stores sqlite,redis]
    .venv/bin/python benchmarks/store_ops.py --pin   # this process, redis-server and every
                                                     # postgres process on CPU 0 (restored after)

For each store: median microseconds of
  load   a valid session inside the touch interval (no write),
  touch  a save after the touch interval (one conditional write of last_seen/expiry),
  patch  a save with one key changed (one atomic patch),
beside the floor a server-side session cannot beat: one raw lookup of a same-sized value
(redis-py GET; psycopg prepared SELECT by primary key; sqlite3 SELECT by primary key).
Variants are interleaved round by round (A B A B ...), as PERFORMANCE-NOTES.md advises; the
report gives the median and the min-max of the per-round medians, and the load/floor ratio.
It also counts store writes during the loads: the target is 0.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from coatcheck import FakeClock, Policy, SessionManager, open_store
from coatcheck.stores import Store

PAYLOAD = {"cart": ["book-123", "pen-9"], "theme": "dark", "csrf": secrets.token_urlsafe(32)}
PAYLOAD["pad"] = "x" * max(0, 200 - len(json.dumps(PAYLOAD)))
POLICY = Policy(idle_timeout=10 * 365 * 86400, absolute_lifetime=20 * 365 * 86400)

Op = Callable[[], object]


class CountingStore:
    """Counts write calls: reads inside the touch interval must write nothing."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.url = inner.url
        self.writes = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name in ("insert", "update", "delete", "delete_user", "delete_all", "purge_expired"):

            def counted(*args: Any, **kwargs: Any) -> Any:
                self.writes += 1
                return attr(*args, **kwargs)

            return counted
        return attr


def coatcheck_ops(url: str) -> tuple[dict[str, Op], CountingStore, Callable[[], None]]:
    clock = FakeClock()
    store = CountingStore(open_store(url))
    manager = SessionManager(store, POLICY, clock=clock)  # type: ignore[arg-type]
    token, _ = manager.create("bench-user", data=PAYLOAD)
    counter = iter(range(10**9))

    def load() -> object:
        return manager.load(token)

    def touch() -> object:
        session = manager.load(token)
        clock.advance(POLICY.touch_interval + 1)
        t0 = time.perf_counter_ns()
        manager.save(session)
        return time.perf_counter_ns() - t0

    def patch() -> object:
        session = manager.load(token)
        session["n"] = next(counter)
        t0 = time.perf_counter_ns()
        manager.save(session)
        return time.perf_counter_ns() - t0

    def clean_up() -> None:
        manager.revoke_all()  # leaves nothing behind in a shared Redis or database
        manager.close()

    return {"load": load, "touch": touch, "patch": patch}, store, clean_up


def raw_floor(kind: str, url: str) -> tuple[Op, Callable[[], None]]:
    value = json.dumps(PAYLOAD)
    key = secrets.token_bytes(32)
    if kind == "redis":
        import redis

        client = redis.Redis(host="127.0.0.1", port=6379, protocol=2)
        name = b"ccbench:" + key.hex().encode()
        client.set(name, value)

        def redis_get() -> object:
            return client.get(name)

        return redis_get, lambda: (client.delete(name), client.close())  # type: ignore[func-returns-value]
    if kind == "postgres":
        import psycopg

        conn = psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True)
        conn.execute("CREATE TEMP TABLE raw_floor (id bytea PRIMARY KEY, v text)")
        conn.execute("INSERT INTO raw_floor VALUES (%s, %s)", (key, value))

        def pg_select() -> object:
            return conn.execute(
                "SELECT v FROM raw_floor WHERE id = %s", (key,), prepare=True
            ).fetchone()

        return pg_select, conn.close
    path = url[len("sqlite:///") :] + ".floor"
    conn3 = sqlite3.connect(path, isolation_level=None)
    conn3.execute("PRAGMA journal_mode=WAL")
    conn3.execute("CREATE TABLE IF NOT EXISTS f (id BLOB PRIMARY KEY, v TEXT) WITHOUT ROWID")
    conn3.execute("INSERT INTO f VALUES (?, ?)", (key, value))

    def sqlite_select() -> object:
        return conn3.execute("SELECT v FROM f WHERE id = ?", (key,)).fetchone()

    return sqlite_select, conn3.close


def timed(op: Op, n: int) -> float:
    """Median µs of n calls; an op may return its own ns (to exclude its set-up)."""
    samples = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        inner = op()
        elapsed = time.perf_counter_ns() - t0
        samples.append(inner if isinstance(inner, int) else elapsed)
    return statistics.median(samples) / 1000


def store_urls(tmp: str) -> dict[str, str]:
    return {
        "sqlite": f"sqlite:///{tmp}/bench.db",
        "postgres": f"postgresql://postgres@127.0.0.1:5432/test?table=cc_bench_{secrets.token_hex(4)}",
        "redis": f"redis://127.0.0.1:6379/0?prefix=ccbench:{secrets.token_hex(4)}:",
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--ops", type=int, default=300, help="operations per variant per round")
    parser.add_argument("--stores", default="sqlite,postgres,redis")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="pin this process and the local redis-server and postgres processes to CPU 0",
    )
    args = parser.parse_args()
    restore: dict[int, set[int]] = {}
    if args.pin:
        os.sched_setaffinity(0, {0})
        restore = pin_servers()
    try:
        return run(args)
    finally:
        for pid, cpus in restore.items():
            subprocess.run(
                ["taskset", "-a", "-cp", ",".join(map(str, cpus)), str(pid)],
                check=False,
                capture_output=True,
            )


def pin_servers() -> dict[int, set[int]]:
    """Pin redis-server and all postgres processes (new backends inherit it) to CPU 0, so a
    round trip does not flip between same-CPU and cross-CPU costs mid-run."""
    found = subprocess.run(
        ["pgrep", "-x", "redis-server|postgres"], capture_output=True, text=True, check=False
    )
    restore = {}
    for pid in map(int, found.stdout.split()):
        try:
            restore[pid] = os.sched_getaffinity(pid)
        except OSError:
            continue
        subprocess.run(["taskset", "-a", "-cp", "0", str(pid)], check=False, capture_output=True)
    return restore


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        urls = store_urls(tmp)
        print(
            f"# store_ops: {args.rounds} rounds x {args.ops} ops, pinned={args.pin}, "
            f"python {sys.version.split()[0]}"
        )
        print(f"{'store':9} {'op':6} {'median µs':>10} {'min-max of rounds':>20} {'x floor':>8}")
        for kind in args.stores.split(","):
            try:
                ops, counting, close = coatcheck_ops(urls[kind])
                floor, close_floor = raw_floor(kind, urls[kind])
            except Exception as exc:
                print(f"{kind:9} skipped: {exc}")
                continue
            variants: dict[str, Op] = {"floor": floor, **ops}
            for op in variants.values():  # warm-up (connections, prepared statements)
                timed(op, 50)
            rounds: dict[str, list[float]] = {name: [] for name in variants}
            writes_before = counting.writes
            load_writes = 0
            for _ in range(args.rounds):
                for name, op in variants.items():
                    before = counting.writes
                    rounds[name].append(timed(op, args.ops))
                    if name == "load":
                        load_writes += counting.writes - before
            del writes_before
            floor_median = statistics.median(rounds["floor"])
            for name, values in rounds.items():
                median = statistics.median(values)
                spread = f"{min(values):.1f}-{max(values):.1f}"
                ratio = "" if name == "floor" else f"{median / floor_median:.2f}"
                print(f"{kind:9} {name:6} {median:10.1f} {spread:>20} {ratio:>8}")
            print(f"{kind:9} writes during {args.rounds * args.ops} loads: {load_writes}")
            close()
            close_floor()
            if kind == "postgres":
                _drop_table(urls[kind])
    return 0


def _drop_table(url: str) -> None:
    import psycopg

    table = url.split("table=")[1]
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")


if __name__ == "__main__":
    sys.exit(main())
