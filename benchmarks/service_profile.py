"""Where the service's CPU time goes during introspection under load (benchmarks/service.py
``--profile``; also runs alone on a raw py-spy file).

py-spy samples the running uvicorn process (``record --pid --format raw``, idle samples left
out) while wrk sends the same introspection load as the measured runs. The
server is CPU-bound under that load, so a share of the samples is a share of its time per
request. The summary gives, per store:

- inclusive shares of the parts an introspection crosses (a sample counts for every part
  that is on its stack, so the shares add up to more than 100 %);
- self time by package (the frame at the top of the stack);
- the functions with the most inclusive time in coatcheck, FastAPI, Starlette and pydantic.

    .venv/bin/python benchmarks/service_profile.py FILE.txt     # summarise a raw py-spy file
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Parts of a request, matched against py-spy's "function (package/file.py:line)" frames: a
# sample counts for a part when any frame of its stack matches.
PARTS: tuple[tuple[str, str], ...] = (
    ("everything under FastAPI (middleware, routing, endpoint)", r"^FastAPI\.__call__ "),
    ("  FastAPI dependency solving, all of it", r"^solve_dependencies "),
    (
        "  service-key check (authenticated, RememberedKeys, ServiceKeys)",
        r"^(authenticated|RememberedKeys\.authenticate|ServiceKeys\.authenticate) ",
    ),
    ("    its store call (ServiceData)", r"\(coatcheck/service/data/"),
    (
        "  request body: read, JSON, pydantic (read_body)",
        r"^(json_body\.<locals>\.read|read_body) ",
    ),
    ("  the endpoint function (introspect)", r"^introspect \(coatcheck/service/api/"),
    ("    session lookup (AsyncSessionManager.inspect)", r"^AsyncSessionManager\.inspect "),
    ("      store load, timed for the metrics", r"^InstrumentedStore\.load "),
    ("  prometheus_client (metrics)", r"\(prometheus_client/"),
    ("  building the JSON answer (JSONResponse)", r"^JSONResponse\.__init__ "),
    (
        "store and driver code, sessions and service data",
        r"\((psycopg|psycopg_pool|redis|hiredis|sqlite3|coatcheck/(_async/)?stores|coatcheck/service/data)/",
    ),
    ("sending the answer (uvicorn RequestResponseCycle.send)", r"^RequestResponseCycle\.send "),
    ("parsing requests (uvicorn data_received, httptools)", r"^HttpToolsProtocol\.data_received "),
)
# A thread pool's worker waiting for work (the SQLite stores' threads): py-spy counts that
# wait as active, so such samples are left out.
IDLE_WORKER = re.compile(r"^_worker \(concurrent/futures/thread\.py")
WORKER_THREAD = re.compile(r"^Thread\._bootstrap ")
INTERESTING = re.compile(r"\((coatcheck|fastapi|starlette|pydantic)")
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def read_raw(path: Path) -> list[tuple[list[str], int]]:
    """py-spy's raw (collapsed) format: ``frame;frame;...;leaf count`` per line, root first."""
    samples = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            samples.append((stack.split(";"), int(count)))
    return samples


def package(frame: str) -> str:
    """The package a frame's file belongs to (coatcheck: its subpackage), for the self-time
    table; py-spy names files from their package down (``fastapi/routing.py``)."""
    match = FRAME.match(frame)
    file = match.group("file") if match else frame
    parts = file.split("/")
    if parts[0] == "coatcheck" and len(parts) > 2:
        return "/".join(parts[:-1]) if len(parts) < 5 else "/".join(parts[:3])
    return parts[0].removesuffix(".py") or "?"


def function(frame: str) -> str:
    """``function (path:line)`` shortened to ``function (package/file)``."""
    match = FRAME.match(frame)
    if not match:
        return frame
    return f"{match.group('func')} ({match.group('file')})"


def summarize(all_samples: Sequence[tuple[list[str], int]], top: int = 25) -> str:
    samples = [(stack, n) for stack, n in all_samples if not IDLE_WORKER.match(stack[-1])]
    total = sum(count for _, count in samples)
    if not total:
        return "  no samples (is py-spy allowed to attach? it needs ptrace: run as root)"
    idle = sum(count for _, count in all_samples) - total
    threads = sum(n for stack, n in samples if WORKER_THREAD.match(stack[0]))
    out = [
        f"  {total} samples ({idle} more of idle pool threads left out); "
        f"in worker threads (the SQLite stores' pools): {threads / total:.1%}"
    ]
    parts: Counter[str] = Counter()
    compiled = [(name, re.compile(pattern)) for name, pattern in PARTS]
    for stack, count in samples:
        for name, pattern in compiled:
            if any(pattern.search(frame) for frame in stack):
                parts[name] += count
    out.append("  inclusive share by part (a sample counts for every part on its stack):")
    for name, _ in PARTS:
        out.append(f"    {parts[name] / total:6.1%}  {name}")
    outside = 1 - parts[PARTS[0][0]] / total
    out.append(f"    {outside:6.1%}  not under FastAPI: uvicorn's protocol, the event loop")
    by_package: Counter[str] = Counter()
    for stack, count in samples:
        by_package[package(stack[-1])] += count
    out.append("  self time by package (top of the stack):")
    for name, count in by_package.most_common(15):
        out.append(f"    {count / total:6.1%}  {name}")
    inclusive: Counter[str] = Counter()
    for stack, count in samples:
        for name in {function(f) for f in stack if INTERESTING.search(f)}:
            inclusive[name] += count
    out.append("  inclusive time of coatcheck / FastAPI / Starlette / pydantic functions:")
    for name, count in inclusive.most_common(top):
        out.append(f"    {count / total:6.1%}  {name}")
    return "\n".join(out)


def profile(target: Any, load: Any, py_spy: str, seconds: float, out: Path) -> None:
    """py-spy on ``target``'s server for ``seconds`` while wrk sends introspections."""
    from service import INTROSPECT_VARIANT

    assert target.proc is not None
    spy = subprocess.Popen(
        [
            py_spy,
            "record",
            "--pid",
            str(target.proc.pid),
            "--duration",
            f"{seconds:.0f}",
            "--rate",
            "250",
            "--format",
            "raw",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    load.run(target, INTROSPECT_VARIANT, seconds + 2)
    _, err = spy.communicate(timeout=seconds + 60)
    if spy.returncode != 0:
        raise RuntimeError(f"py-spy failed: {err.strip()}")


def profile_all(
    targets: Sequence[Any], load: Any, py_spy: str, seconds: float, keep: Path | None = None
) -> None:
    """Sample every target's server in turn; ``keep``: the folder for the raw py-spy files
    (``<store>.txt``, also readable by flame graph tools), else they are removed."""
    print(f"\n## Profile: py-spy record --rate 250, {seconds:g} s of introspection load")
    with tempfile.TemporaryDirectory(prefix="ccbench-prof-") as tmp:
        folder = keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for target in targets:
            out = folder / f"{target.store}.txt"
            print(f"\n### {target.store}")
            try:
                profile(target, load, py_spy, seconds, out)
            except (RuntimeError, subprocess.SubprocessError) as exc:
                print(f"  skipped: {exc}")
                continue
            print(summarize(read_raw(out)))


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(f"## {name}")
        print(summarize(read_raw(Path(name))))
