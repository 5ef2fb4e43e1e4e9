"""The Redis store's calls that visit the whole key space: ``delete_all``, ``purge_expired``
and ``count_active``. Each is a ``SCAN`` of every (primary) node, pipelined in batches, so it
never blocks the server for long, but costs O(all keys in the database).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from ...stores.redis.keys import SESSION, KeyLayout
from ...stores.redis.lua import DELETE_LUA, PRUNE_INDEX_LUA, PURGE_MARKER_LUA
from .redis_connections import Client


async def scan(client: Client, pattern: str, size: int) -> AsyncIterator[list[bytes]]:
    """Keys matching ``pattern`` on every (primary) node, in lists of at most ``size``."""
    batch: list[bytes] = []
    async for name in client.scan_iter(match=pattern, count=max(size, 100)):
        batch.append(name)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


async def delete_all(client: Client, keys: KeyLayout, size: int) -> int:
    """Deletes every session, index, public-id key and marker under the prefix; how many
    sessions."""
    total = 0
    async for batch in scan(client, keys.any_pattern, size):
        done = await unlink(client, batch)
        total += sum(
            1 for name, n in zip(batch, done, strict=True) if n and keys.kind_of(name) == SESSION
        )
    async for batch in scan(client, keys.marker_pattern, size):
        await unlink(client, batch)
    return total


async def unlink(client: Client, names: list[bytes]) -> list[int]:
    """UNLINK each key (one pipeline); how many each call removed."""
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.execute_command("UNLINK", name)  # ClusterPipeline.unlink is odd
    return list(await pipe.execute())


async def purge_expired(client: Client, keys: KeyLayout, now: float, size: int) -> int:
    """Deletes sessions whose stored expiry is at or before ``now``, then drops index members
    whose session is gone, then tombstones past their expiry; how many sessions."""
    total = 0
    async for batch in scan(client, keys.session_pattern, size):
        pipe = client.pipeline(transaction=False)
        for name in batch:
            pipe.hget(name, "exp")
        expiries = await pipe.execute()
        doomed = [
            name
            for name, exp in zip(batch, expiries, strict=True)
            if exp is not None and float(exp) <= now
        ]
        if not doomed:
            continue
        # Plain EVAL in pipelines: redis-py's cluster pipeline refuses EVALSHA, and no
        # pipeline can re-load a script after a NOSCRIPT reply.
        pipe = client.pipeline(transaction=False)
        for name in doomed:
            # Re-checked inside the script: a session touched since the HGET stays.
            index_base = keys.index_base(keys.shard_of(name))
            args = (index_base, keys.digest_of(name), now, "", "", "")
            pipe.execute_command("EVAL", DELETE_LUA, 1, name, *args)
        total += sum(await pipe.execute())
    async for batch in scan(client, keys.index_pattern, size):
        pipe = client.pipeline(transaction=False)
        for name in batch:
            session_base = keys.session_base(keys.shard_of(name))
            pipe.execute_command("EVAL", PRUNE_INDEX_LUA, 1, name, session_base)
        await pipe.execute()
    # Tombstones expire by themselves on the server's clock; these are the ones the caller's
    # clock already calls expired (written once each: no race).
    async for batch in scan(client, keys.tomb_pattern, size):
        pipe = client.pipeline(transaction=False)
        for name in batch:
            pipe.hget(name, "exp")
        expiries = await pipe.execute()
        expired = [
            name
            for name, exp in zip(batch, expiries, strict=True)
            if exp is not None and float(exp) <= now
        ]
        await unlink(client, expired)
    # Markers too (by their TTL; a marker can be written again, so the script re-checks).
    async for batch in scan(client, keys.marker_pattern, size):
        pipe = client.pipeline(transaction=False)
        for name in batch:
            pipe.execute_command("EVAL", PURGE_MARKER_LUA, 1, name, int(now * 1000))
        await pipe.execute()
    return total


async def count_active(client: Client, keys: KeyLayout, since: float, now: float, size: int) -> int:
    """Sessions written at or after ``since`` and not expired at ``now``."""
    count = 0
    async for batch in scan(client, keys.session_pattern, size):
        pipe = client.pipeline(transaction=False)
        for name in batch:
            pipe.hmget(name, ["seen", "exp"])
        for seen, exp in await pipe.execute():
            if seen is not None and exp is not None:
                count += float(seen) >= since and float(exp) > now
    return count
