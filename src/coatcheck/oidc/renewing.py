"""Run a slow call while renewing a lease, and wait between polls: the two steps of the
single-flight refresh (:mod:`coatcheck._async.oidc.lease`) where asyncio and threads differ,
written once per face (``scripts/unasync.py`` maps ``run_renewing`` to ``run_renewing_sync``
and ``poll_pause`` to ``poll_pause_sync``).

The renewer is never cancelled in the middle of a store call (a cancelled Redis or PostgreSQL
command can leave its connection unusable): it is told to stop and finishes the renewal it is
in, if any, before the result is handed back.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger("coatcheck.oidc")


async def run_renewing(
    call: Callable[[], Awaitable[T]], renew: Callable[[], Awaitable[bool]], every: float
) -> T:
    """``await call()``, with ``await renew()`` every ``every`` seconds on a task of its own
    until the call ends or ``renew`` returns False (the lease is no longer ours)."""
    stop = asyncio.Event()

    async def renewing() -> None:
        while True:
            try:
                await asyncio.wait_for(stop.wait(), every)
                return
            except TimeoutError:
                pass
            if not await _renewed(renew):
                return

    renewer = asyncio.create_task(renewing())
    try:
        return await call()
    finally:
        stop.set()
        await renewer


async def _renewed(renew: Callable[[], Awaitable[bool]]) -> bool:
    try:
        return await renew()
    except Exception:  # the final, fenced write tells whether the lease held
        log.warning("renewing the OIDC refresh lease failed; trying again", exc_info=True)
        return True


def run_renewing_sync(call: Callable[[], T], renew: Callable[[], bool], every: float) -> T:
    """``call()`` in this thread, with ``renew()`` every ``every`` seconds in a helper thread
    until the call ends or ``renew`` returns False (the lease is no longer ours)."""
    stop = threading.Event()

    def renewing() -> None:
        while not stop.wait(every):
            try:
                if not renew():
                    return
            except Exception:  # the final, fenced write tells whether the lease held
                log.warning("renewing the OIDC refresh lease failed; trying again", exc_info=True)

    renewer = threading.Thread(target=renewing, name="coatcheck-oidc-lease", daemon=True)
    renewer.start()
    try:
        return call()
    finally:
        stop.set()
        renewer.join()


async def poll_pause(seconds: float) -> None:
    """Wait between two looks at a session whose refresh another request holds."""
    await asyncio.sleep(seconds)


def poll_pause_sync(seconds: float) -> None:
    """:func:`poll_pause` for threads."""
    time.sleep(seconds)
