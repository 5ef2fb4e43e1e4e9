"""The service process's heap, settled once its code is loaded.

A running service allocates a few objects per request and keeps almost none, but while 50
requests are in flight some of them survive the young collections and, every few seconds,
trigger a full one. A full collection walks every object the process holds, and most of them
are the modules, classes and functions loaded at start (FastAPI, pydantic, the drivers): tens
of milliseconds of stopped event loop each time, which showed up as a p99 latency seven times
the median (docs/performance.md, "Garbage collection"). :func:`gc.freeze` (documented for
this) moves what exists at start out of the collector's sight; it is never freed, and it was
never going to be.
"""

from __future__ import annotations

import gc


def settle() -> None:
    """Collect what start-up left behind, then freeze the rest: later collections only look
    at objects made while serving. For a process that serves until it ends (``coatcheck
    serve``), not for one that builds many applications (tests)."""
    gc.collect()
    gc.freeze()
