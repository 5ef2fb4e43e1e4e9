"""PostgreSQL store (``postgresql://user@host:5432/db``): many app processes, one database.

The store class reads as the contract of :mod:`coatcheck.stores.base`, statement by statement;
the URL, the SQL and the decoding are in :mod:`coatcheck.stores.postgres`, the connections in
``postgres_pool.py`` and ``postgres_connection.py``. Operator documentation:
``docs/stores/postgres.md``.

* ``load`` is one prepared ``SELECT`` by primary key, sent straight through libpq (no cursor,
  no query conversion, no row factory): the per-request path. Results are binary, so floats
  and integers arrive exactly; ``data`` travels as text and is decoded with :func:`json.loads`.
  ``load_many`` takes the same path with the ids as one binary ``bytea[]`` parameter.
* ``update`` is one conditional ``UPDATE ... RETURNING version`` that applies the patch with
  jsonb operators against the *current* row, so concurrent patches to different keys both
  survive and a deleted row is never written again. Only when no row matched does a second
  query tell :class:`SessionGone` from :class:`SessionConflict`.
* ``insert`` with a per-user limit runs in one transaction serialised per user by
  ``pg_advisory_xact_lock``; the eviction rule mirrors :func:`choose_evictions` exactly.
* Every server or network failure becomes :class:`StoreUnavailable` naming host and port
  (``postgres/failures.py``); programming errors are not disguised.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import AsyncCursor
from psycopg.rows import TupleRow

from ...core.errors import (
    ConfigError,
    InvalidMarker,
    SessionConflict,
    SessionGone,
    SessionLimitReached,
)
from ...core.policy import WritePlan
from ...core.records import Revocation, SessionRecord, Tombstone, UserLimit, public_id_bytes
from ...core.tokens import SessionKey, TokenCodec, new_token_key, stored_token_key
from ...stores.base import DEFAULT_PURGE_BATCH
from ...stores.markers import check_marker, check_name
from ...stores.postgres.decode import (
    BYTEA_ARRAY_OID,
    BYTEA_OID,
    Result,
    bytea_array,
    data_error,
    decode_record,
    json_object,
    patch_error,
)
from ...stores.postgres.sql import (
    LOAD_FACTS_NAME,
    LOAD_MANY_FACTS_NAME,
    LOAD_MANY_NAME,
    LOAD_NAME,
    Statements,
    lock_key,
)
from ...stores.postgres.url import parse_url
from .postgres_pool import AsyncPostgresConnections


class AsyncPostgresStore(AsyncPostgresConnections):
    """Sessions in one PostgreSQL table, reached through a connection pool.

    Nothing connects until the first call (the pool is opened lazily, inside the running
    event loop for the async API); the first call also creates the table if it is missing.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        super().__init__(parse_url(url))
        self._sql = Statements(self.options.table)
        self._migrate_key = lock_key("migrate", self.options.table)
        self._token_key: bytes | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.options.where} table={self.options.table}>"

    # --- the contract (stores/base.py), in its order ---------------------------------------

    async def migrate(self) -> None:
        """Create the table and its indexes if missing (idempotent, safe to run concurrently)."""
        async with self._lease(ensure_schema=False) as cur:
            await self._ensure_schema(cur, force=True)
        await self.token_key()

    async def load(self, key: SessionKey, *, data: bool = True) -> SessionRecord | None:
        if data:
            name, query = LOAD_NAME, self._sql.load
        else:
            name, query = LOAD_FACTS_NAME, self._sql.load_facts
        res, encoding = await self._read(name, query, key.digest, BYTEA_OID)
        if not res.ntuples:
            return None
        return decode_record(key, res, encoding)

    async def load_many(
        self, keys: Sequence[SessionKey], *, data: bool = True
    ) -> list[SessionRecord | None]:
        """One prepared ``SELECT ... WHERE id = ANY($1)`` on the short path of :meth:`load`
        (the service's coalesced introspections make this call under load)."""
        if not keys:
            return []
        if data:
            name, query = LOAD_MANY_NAME, self._sql.load_many
        else:
            name, query = LOAD_MANY_FACTS_NAME, self._sql.load_many_facts
        wanted = bytea_array(list(dict.fromkeys(key.digest for key in keys)))
        res, encoding = await self._read(name, query, wanted, BYTEA_ARRAY_OID)
        rows = {res.get_value(row, 0): row for row in range(res.ntuples)}
        return [
            None
            if (row := rows.get(key.digest)) is None
            else decode_record(key, res, encoding, row, 1)
            for key in keys
        ]

    async def _read(
        self, name: bytes, query: bytes, param: bytes, param_type: int
    ) -> tuple[Result, str]:
        """The load statements' short path (no pool lease, no cursor): the result of the
        prepared ``query`` and the connection's text encoding to decode it with."""
        conn = await self._checkout()
        try:
            if not self._schema_ready:
                await self._ensure_schema(conn.reusable_cursor(), force=False)
            res = await conn.run_prepared(name, query, param, param_type)
        except BaseException as exc:
            await self._checkin(conn)
            self._raise_if_unavailable(exc, conn)
            raise
        await self._checkin(conn)
        return res, conn.text_encoding

    async def insert(
        self,
        record: SessionRecord,
        *,
        replaces: SessionKey | None = None,
        limit: UserLimit | None = None,
    ) -> list[bytes]:
        values = (*record.row(), public_id_bytes(record.key))
        try:
            if limit is None or record.kind != "browser" or record.user_id is None:
                async with self._lease() as cur:
                    if replaces is None:
                        await cur.execute(self._sql.insert, values)
                        return []
                    await cur.execute(self._sql.insert_replacing, (replaces.digest, *values))
                    if cur.rowcount == 0:
                        raise SessionGone("the session being replaced no longer exists")
                    return []
            async with self._lease() as cur, cur.connection.transaction():
                return await self._insert_limited(cur, record, values, replaces, limit)
        except (psycopg.DataError, UnicodeEncodeError) as exc:
            error = data_error(record)
            if error is None:
                raise
            raise error from exc

    async def update(
        self, key: SessionKey, plan: WritePlan, *, expected_version: int | None = None
    ) -> int:
        patch = plan.patch
        params: list[Any] = [plan.last_seen_at, plan.expires_at, key.digest]
        if patch:
            params[:0] = [list(patch.delete), json_object(patch.set)]
            query = self._sql.update_patch
            if expected_version is not None:
                query = self._sql.update_patch_checked
        else:
            query = self._sql.update if expected_version is None else self._sql.update_checked
        if expected_version is not None:
            params.append(expected_version)
        try:
            async with self._lease() as cur:
                await cur.execute(query, params, prepare=True)
                row = await cur.fetchone()
                if row is not None:
                    return int(row[0])
                # Nothing matched: tell "deleted" from "changed meanwhile" (rare path).
                await cur.execute(self._sql.version_of, (key.digest,))
                found = await cur.fetchone()
        except (psycopg.DataError, UnicodeEncodeError) as exc:
            error = patch_error(patch.set)
            if error is None:
                raise
            raise error from exc
        if found is None or expected_version is None:
            raise SessionGone("the session no longer exists")
        raise SessionConflict(
            f"session changed concurrently (version {found[0]}, expected {expected_version})"
        )

    async def delete(self, key: SessionKey, *, revoked: Revocation | None = None) -> bool:
        async with self._lease() as cur:
            if revoked is None:
                await cur.execute(self._sql.delete, (key.digest,), prepare=True)
            else:
                await cur.execute(self._sql.bury, (key.digest, revoked.reason, revoked.at))
            return cur.rowcount > 0

    async def delete_by_public_id(
        self,
        public_id: bytes,
        *,
        user_id: str | None = None,
        revoked: Revocation | None = None,
        api_token: bool | None = None,
    ) -> SessionKey | None:
        params = (public_id, user_id, user_id, *(api_token,) * 4)
        async with self._lease() as cur:
            if revoked is None:
                await cur.execute(self._sql.delete_public, params)
            else:
                await cur.execute(self._sql.bury_public, (*params, revoked.reason, revoked.at))
            row = await cur.fetchone()
        return None if row is None else SessionKey(bytes(row[1]), bytes(row[0]))

    async def delete_user(
        self,
        user_id: str,
        *,
        keep: SessionKey | None = None,
        revoked: Revocation | None = None,
    ) -> int:
        async with self._lease() as cur:
            if revoked is not None:
                kept = keep.digest if keep is not None else b""  # no digest is empty
                await cur.execute(self._sql.bury_user, (user_id, kept, revoked.reason, revoked.at))
            elif keep is None:
                await cur.execute(self._sql.delete_user, (user_id,))
            else:
                await cur.execute(self._sql.delete_user_keep, (user_id, keep.digest))
            return cur.rowcount

    async def tombstone(self, key: SessionKey) -> Tombstone | None:
        async with self._lease() as cur:
            await cur.execute(self._sql.tombstone, (key.digest,))
            row = await cur.fetchone()
        return None if row is None else Tombstone(row[0], row[1], row[2])

    async def delete_all(self) -> int:
        async with self._lease() as cur:
            await cur.execute(self._sql.delete_all)
            return cur.rowcount

    async def list_user(self, user_id: str, now: float) -> list[SessionRecord]:
        async with self._lease() as cur:
            await cur.execute(self._sql.list_user, (user_id, now), binary=True)
            rows = await cur.fetchall()
        return [SessionRecord.from_row(row) for row in rows]

    async def purge_expired(self, now: float, *, batch_size: int = DEFAULT_PURGE_BATCH) -> int:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size!r}")
        total = 0
        while True:
            # Each batch is its own short transaction (autocommit): no long-held locks.
            async with self._lease() as cur:
                await cur.execute(self._sql.purge, (now, batch_size, now))
                deleted = cur.rowcount
            total += deleted
            if deleted < batch_size:
                break
        while True:
            async with self._lease() as cur:
                await cur.execute(self._sql.purge_tombstones, (now, batch_size))
                if cur.rowcount < batch_size:
                    break
        while True:
            async with self._lease() as cur:
                await cur.execute(self._sql.purge_markers, (now, batch_size, now))
                if cur.rowcount < batch_size:
                    return total

    async def count_active(self, since: float, now: float) -> int:
        async with self._lease() as cur:
            await cur.execute(self._sql.count_active, (since, now))
            row = await cur.fetchone()
        return int(row[0]) if row is not None else 0

    async def put_marker(
        self, name: str, value: str, ttl: float, *, only_if_absent: bool = False
    ) -> bool:
        """One statement, on the server's clock (see ``Statements.put_marker``)."""
        ttl = check_marker(name, value, ttl)
        query = self._sql.put_marker_if_absent if only_if_absent else self._sql.put_marker
        try:
            async with self._lease() as cur:
                await cur.execute(query, (name, value, ttl), prepare=True)
                return cur.rowcount > 0
        except (psycopg.DataError, UnicodeEncodeError) as exc:
            raise InvalidMarker(
                f"PostgreSQL at {self.options.where} cannot store this marker value in its "
                f"encoding: {exc}"
            ) from exc

    async def get_marker(self, name: str) -> str | None:
        check_name(name)
        async with self._lease() as cur:
            await cur.execute(self._sql.get_marker, (name,), prepare=True)
            row = await cur.fetchone()
        return None if row is None else str(row[0])

    async def delete_marker(self, name: str) -> bool:
        check_name(name)
        async with self._lease() as cur:
            await cur.execute(self._sql.delete_marker, (name,))
            row = await cur.fetchone()
        return row is not None and bool(row[0])

    async def token_key(self) -> bytes:
        """Read once per store object. Each statement commits on its own, so the read after an
        ``INSERT ... ON CONFLICT DO NOTHING`` sees whichever process's key won."""
        key = self._token_key
        if key is None:
            async with self._lease() as cur:
                await cur.execute(self._sql.token_key)
                row = await cur.fetchone()
                if row is None:
                    await cur.execute(self._sql.token_key_insert, (new_token_key(),))
                    await cur.execute(self._sql.token_key)
                    row = await cur.fetchone()
            key = stored_token_key(
                row[0] if row is not None else None,
                f"PostgreSQL at {self.options.where}: {self.options.table}_meta",
                "delete that row to make a new one",
            )
            self._token_key = key
        return key

    def use_tokens(self, tokens: TokenCodec) -> None:
        return None  # records are found by digest alone

    async def close(self) -> None:
        """Close the pool; a later call opens a new one."""
        await self._close_pool()

    # --- the steps behind it -------------------------------------------------------------

    async def _ensure_schema(self, cur: AsyncCursor[TupleRow], *, force: bool) -> None:
        """Create what is missing, or upgrade a table of an earlier release (see "Creating it"
        in docs/stores/postgres.md); without ``force``, only if one cheap query finds a gap."""
        if not force:
            await cur.execute(self._sql.schema_present, self._sql.schema_params)
            row = await cur.fetchone()
            if row is not None and row[0]:
                self._schema_ready = True
                return
        # The advisory lock makes concurrent migrations (several processes starting at once)
        # wait for each other: CREATE ... IF NOT EXISTS alone can still collide.
        async with cur.connection.transaction():
            await cur.execute(self._sql.lock, (self._migrate_key,))
            await cur.execute(self._sql.create)
            await cur.execute(self._sql.columns, self._sql.schema_names[:1])
            have = {row[0] for row in await cur.fetchall()}
            for name, statement in self._sql.add_columns.items():
                if name not in have:
                    await cur.execute(statement)
            await cur.execute(self._sql.create_indexes)
            while True:
                await cur.execute(self._sql.missing_public_ids, (DEFAULT_PURGE_BATCH,))
                rows = await cur.fetchall()
                if not rows:
                    break
                keys = [SessionKey(bytes(shard), bytes(digest)) for digest, shard in rows]
                await cur.execute(
                    self._sql.set_public_ids,
                    ([k.digest for k in keys], [public_id_bytes(k) for k in keys]),
                )
        self._schema_ready = True

    async def _insert_limited(
        self,
        cur: AsyncCursor[TupleRow],
        record: SessionRecord,
        values: tuple[Any, ...],
        replaces: SessionKey | None,
        limit: UserLimit,
    ) -> list[bytes]:
        """Rotation plus the per-user limit, inside the caller's transaction.

        The per-user advisory lock serialises concurrent logins of one user, so two of them
        cannot both see room for one more session. Raising rolls everything back.
        """
        assert record.user_id is not None
        await cur.execute(self._sql.lock, (lock_key("user", self.options.table, record.user_id),))
        if replaces is not None:
            await cur.execute(self._sql.delete, (replaces.digest,))
            if cur.rowcount == 0:
                raise SessionGone("the session being replaced no longer exists")
        # Same rule as choose_evictions: browser sessions live at the moment of this write
        # (the new record's last_seen_at; a rotation keeps an older created_at), oldest first
        # by (created_at, id); the replaced one is already gone.
        await cur.execute(self._sql.live_browser_ids, (record.user_id, record.last_seen_at))
        live = [bytes(row[0]) for row in await cur.fetchall()]
        excess = len(live) - limit.max_sessions + 1
        if excess <= 0:
            await cur.execute(self._sql.insert, values)
            return []
        if limit.refuse:
            raise SessionLimitReached(
                f"user {record.user_id!r} already has {limit.max_sessions} browser session(s)"
            )
        evicted = live[:excess]
        await cur.execute(self._sql.insert_evicting, (evicted, *_eviction(record), *values))
        return evicted


def _eviction(record: SessionRecord) -> tuple[str, float]:
    """The tombstone parameters (reason, at) of the sessions a new record evicts."""
    return "limit_eviction", record.last_seen_at
