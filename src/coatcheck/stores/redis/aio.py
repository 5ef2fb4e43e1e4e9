"""What only the async Redis store does, under names its generated sync twin finds in
:mod:`coatcheck.stores.redis.blocking` (``scripts/unasync.py`` maps this module to that one).

Importing this module is the async store's business alone: it brings asyncio machinery (the
shared deadline timer, and on first use the pipelined connection).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import forks
from ..deadline import SharedTimeout
from .url import RedisOptions
from .wire import HAVE_HIREDIS

if TYPE_CHECKING:
    from ..._async.stores.redis_lane import AsyncCommandPath, AsyncLane


def command_path(options: RedisOptions, lane: AsyncLane) -> AsyncCommandPath:
    """The per-request commands' path: one pipelined connection per event loop
    (:mod:`coatcheck.stores.redis.mux`) unless ``multiplex=false``, RESP3 (push messages can
    interleave with replies) or no hiredis; then ``lane``, a connection per command."""
    if not (options.multiplex and options.protocol == 2 and HAVE_HIREDIS):
        return lane
    from .mux import Multiplexer  # needs hiredis, checked just above

    return Multiplexer(options)


class LaneIO:
    """How the async lane bounds a command and lets go of a connection: one event-loop timer
    serves the deadlines of all commands in flight (:mod:`coatcheck.stores.deadline`), so its
    connections have no socket timeout of their own (redis-py would wrap every write in
    ``asyncio.wait_for``, a task per command)."""

    socket_timeout = None

    def __init__(self, timeout: float | None) -> None:
        self._deadline = SharedTimeout(timeout)

    async def roundtrip(self, conn: Any, packed: bytes) -> Any:
        """One command on a checked-out redis-py connection (its public ``send_packed_command``
        and ``read_response``): ``TimeoutError`` once it has taken longer than the timeout."""
        with self._deadline.guard():
            await conn.send_packed_command([packed], False)
            return await conn.read_response()

    @staticmethod
    async def drop(conn: Any) -> None:
        """Disconnect after a failure, without waiting for a close the server may never
        acknowledge."""
        await conn.disconnect(nowait=True)

    @staticmethod
    def forget(inherited: list[Any]) -> None:
        """In a forked child: keep the parent's connections, unused (closing a stream here
        would run clean-up on a socket the parent still uses)."""
        forks.keep(inherited)
