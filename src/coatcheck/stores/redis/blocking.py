"""The sync Redis store's side of :mod:`coatcheck.stores.redis.aio`: the same names, for
threads instead of an event loop (``scripts/unasync.py`` maps ``redis.aio`` to this module).
No asyncio here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .url import RedisOptions

if TYPE_CHECKING:
    from ..._sync.stores.redis_lane import CommandPath, Lane


def command_path(options: RedisOptions, lane: Lane) -> CommandPath:
    """Threads have no event loop to pipeline on: always the lane, a connection per command."""
    return lane


class LaneIO:
    """The sync lane leaves each command's deadline to its socket (``socket_timeout``)."""

    def __init__(self, timeout: float | None) -> None:
        self.socket_timeout = timeout

    @staticmethod
    def roundtrip(conn: Any, packed: bytes) -> Any:
        conn.send_packed_command([packed], False)
        return conn.read_response()

    @staticmethod
    def drop(conn: Any) -> None:
        conn.disconnect()

    @staticmethod
    def forget(inherited: list[Any]) -> None:
        """In a forked child: redis-py's sync connections close only their own copy of an
        inherited socket (they check the process id), so closing them here is safe."""
        for conn in inherited:
            conn.disconnect()
