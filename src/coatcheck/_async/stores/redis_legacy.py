"""Sessions of ``cc1_`` tokens (before token version 2) in the Redis store.

Their shard is the unkeyed one, and they are listed in the user's *legacy index*, named by it
(possibly in another cluster slot than the user's own index). Until they have expired,
``list_user``, ``delete_user`` and the per-user limit read both indexes. When every process
runs token version 2, one absolute lifetime later no such session can be alive and this file
can go (docs/stores/redis.md, "Sessions of cc1_ tokens").
"""

from __future__ import annotations

from typing import cast

from ...core.tokens import SessionKey, TokenCodec, unkeyed_user_shard
from ...stores.redis.keys import KeyLayout
from .redis_connections import Client


def user_shards(tokens: TokenCodec, user_id: str) -> list[str]:
    """The hex shards of a user's indexes: the legacy one, then the user's own."""
    shards = [unkeyed_user_shard(user_id).hex(), tokens.user_shard(user_id).hex()]
    return shards if shards[0] != shards[1] else shards[1:]


async def legacy_sessions(
    client: Client,
    keys: KeyLayout,
    tokens: TokenCodec | None,
    user: str,
    now: float,
    skip: SessionKey | None,
) -> list[tuple[str, float]]:
    """The user's live browser sessions of ``cc1_`` tokens as (digest hex, created), for
    the per-user limit: read from the legacy index (one round trip while it is empty)."""
    shard = unkeyed_user_shard(user).hex()
    if tokens is not None and shard == tokens.user_shard(user).hex():
        return []  # one index after all: the insert script reads it
    base = keys.session_base(shard)
    members = cast(
        "list[tuple[bytes, float]]",
        await client.zrange(keys.index_base(shard) + user, 0, -1, withscores=True),
    )
    if not members:
        return []
    pipe = client.pipeline(transaction=False)
    for member, _ in members:
        pipe.hmget(base + member.decode(), ["kind", "exp"])
    rows = await pipe.execute()
    skipped = skip.digest.hex() if skip is not None else None
    return [
        (member.decode(), float(created))
        for (member, created), (kind, exp) in zip(members, rows, strict=True)
        if kind == b"browser"
        and exp is not None
        and float(exp) > now
        and member.decode() != skipped
    ]
