"""The Redis store: standalone (``redis://``, ``rediss://``) and Cluster (``redis+cluster://``).

The jobs around the store class live in :mod:`coatcheck.stores.redis` (URL, key layout, Lua,
failures, the pipelined connection); connections in :mod:`.redis_connections`, key-space scans
in :mod:`.redis_scan`. Operator documentation (URL options, key layout, memory, failure
behaviour, limits): ``docs/stores/redis.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from typing import cast

from ...core.errors import ConfigError, SessionConflict, SessionGone, SessionLimitReached
from ...core.policy import WritePlan
from ...core.records import Revocation, SessionRecord, Tombstone, UserLimit
from ...core.tokens import (
    SessionKey,
    TokenCodec,
    configured_token_key,
    new_token_key,
    stored_token_key,
    unkeyed_user_shard,
)
from ...stores.base import DEFAULT_PURGE_BATCH
from ...stores.markers import check_marker, check_name
from ...stores.redis import lua
from ...stores.redis.failures import guarded, translate
from ...stores.redis.keys import KeyLayout, ms, same_slot
from ...stores.redis.record import FACT_FIELDS, Arg, decode_facts, decode_reply
from ...stores.redis.url import parse_url
from . import redis_scan
from .redis_connections import AsyncConnections
from .redis_lane import run_script
from .redis_legacy import legacy_sessions, user_shards


class AsyncRedisStore:
    """Sessions in Redis or Redis Cluster. One instance serves a whole application: it holds
    a connection pool and is safe to share between tasks."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.options = parse_url(url)
        self.prefix = self.options.prefix
        self._where = self.options.where
        self._cluster = self.options.cluster
        self._keys = KeyLayout(self.prefix)
        self._conn = AsyncConnections(self.options)
        self._token_key: bytes | None = None  # read (or stored) once: see token_key()
        self._tokens: TokenCodec | None = None  # see token_codec()

    def __repr__(self) -> str:
        return f"<AsyncRedisStore {self._where} prefix={self.prefix!r}>"

    # --- key names -----------------------------------------------------------------

    def session_key(self, key: SessionKey) -> str:
        """The Redis key of a session."""
        return self._keys.session(key)

    def index_key(self, user_id: str) -> str:
        """The Redis key of a user's session index (once the token codec is known: a manager
        has called :meth:`use_tokens`, or :meth:`token_codec` has run)."""
        if self._tokens is None:
            raise RuntimeError("the store's token codec is not known yet: await token_codec()")
        return self._keys.index_base(self._tokens.user_shard(user_id).hex()) + user_id

    def legacy_index_key(self, user_id: str) -> str:
        """The Redis key of the index of a user's sessions of ``cc1_`` tokens."""
        return self._keys.index_base(unkeyed_user_shard(user_id).hex()) + user_id

    def tombstone_key(self, key: SessionKey) -> str:
        """The Redis key of the tombstone a revoked session leaves (in the session's slot)."""
        return self._keys.tombstone(key)

    def public_key(self, public_id: bytes) -> str:
        """The Redis key that names the session with this public id (in the session's slot)."""
        return self._keys.public(public_id)

    # --- the contract ----------------------------------------------------------------

    async def migrate(self) -> None:
        """Checks the server version(s), loads the scripts and makes sure the store's token
        key exists."""
        with guarded(self.options):
            await self._conn.check_versions()
            await self._conn.load_scripts()
        await self.token_key()

    async def token_key(self) -> bytes:
        """Read once per store object: ``SET NX GET`` stores a random key unless one exists and
        answers the existing one, in one atomic command, so every process gets the same."""
        key = self._token_key
        if key is None:
            fresh = new_token_key()
            name = self._keys.token_key
            with guarded(self.options):
                client = self._conn.live or await self._conn.ready()
                old = await client.set(name, fresh, nx=True, get=True)
            key = stored_token_key(
                fresh if old is None else cast("bytes", old),
                f"{self._where}: {name}",
                f"is another program using prefix {self.prefix!r}?",
            )
            self._token_key = key
        return key

    def use_tokens(self, tokens: TokenCodec) -> None:
        """User-index keys are derived with the manager's codec: one source of truth."""
        current = self._tokens
        if current is not None and not current.same_key(tokens):
            raise ConfigError(
                f"{self._where}: this store object already derives user index keys from "
                "another token key; give every manager of one store the same token key"
            )
        self._tokens = tokens

    async def token_codec(self) -> TokenCodec:
        """The codec user-index keys are derived with: the one a manager gave, else the one a
        manager would resolve (``COATCHECK_TOKEN_KEY``, else :meth:`token_key`)."""
        tokens = self._tokens
        if tokens is None:
            self.use_tokens(TokenCodec(configured_token_key() or await self.token_key()))
            tokens = cast("TokenCodec", self._tokens)
        return tokens

    async def load(self, key: SessionKey, *, data: bool = True) -> SessionRecord | None:
        """``HGETALL``; without the data, ``HMGET`` of the fixed fields (no ``d:`` fields to
        send, parse and decode)."""
        name = self._keys.session(key)
        conn = self._conn
        try:
            client = conn.live or await conn.ready()
            lane = conn.lane
            if data:
                reply = await (lane.command("HGETALL", name) if lane else client.hgetall(name))
            else:
                values = await (
                    lane.command("HMGET", name, *FACT_FIELDS)
                    if lane
                    else client.hmget(name, FACT_FIELDS)
                )
        except Exception as exc:
            translated = translate(exc, self.options)
            if translated is None:
                raise
            raise translated from exc
        if not data:
            return decode_facts(key, values, self._keys, self._where)
        if not reply:
            return None
        return decode_reply(key, reply, self._keys, self._where)

    async def load_many(
        self, keys: Sequence[SessionKey], *, data: bool = True
    ) -> list[SessionRecord | None]:
        """One pipeline of HGETALLs (HMGETs without the data): one round trip, or on a
        cluster one per node holding any of the keys (redis-py's cluster pipeline groups the
        commands by node)."""
        if not keys:
            return []
        with guarded(self.options):
            pipe = (self._conn.live or await self._conn.ready()).pipeline(transaction=False)
            for key in keys:
                if data:
                    pipe.hgetall(self._keys.session(key))
                else:
                    pipe.hmget(self._keys.session(key), FACT_FIELDS)
            replies = await pipe.execute()
        if not data:
            return [
                decode_facts(key, values, self._keys, self._where)
                for key, values in zip(keys, replies, strict=True)
            ]
        return [
            decode_reply(key, reply, self._keys, self._where) if reply else None
            for key, reply in zip(keys, replies, strict=True)
        ]

    async def insert(
        self,
        record: SessionRecord,
        *,
        replaces: SessionKey | None = None,
        limit: UserLimit | None = None,
    ) -> list[bytes]:
        user = record.user_id
        if user is not None:
            tokens = self._tokens or await self.token_codec()
            if record.key.shard != tokens.user_shard(user):
                raise ValueError(
                    f"a session of user {user!r} must carry the shard TokenCodec.user_shard"
                    "(user_id) under this store's token key (make its token with "
                    "manager.token_codec().new_token(user_id), as the manager does); "
                    f"got {record.key.shard.hex()}"
                )
        if replaces is None or not self._cluster or same_slot(record.key, replaces):
            return await self._insert(record, limit, replaces)
        # Cluster, old and new session in different slots (anonymous -> logged in): no
        # script can span both. Insert first (a refusal changes nothing), then take the old
        # session away; if it was already gone, take the new one back.
        with guarded(self.options):
            client = self._conn.live or await self._conn.ready()
            exists = await client.exists(self._keys.session(replaces))
        if not exists:
            raise SessionGone("the session being replaced no longer exists")
        evicted = await self._insert(record, limit, None, skip=replaces)
        try:
            taken = await self.delete(replaces)
        except Exception:
            await self._discard(record.key)
            raise
        if not taken:
            await self._discard(record.key)
            raise SessionGone("the session being replaced no longer exists")
        return evicted

    async def update(
        self, key: SessionKey, plan: WritePlan, *, expected_version: int | None = None
    ) -> int:
        shard = key.shard.hex()
        grace = self.options.expired_grace
        args = lua.update_args(plan, expected_version, grace, self._keys.index_base(shard))
        keys = [f"{self.prefix}{{{shard}}}:s:{key.digest.hex()}"]  # inline: every request
        conn = self._conn
        try:
            if conn.live is None:
                await conn.ready()
            lane, script = conn.lane, conn.update_script
            reply = await (
                run_script(lane, script.sha, lua.UPDATE_LUA, keys, args)
                if lane
                else script(keys=keys, args=args)
            )
        except Exception as exc:
            translated = translate(exc, self.options)
            if translated is None:
                raise
            raise translated from exc
        if reply[0] == lua.OK:
            return int(reply[1])
        if reply[0] == lua.GONE:
            raise SessionGone("the session no longer exists")
        raise SessionConflict(
            f"session changed concurrently (version {reply[1]}, expected {expected_version})"
        )

    async def delete(self, key: SessionKey, *, revoked: Revocation | None = None) -> bool:
        index_base = self._keys.index_base(key.shard.hex())
        return await self._delete(key, [index_base, key.digest.hex(), "", "", *lua.why(revoked)])

    async def delete_by_public_id(
        self,
        public_id: bytes,
        *,
        user_id: str | None = None,
        revoked: Revocation | None = None,
        api_token: bool | None = None,
    ) -> SessionKey | None:
        """Two round trips: the public-id key names the session, which is then deleted (if it
        is still there, ``user_id``'s when given and of the kind ``api_token`` asks for) as
        ``delete`` does."""
        with guarded(self.options):
            client = self._conn.live or await self._conn.ready()
            name = await client.get(self._keys.public(public_id))
        if name is None:
            return None
        key = self._keys.session_key(bytes(cast("bytes", name)))
        args: list[Arg] = [
            self._keys.index_base(key.shard.hex()),
            key.digest.hex(),
            "",
            "" if user_id is None else user_id,
            *lua.why(revoked),
            lua.only(api_token),
        ]
        return key if await self._delete(key, args) else None

    async def delete_user(
        self,
        user_id: str,
        *,
        keep: SessionKey | None = None,
        revoked: Revocation | None = None,
    ) -> int:
        """One script per index, the legacy one first: a ``cc1_`` session rotated meanwhile
        has its successor in the user's index, emptied next; one already deleted cannot be
        rotated any more."""
        deleted = 0
        for shard in user_shards(self._tokens or await self.token_codec(), user_id):
            with guarded(self.options):
                if self._conn.live is None:
                    await self._conn.ready()
                deleted += int(
                    await self._conn.delete_user_script(
                        keys=[self._keys.index_base(shard) + user_id],
                        args=[
                            self._keys.session_base(shard),
                            keep.digest.hex() if keep is not None else "",
                            *lua.why(revoked),
                        ],
                    )
                )
        return deleted

    async def tombstone(self, key: SessionKey) -> Tombstone | None:
        with guarded(self.options):
            client = self._conn.live or await self._conn.ready()
            f = cast("dict[bytes, bytes]", await client.hgetall(self._keys.tombstone(key)))
        if b"reason" not in f:
            return None
        return Tombstone(f[b"reason"].decode(), float(f[b"at"]), float(f[b"exp"]))

    async def delete_all(self) -> int:
        """Deletes every session, index and marker under this prefix: a SCAN of every
        (primary) node, O(keys in the database)."""
        with guarded(self.options):
            client = self._conn.live or await self._conn.ready()
            return await redis_scan.delete_all(client, self._keys, DEFAULT_PURGE_BATCH)

    async def list_user(self, user_id: str, now: float) -> list[SessionRecord]:
        shards = user_shards(self._tokens or await self.token_codec(), user_id)
        with guarded(self.options):
            client = self._conn.live or await self._conn.ready()
            pipe = client.pipeline(transaction=False)
            for shard in shards:
                pipe.zrange(self._keys.index_base(shard) + user_id, 0, -1)
            indexes = cast("list[list[bytes]]", await pipe.execute())
            members = [
                (shard, member.decode())
                for shard, found in zip(shards, indexes, strict=True)
                for member in found
            ]
            if not members:
                return []
            pipe = client.pipeline(transaction=False)
            for shard, member in members:
                pipe.hgetall(self._keys.session_base(shard) + member)
            rows = await pipe.execute()
        records = [
            decode_reply(
                SessionKey(bytes.fromhex(shard), bytes.fromhex(member)),
                row,
                self._keys,
                self._where,
            )
            for (shard, member), row in zip(members, rows, strict=True)
            if row
        ]
        live = [r for r in records if r.expires_at > now]
        live.sort(key=lambda r: (r.created_at, r.key.digest))
        return live

    async def purge_expired(self, now: float, *, batch_size: int = DEFAULT_PURGE_BATCH) -> int:
        """Deletes sessions whose stored expiry is at or before ``now``, then drops index
        members whose session is gone, then tombstones and markers expired at ``now``. A SCAN
        of every (primary) node, O(keys)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        with guarded(self.options):
            client = self._conn.live or await self._conn.ready()
            return await redis_scan.purge_expired(client, self._keys, now, batch_size)

    async def count_active(self, since: float, now: float) -> int:
        """Sessions written at or after ``since`` and not expired at ``now``: a SCAN of
        every (primary) node, O(keys)."""
        with guarded(self.options):
            client = self._conn.live or await self._conn.ready()
            return await redis_scan.count_active(
                client, self._keys, since, now, DEFAULT_PURGE_BATCH
            )

    async def put_marker(
        self, name: str, value: str, ttl: float, *, only_if_absent: bool = False
    ) -> bool:
        """``SET PX`` (``NX`` if only absent): one command on one key, on the server's clock;
        an expired key is absent to Redis whether or not it has been reclaimed yet."""
        ttl = check_marker(name, value, ttl)
        with guarded(self.options):
            client = self._conn.live or await self._conn.ready()
            done = await client.set(
                self._keys.marker(name), value.encode(), px=ms(ttl), nx=only_if_absent
            )
        return bool(done)

    async def get_marker(self, name: str) -> str | None:
        check_name(name)
        with guarded(self.options):
            client = self._conn.live or await self._conn.ready()
            value = await client.get(self._keys.marker(name))
        return None if value is None else cast("bytes", value).decode()

    async def delete_marker(self, name: str) -> bool:
        check_name(name)
        with guarded(self.options):
            client = self._conn.live or await self._conn.ready()
            return bool(await client.delete(self._keys.marker(name)))

    async def close(self) -> None:
        await self._conn.close()

    # --- helpers ---------------------------------------------------------------------

    async def _insert(
        self,
        record: SessionRecord,
        limit: UserLimit | None,
        replaces: SessionKey | None,
        *,
        skip: SessionKey | None = None,
    ) -> list[bytes]:
        """One script in one slot: evict or refuse, drop the replaced session, write. ``skip``:
        a session being replaced by the caller (not by the script), never a victim."""
        key, user = record.key, record.user_id
        shard = key.shard.hex()
        limited = limit is not None and user is not None and record.kind == "browser"
        legacy: list[tuple[str, float]] = []
        if limited and user is not None:
            with guarded(self.options):
                client = self._conn.live or await self._conn.ready()
                legacy = await legacy_sessions(
                    client, self._keys, self._tokens, user, record.last_seen_at, replaces or skip
                )
        keys = [self._keys.session(key)]
        if user is not None:
            keys.append(self._keys.index_base(shard) + user)  # insert() checked: user's shard
        if replaces is not None:
            keys.append(self._keys.session(replaces))
        expires_ms = ms(record.expires_at + self.options.expired_grace)
        args = lua.insert_args(record, limit, replaces, legacy, expires_ms, self._keys)
        with guarded(self.options):
            if self._conn.live is None:
                await self._conn.ready()
            reply = await self._conn.insert_script(keys=keys, args=args)
        if reply[0] == lua.GONE:
            raise SessionGone("the session being replaced no longer exists")
        if reply[0] == lua.REFUSED:
            raise SessionLimitReached(
                f"user {user!r} already has {limit.max_sessions if limit else 0} browser session(s)"
            )
        evicted = [m.decode() for m in reply[1:]]
        for victim in evicted:
            if victim.startswith("L") and user is not None:
                legacy_key = SessionKey(unkeyed_user_shard(user), bytes.fromhex(victim[1:]))
                await self.delete(
                    legacy_key, revoked=Revocation("limit_eviction", record.last_seen_at)
                )
        return [bytes.fromhex(victim.removeprefix("L")) for victim in evicted]

    async def _delete(self, key: SessionKey, args: list[Arg]) -> bool:
        """The delete script on one session (arguments: see ``lua.DELETE_LUA``)."""
        with guarded(self.options):
            if self._conn.live is None:
                await self._conn.ready()
            deleted = await self._conn.delete_script(keys=[self._keys.session(key)], args=args)
        return bool(deleted)

    async def _discard(self, key: SessionKey) -> None:
        """Best effort: undo a just-inserted session (it expires by itself otherwise)."""
        with suppress(Exception):  # the original error is what the caller must see
            await self.delete(key)
