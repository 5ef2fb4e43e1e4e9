"""Interleaved wall-clock comparison of a few part-1 rows of web_overhead.py: quick A/B work.

    .venv/bin/python benchmarks/ab_rows.py django read "django/coatcheck/memory" \\
        "django/Django cache (locmem)/memory" [--rounds 15 --requests 300 --chunk 30]

Builds one framework's variants as part 1 does, then measures only the named ones (and the
bare app, which is subtracted) in interleaved chunks, round after round: about 2 seconds for
two Django rows, against 35 seconds for all of part 1. It prints each row's library cost
(median of the round medians) and its ratio to the first row named.

For a code change, run it with and without the change in alternating pairs (for example with
``git stash push <paths>`` / ``git stash pop`` between runs) and compare the two sets of
ratios: on these machines one run's ratio moves by about ±0.03, so one pair decides nothing.
It prints numbers and ratios, never pass/fail; the figures of record come from
web_overhead.py and request_instructions.py (docs/performance.md).
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import web_overhead as wo  # the benchmark's own apps


def measure(framework: str, op: str, keys: list[str], rounds: int, n: int, chunk: int) -> None:
    bare_key = f"{framework}/bare app/-"
    order = [bare_key, *keys]
    with wo.environment(f"ccab:{secrets.token_hex(4)}:") as env:
        chosen = {v.key: v for v in wo.seeded_variants(env, framework) if v.key in order}
        missing = [k for k in order if k not in chosen]
        if missing:
            raise SystemExit(f"no variant {', '.join(map(repr, missing))} (part 1 prints keys)")
        medians: dict[str, list[float]] = {k: [] for k in order}
        for _ in range(rounds):
            samples: dict[str, list[int]] = {k: [] for k in order}
            for _ in range(max(1, n // chunk)):
                for key in order:
                    # batch() selects the variant's shared state (Django) and warms it up
                    taken, _, _ = wo.batch(env, chosen[key], f"/{op}", chunk)
                    samples[key] += taken
            for key in order:
                medians[key].append(statistics.median(samples[key]) / 1000)
    base = statistics.median(medians[bare_key])
    costs = {k: statistics.median(medians[k]) - base for k in keys}
    print(f"# {framework} {op}: {rounds} rounds x {n} requests, chunks of {chunk}")
    print(f"{'variant':50} {'lib µs':>8} {'/ first':>8}")
    for key in keys:
        print(f"{key:50} {costs[key]:8.2f} {costs[key] / costs[keys[0]]:8.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("framework", choices=sorted(wo.FRAMEWORKS))
    parser.add_argument("op", choices=["read", "write"])
    parser.add_argument("keys", nargs="+", help='part-1 keys, "framework/library/store"')
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--requests", type=int, default=300, help="per variant per round")
    parser.add_argument("--chunk", type=int, default=30)
    args = parser.parse_args()
    measure(args.framework, args.op, args.keys, args.rounds, args.requests, args.chunk)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
