"""The service's own cost per introspection, without a server, a socket or a store server.

    .venv/bin/python benchmarks/service_inprocess.py [--store memory] [--rounds 9] [--pin]

The app of benchmarks/service_app.py (the service as ``create_app`` builds it, the floor
routes, the raw floor in front of it and the lean routes of benchmarks/service_lean.py) is
called directly as an ASGI app, in this process, on uvloop, one request at a time: what remains
is the Python work of each route, the part that benchmarks/service.py's wrk runs cannot
separate from the kernel, the store server and wrk sharing two CPUs. With the default
``memory`` store a store call costs a dict look-up, so the differences between the routes are
the service's own layers (``--store sqlite|postgres|redis`` adds each store's round trip, set
up and removed as by service.py):

- ``floor`` - ``raw floor``: what FastAPI's middleware stack, router and request/response
  wrappers cost a trivial route; the introspection is served in front of them (the service's
  fast path), as the raw floor is;
- ``introspect`` - ``lean, key cached``: the service's route around the same work against a
  plain Starlette route inside FastAPI's stack (before the fast path: FastAPI's
  request/response wrappers, dependencies, the body read), with the remembered key on both
  sides (before the API remembered keys: ``introspect`` - ``lean, key per call``);
- ``lean, key per call`` - ``lean, key cached``: a service-key look-up in the store;
- ``lean, key cached`` - ``floor``: the body model, the session lookup, the answer.

Routes are interleaved in short chunks within each round (PERFORMANCE-NOTES.md); the report
gives the median of the per-round medians, min-max, and the differences. ``--pin`` pins the
process to CPU 0. Numbers only, never pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from service import URLS, Skip
from service_app import FLOOR_PATH, RAW_FLOOR_PATH
from service_lean import LEAN_KEY_PATH, LEAN_PATH

INTROSPECT = "/v1/sessions/introspect"
ROUTES = (
    ("raw floor", "GET", RAW_FLOOR_PATH),
    ("floor", "GET", FLOOR_PATH),
    ("introspect", "POST", INTROSPECT),
    ("lean, key per call", "POST", LEAN_KEY_PATH),
    ("lean, key cached", "POST", LEAN_PATH),
)


async def call(app: Any, method: str, path: str, key: str, body: bytes) -> tuple[int, bytes]:
    """One request straight into the ASGI app: its status and body."""
    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"authorization", b"Bearer " + key.encode()),
    ]
    if method == "POST":
        headers += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    status = 0
    answer = bytearray()
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)  # a disconnect wait: never reached in a request
        sent = True
        return {
            "type": "http.request",
            "body": body if method == "POST" else b"",
            "more_body": False,
        }

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            answer.extend(message.get("body", b""))

    await app(scope, receive, send)
    return status, bytes(answer)


async def lifespan(app: Any) -> Any:
    """Start the app's lifespan; the returned coroutine function shuts it down."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    started: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def receive() -> dict[str, Any]:
        return await queue.get()

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.startup.complete":
            started.set_result(None)
        elif message["type"] == "lifespan.shutdown.complete":
            pass

    task = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    )
    await queue.put({"type": "lifespan.startup"})
    await started

    async def stop() -> None:
        await queue.put({"type": "lifespan.shutdown"})
        await task

    return stop


async def run(store_url: str, tmp: str, rounds: int, n: int, chunk: int, sessions: int) -> None:
    import service_app
    from service import PAYLOAD

    os.environ["COATCHECK_STORE_URL"] = store_url
    os.environ["COATCHECK_DATA_DIR"] = tmp
    os.environ["CCBENCH_EXPERIMENTS"] = "1"
    app = service_app.app()
    stop = await lifespan(app)
    ctx = app.app.state.context  # the service's own: a memory store lives in this one object
    try:
        await ctx.data.migrate()
        await ctx.sessions.store.migrate()
        key, _ = await ctx.service_keys.create("bench-inprocess", "introspect")
        tokens = [
            (await ctx.sessions.create(f"bench-user-{i % 100}", data=PAYLOAD))[0]
            for i in range(sessions)
        ]
        bodies = [json.dumps({"token": t}).encode() for t in tokens]
        reference = await call(app, "POST", INTROSPECT, key, bodies[0])
        if reference[0] != 200 or not json.loads(reference[1]).get("active"):
            raise RuntimeError(f"introspection answered {reference}")
        for label, method, path in ROUTES[3:]:
            got = await call(app, method, path, key, bodies[0])
            if got != reference:
                raise RuntimeError(f"{label} answered {got}, not {reference}")
        per_round: dict[str, list[float]] = {label: [] for label, _, _ in ROUTES}
        position = 0
        for _ in range(rounds):
            timings: dict[str, list[float]] = {label: [] for label, _, _ in ROUTES}
            for _ in range(0, n, chunk):
                for label, method, path in ROUTES:
                    for _ in range(chunk):
                        body = bodies[position % len(bodies)]
                        position += 1
                        began = time.perf_counter()
                        status, _ = await call(app, method, path, key, body)
                        timings[label].append(time.perf_counter() - began)
                        if status != 200:
                            raise RuntimeError(f"{label}: status {status}")
            for label, values in timings.items():
                per_round[label].append(statistics.median(values) * 1e6)
    finally:
        await stop()
    print(
        f"\n{'route':22} {'µs per request, median (min-max of rounds)':>44} {'over the floor':>15}"
    )
    floor = statistics.median(per_round["floor"])
    for label, values in per_round.items():
        med = statistics.median(values)
        extra = "" if label == "floor" else f"{med - floor:+.1f}"
        print(f"{label:22} {med:30.1f} ({min(values):.1f}-{max(values):.1f}) {extra:>15}")
    medians = {label: statistics.median(v) for label, v in per_round.items()}
    print(
        "\nFastAPI's stack around a trivial route (floor - raw floor): "
        f"{medians['floor'] - medians['raw floor']:.1f} µs\n"
        "the service's route around the same work (introspect - lean, key cached): "
        f"{medians['introspect'] - medians['lean, key cached']:.1f} µs\n"
        "a service-key look-up in the store (lean, key per call - lean, key cached): "
        f"{medians['lean, key per call'] - medians['lean, key cached']:.1f} µs\n"
        "body model + session lookup + answer (lean, key cached - floor): "
        f"{medians['lean, key cached'] - medians['floor']:.1f} µs"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--store", default="memory", choices=["memory", *URLS], help="the store (default memory)"
    )
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--requests", type=int, default=2000, help="per route and round")
    parser.add_argument("--chunk", type=int, default=50, help="requests of one route in a row")
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--pin", action="store_true", help="pin this process to CPU 0")
    args = parser.parse_args()
    if args.pin:
        os.sched_setaffinity(0, {0})
    print(f"# service_inprocess: {shlex.join([os.path.relpath(sys.executable), *sys.argv])}")
    print(f"# load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    import uvloop

    cleanup: list[Callable[[], Any]] = []
    with tempfile.TemporaryDirectory(prefix="ccbench-inproc-") as tmp:
        try:
            url = "memory://" if args.store == "memory" else URLS[args.store](Path(tmp), cleanup)
            print(f"# store {args.store}; one request at a time, routes interleaved in chunks")
            uvloop.run(run(url, tmp, args.rounds, args.requests, args.chunk, args.sessions))
        except Skip as exc:
            print(f"skipped: {exc}")
            return 2
        finally:
            for undo in reversed(cleanup):
                undo()
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
