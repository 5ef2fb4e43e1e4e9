"""Waiting for a PostgreSQL reply on the asyncio store's per-request path (async only).

psycopg's generic asyncio wait drives a generator and arms a timer for every wait (to notice
Ctrl-C); a single-row statement needs one reader callback per round trip. The synchronous
store keeps psycopg's own wait (in C), so this lives outside the generated code.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.generators import execute
from psycopg.pq.abc import PGresult


async def reply(conn: psycopg.AsyncConnection[Any], loop: Any) -> PGresult:
    """The result of the one statement just sent on ``conn``, waiting in ``loop``.

    If the task is cancelled, the connection is left mid-statement (not idle), and the store
    hands it back to the pool, which closes it.
    """
    pgconn = conn.pgconn
    if pgconn.flush():  # a full socket buffer (rare): psycopg drives the rest
        results: list[PGresult] = await conn.wait(execute(pgconn))
        return results[-1]
    try:
        fd = pgconn.socket
        res = None
        while True:
            while pgconn.is_busy():
                done = loop.create_future()
                loop.add_reader(fd, done.set_result, None)
                try:
                    await done
                finally:
                    loop.remove_reader(fd)
                pgconn.consume_input()
            last = pgconn.get_result()
            if last is None:
                break
            res = last
    except OSError as exc:
        raise psycopg.OperationalError(f"connection socket closed: {exc}") from exc
    if res is None:
        raise psycopg.InternalError("no result for the statement sent")
    return res
