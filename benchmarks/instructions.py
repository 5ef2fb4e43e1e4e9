"""CPU instructions the uvicorn server spends per request: a deterministic companion to part 3
of web_overhead.py.

    apt-get install -y valgrind
    .venv/bin/python benchmarks/instructions.py [--variants hello,coatcheck-redis] \\
        [--requests 300,1300] [--out-dir DIR]

What it measures
  The same apps as web_overhead.py's part 3 (``wrk_app``: hello, redis-floor, coatcheck-redis,
  pg-floor, coatcheck-pg; same data, same uvicorn command with uvloop + httptools) each run under
  ``valgrind --tool=callgrind``, which counts the user-space instructions the server process
  executes. This process sends N1 and then, to a fresh server, N2 GET / requests over one
  keep-alive connection (with coatcheck's session cookie for the coatcheck apps) and stops the
  server with SIGTERM. (count(N2) - count(N1)) / (N2 - N1) is the cost of one request, with
  start-up and shutdown cancelled out. Every response is checked: status 200, body "dark", and
  no Set-Cookie on coatcheck's read-only requests; coatcheck's session must not be written.
  The report gives instructions per request and, for Redis and PostgreSQL, the ratio
  floor/coatcheck: the share of coatcheck's cost that the raw lookup alone already needs.

Why
  wrk's requests per second on this 2-vCPU machine swing by +-30 % between rounds (other
  processes, CPU migration, clock drift). An instruction count does not depend on any of that:
  repeated runs agree to about 0.5 %, so a change of a few percent in coatcheck's hot path shows
  up here when wrk cannot see it. The server runs with PYTHONHASHSEED=0 for the same reason.

What it does not capture
  Kernel time and system calls (only their user-space wrappers are counted), cache misses,
  branch mispredictions and instructions per cycle, waiting on Redis or PostgreSQL (their
  servers are not counted, nor is the client), and everything about concurrency: many
  connections at once, batching in the event loop, contention. Work that runs on a timer
  (uvicorn's 0.1 s tick, pool maintenance) is counted per unit of time, and valgrind makes
  everything about 50 times slower, so it weighs a little more here than under wrk. The count
  is a repeatable proxy for throughput, not a replacement for wrk: read both.

Everything goes to 127.0.0.1 only, under a random Redis key prefix and private tables, which
are removed at the end. A variant whose server (or coatcheck store) is missing is reported as
skipped. It prints numbers and ratios, never pass/fail; exit code 2 when valgrind is missing,
1 when a variant answered wrongly or its count could not be read.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.metadata
import importlib.util
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import web_overhead as wo

VARIANTS = ("hello", "redis-floor", "coatcheck-redis", "pg-floor", "coatcheck-pg")
PAIRS = (
    ("coatcheck-redis", "redis-floor", "the raw Redis GET floor"),
    ("coatcheck-pg", "pg-floor", "the raw PostgreSQL SELECT floor"),
)
STARTUP_SECONDS = 300  # python + uvicorn + the app's imports under valgrind
SHUTDOWN_SECONDS = 300


class Failed(Exception):
    """A variant that ran but answered wrongly, or whose count could not be read."""


def send_requests(server: wo.Server, n: int) -> None:
    """``n`` GET / over one keep-alive connection, each reply checked as check_server does."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    headers = {"Cookie": server.cookie} if server.cookie else {}
    try:
        for i in range(n):
            conn.request("GET", "/", headers=headers)
            reply = conn.getresponse()
            body = reply.read()
            if reply.status != 200 or body != b"dark" or reply.getheader("set-cookie"):
                raise Failed(
                    f"{server.name}: request {i + 1} answered {reply.status} {body!r}, "
                    f"{dict(reply.getheaders())}"
                )
            if reply.will_close:
                raise Failed(f"{server.name}: the server closed the keep-alive connection")
    finally:
        conn.close()


def callgrind_total(out_file: str, log_file: str) -> int:
    with contextlib.suppress(OSError), open(out_file) as out:
        for line in out:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    with contextlib.suppress(OSError), open(log_file) as log:
        tail = log.read()[-1500:]
        raise Failed(f"no callgrind count in {out_file}; valgrind said:\n{tail}")
    raise Failed(f"no callgrind count in {out_file} and no valgrind log")


def count_instructions(plan: wo.WrkPlan, n: int, fast: bool, out_dir: str) -> int:
    """Instructions of one server run that answers ``n`` requests (plus one check and /ping)."""
    out_file = os.path.join(out_dir, f"callgrind.{plan.name}.{n}.out")
    log_file = os.path.join(out_dir, f"valgrind.{plan.name}.{n}.log")
    with contextlib.suppress(FileNotFoundError):
        os.remove(out_file)
    wrapper = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out_file}",
        f"--log-file={log_file}",
    ]
    env = {**plan.env, "PYTHONHASHSEED": "0"}
    server = wo.start_server(plan.name, env, plan.cookie, fast, wrapper, STARTUP_SECONDS)
    try:
        wo.check_server(server)
        send_requests(server, n)
    finally:
        wo.stop_server(server, SHUTDOWN_SECONDS)
    return callgrind_total(out_file, log_file)


def measure(plan: wo.WrkPlan, counts: tuple[int, int], fast: bool, out_dir: str) -> float:
    """Instructions per request of one variant; prints its row."""
    started = time.monotonic()
    writes_before = plan.writes() if plan.writes else 0
    totals = [count_instructions(plan, n, fast, out_dir) for n in counts]
    writes = plan.writes() - writes_before if plan.writes else 0
    per_request = (totals[1] - totals[0]) / (counts[1] - counts[0])
    note = f"  ({writes} writes to its session!)" if writes else ""
    print(
        f"{plan.name:16} {totals[0]:>15,} {totals[1]:>15,} {per_request / 1000:11.1f}k "
        f"{time.monotonic() - started:6.0f} s{note}",
        flush=True,
    )
    return per_request


def versions() -> str:
    names = ["coatcheck", "uvicorn", "uvloop", "httptools", "starlette", "redis", "psycopg"]
    names.append("psycopg-pool")
    found = [f"python {sys.version.split()[0]}"]
    for name in names:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    banner = subprocess.run(["valgrind", "--version"], capture_output=True, text=True).stdout
    found.append(banner.strip() or "valgrind (version unknown)")
    return ", ".join(found)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--variants", default=",".join(VARIANTS), help=f"comma list of {', '.join(VARIANTS)}"
    )
    parser.add_argument(
        "--requests",
        default="300,1300",
        help="N1,N2: requests of the short and the long run (default 300,1300)",
    )
    parser.add_argument("--out-dir", help="keep the callgrind files here (for callgrind_annotate)")
    args = parser.parse_args()
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    try:
        n1, n2 = (int(x) for x in args.requests.split(","))
    except ValueError:
        parser.error("--requests takes two numbers: N1,N2")
    if not 0 <= n1 < n2:
        parser.error("--requests N1,N2 needs 0 <= N1 < N2")
    if shutil.which("valgrind") is None:
        print(
            "instructions.py needs valgrind (callgrind counts the instructions): "
            "apt-get install -y valgrind",
            file=sys.stderr,
        )
        return 2

    print(f"# instructions: {shlex.join([os.path.relpath(sys.executable), *sys.argv])}")
    print(f"# {versions()}")
    fast = all(importlib.util.find_spec(m) for m in ("uvloop", "httptools"))
    server = "uvloop + httptools" if fast else "plain uvicorn (asyncio loop, h11)"
    print(
        f"# one uvicorn worker ({server}) under callgrind, PYTHONHASHSEED=0; "
        f"{n1} and {n2} requests over one keep-alive connection; policy {wo.POLICY_ARGS}"
    )
    started = time.monotonic()
    prefix = f"ccinstr:{secrets.token_hex(4)}:"
    cleanup: list[Callable[[], Any]] = []
    results: dict[str, float] = {}
    failed = False
    with contextlib.ExitStack() as stack:
        out_dir = args.out_dir or stack.enter_context(tempfile.TemporaryDirectory())
        os.makedirs(out_dir, exist_ok=True)
        try:
            plans = {plan.name: plan for plan in wo.wrk_plans(prefix, cleanup)}
            print(
                f"\n{'app':16} {f'instr @{n1}':>15} {f'instr @{n2}':>15} "
                f"{'per request':>12} {'time':>8}"
            )
            for name in variants:
                if name not in plans:
                    print(f"{name:16} skipped: its server or store is missing (see above)")
                    continue
                try:
                    results[name] = measure(plans[name], (n1, n2), fast, out_dir)
                except wo.Skip as exc:
                    print(f"{name:16} skipped: {exc}")
                except (Failed, OSError, http.client.HTTPException) as exc:
                    print(f"{name:16} failed: {exc}")
                    failed = True
        finally:
            for close in reversed(cleanup):
                with contextlib.suppress(Exception):
                    close()
            wo.cleanup_redis(prefix)
    print()
    for cc, floor, what in PAIRS:
        if cc in results and floor in results:
            print(
                f"{cc} needs {results[cc] / 1000:.1f}k instructions per request, "
                f"{what} {results[floor] / 1000:.1f}k: "
                f"floor/coatcheck = {results[floor] / results[cc]:.1%}"
            )
    if "hello" in results:
        print(f"(hello, the app with no lookup at all: {results['hello'] / 1000:.1f}k)")
    if args.out_dir:
        print(f"callgrind files kept in {args.out_dir} (callgrind_annotate FILE)")
    print(f"\n# done in {time.monotonic() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
