"""Instructions per request of part-1 apps of web_overhead.py: deterministic, for close rows.

    apt-get install -y valgrind
    .venv/bin/python benchmarks/request_instructions.py "django/coatcheck/memory:read" \\
        "django/Django cache (locmem)/memory:read" [--requests 200,1200]

Each argument names a variant of web_overhead.py's part 1 by its key (framework/library/store,
as part 1 prints them) and an operation (read or write). For each, this script runs itself
under ``valgrind --tool=callgrind`` twice: it builds every variant of that framework (as part 1
does, so shared state such as Django's caches is the same), seeds them, warms the chosen one
up, then drives it with N1 and, in a second process, N2 requests. (count(N2) - count(N1)) /
(N2 - N1) is one request's instructions, with start-up cancelled out. The framework's bare app
is measured the same way and subtracted: "library" is the session library's own cost.
PYTHONHASHSEED=0 keeps the counts repeatable (to about 0.5 %).

Wall clock (part 1) and these counts can disagree by up to about 10 %: the count does not see
cache misses, system calls or how fast the CPU runs each instruction. It prints numbers and
ratios, never pass/fail.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import web_overhead as wo  # the benchmark's own apps


def drive(key: str, op: str, requests: int) -> None:
    """The child: build the framework's variants, then send ``requests`` to the chosen one."""
    with wo.environment(f"ccri:{secrets.token_hex(4)}:") as env:
        variants = {v.key: v for v in wo.seeded_variants(env, key.split("/", 1)[0])}
        chosen = variants.get(key)
        if chosen is None:
            raise SystemExit(f"no variant {key!r} (part 1 prints the keys)")
        wo.seed(env, chosen)  # select it again (Django's shared state)
        wo.batch(env, chosen, f"/{op}", 50)
        wo.batch(env, chosen, f"/{op}", requests)


def count(key: str, op: str, requests: int) -> int:
    """Instructions of one child run under callgrind."""
    with tempfile.TemporaryDirectory() as out:
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}/callgrind.out",
            sys.executable,
            os.path.abspath(__file__),
            "--child",
            f"{key}:{op}",
            "--requests",
            str(requests),
        ]
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
            check=False,
        )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"{key}:{op}: the run failed\n{done.stderr[-2000:]}")
    return int(found.group(1))


def per_request(key: str, op: str, n1: int, n2: int) -> float:
    return (count(key, op, n2) - count(key, op, n1)) / (n2 - n1)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("variants", nargs="+", help='"framework/library/store:read|write"')
    parser.add_argument("--requests", default="200,1200", help="N1,N2 (default 200,1200)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    targets = []
    for spec in args.variants:
        key, _, op = spec.rpartition(":")
        if op not in ("read", "write") or key.count("/") != 2:
            parser.error(f"{spec!r}: expected framework/library/store:read or :write")
        targets.append((key, op))
    if args.child:
        drive(*targets[0], int(args.requests))
        return 0
    n1, n2 = (int(x) for x in args.requests.split(","))
    if shutil.which("valgrind") is None:
        print("this script needs valgrind: apt-get install -y valgrind", file=sys.stderr)
        return 2
    print(f"# instructions per request, callgrind, PYTHONHASHSEED=0, {n1} and {n2} requests")
    print(f"{'variant':52} {'op':5} {'request':>10} {'library':>10}")
    bare: dict[tuple[str, str], float] = {}
    for key, op in targets:
        framework = key.split("/", 1)[0]
        if (framework, op) not in bare:
            bare[(framework, op)] = per_request(f"{framework}/bare app/-", op, n1, n2)
        total = per_request(key, op, n1, n2)
        library = total - bare[(framework, op)]
        print(f"{key:52} {op:5} {total / 1000:9.1f}k {library / 1000:9.1f}k", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
