"""Where the service's CPU time goes during introspection under load (benchmarks/service.py
``--profile``; also runs alone on a raw py-spy file).

py-spy samples the running uvicorn process (``record --pid --nonblocking --format raw``, idle
samples left out) while wrk sends the same introspection load as the measured runs. The
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

# Parts of a request, matched against "function (file:line)" frames; the first pattern of a
# part that matches any frame of a sample counts that sample for the part.
PARTS: tuple[tuple[str, str], ...] = (
    ("endpoint body (service API function)", r"coatcheck/service/api/"),
    ("service-key check", r"coatcheck/service/keys\.py|authenticate"),
    ("session lookup: manager + store + driver", r"coatcheck/_async/manager\.py"),
    (
        "  store call incl. driver",
        r"coatcheck/(_async/stores|stores)/|service/metrics\.py.*\b(load|timed)\b",
    ),
    (
        "  store driver (redis-py, hiredis, psycopg, sqlite3)",
        r"/(redis|hiredis|psycopg|psycopg_pool|sqlite3)/",
    ),
    ("  metrics (prometheus_client)", r"prometheus_client/"),
    ("API token path (apitokens)", r"apitokens"),
    ("service data (ServiceData)", r"coatcheck/service/data/"),
    ("pydantic validation / serialisation", r"pydantic|validate_python|validate_json"),
    ("FastAPI: dependencies and parameters", r"fastapi/dependencies/"),
    (
        "FastAPI: request body read and parse",
        r"fastapi/routing\.py.*(get_request_handler|app)\b.*|\bbody\b.*starlette/requests",
    ),
    (
        "FastAPI: response serialisation",
        r"serialize_response|jsonable_encoder|_prepare_response_content",
    ),
    ("JSON encode/decode (json module)", r"/json/"),
    ("Starlette routing and middleware", r"starlette/(routing|middleware|applications)"),
    ("uvicorn protocol (httptools)", r"uvicorn/protocols/"),
)
INTERESTING = re.compile(r"coatcheck/|fastapi/|starlette/|pydantic")
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
    """The package a frame's file belongs to, for the self-time table."""
    match = FRAME.match(frame)
    file = match.group("file") if match else frame
    for marker in ("site-packages/", "/src/", "lib/python3"):
        if marker in file:
            rest = file.split(marker, 1)[1].lstrip("/")
            if marker == "lib/python3":
                rest = "stdlib:" + rest.split("/", 1)[-1]
            head = rest.split("/")
            if head[0] == "coatcheck" and len(head) > 2:
                return "/".join(head[:2])
            return head[0].removesuffix(".py")
    return file or "?"


def function(frame: str) -> str:
    """``function (path:line)`` shortened to ``function (package/file)``."""
    match = FRAME.match(frame)
    if not match:
        return frame
    file = match.group("file")
    for marker in ("site-packages/", "/src/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{match.group('func')} ({file})"


def summarize(samples: Sequence[tuple[list[str], int]], top: int = 25) -> str:
    total = sum(count for _, count in samples)
    if not total:
        return "  no samples (is py-spy allowed to attach? it needs ptrace: run as root)"
    out = [f"  {total} samples"]
    parts: Counter[str] = Counter()
    compiled = [(name, re.compile(pattern)) for name, pattern in PARTS]
    for stack, count in samples:
        for name, pattern in compiled:
            if any(pattern.search(frame) for frame in stack):
                parts[name] += count
    out.append("  inclusive share by part (a sample counts for every part on its stack):")
    for name, _ in PARTS:
        out.append(f"    {parts[name] / total:6.1%}  {name}")
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
    from service import INTROSPECT

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
            "--nonblocking",
            "--format",
            "raw",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    load.run(target, INTROSPECT, seconds + 2)
    _, err = spy.communicate(timeout=seconds + 60)
    if spy.returncode != 0:
        raise RuntimeError(f"py-spy failed: {err.strip()}")


def profile_all(targets: Sequence[Any], load: Any, py_spy: str, seconds: float) -> None:
    print(
        f"\n## Profile: py-spy record --rate 250 --nonblocking, {seconds:g} s of introspection load"
    )
    with tempfile.TemporaryDirectory(prefix="ccbench-prof-") as tmp:
        for target in targets:
            out = Path(tmp) / f"{target.store}.txt"
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
