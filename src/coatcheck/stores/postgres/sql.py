"""The schema, its upgrades and every statement the store sends, built once per table.

The statements use psycopg's ``%s`` placeholders (sent through a cursor), except ``load``,
which libpq prepares under :data:`LOAD_NAME` (``$1``, no cursor on the per-request path).
"""

from __future__ import annotations

import hashlib

from psycopg import sql

from ...core.apitokens import API_TOKEN_KEY
from ...core.records import SQL_COLUMNS

# (name, type) of the columns added after the first release; migrate adds them to older tables.
ADDED_COLUMNS = (("public_id", "bytea"), ("remember", "boolean NOT NULL DEFAULT false"))
# Explicit types, so the same placeholders also work in INSERT ... SELECT (no target typing).
VALUES = (
    "%s::bytea, %s::bytea, %s::text, %s::text, %s::float8, %s::float8, %s::float8, "
    "%s::float8, %s::text, %s::text, %s::jsonb, %s::int8, %s::boolean"
)
# The columns a record is read from, in the order decode.decode_record expects.
RECORD = (
    "user_id, kind, created_at, last_seen_at, authenticated_at, expires_at, client_ip, "
    "user_agent, data::text, version, remember"
)
# ``RECORD`` with an empty object read in place of ``data`` (``load(data=False)``).
FACTS = RECORD.replace("data::text", "'{}'::text")
LOAD_NAME = b"coatcheck_load"  # the load statement, prepared once per connection
LOAD_FACTS_NAME = b"coatcheck_load_facts"  # the same without the data, prepared as needed
LOAD_MANY_NAME = b"coatcheck_load_many"  # load_many's statements, likewise
LOAD_MANY_FACTS_NAME = b"coatcheck_load_many_facts"


def lock_key(*parts: str) -> int:
    """A signed 64-bit advisory lock key for one named resource."""
    digest = hashlib.sha256("\0".join(("coatcheck", *parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class Statements:
    """Every statement the store sends, built once per table (the name is an Identifier)."""

    def __init__(self, table: str) -> None:
        names: dict[str, sql.Composable] = {
            "t": sql.Identifier(table),
            "columns": sql.SQL(SQL_COLUMNS + ", public_id"),
            "values": sql.SQL(VALUES + ", %s::bytea"),
            "record": sql.SQL(RECORD),
            "facts": sql.SQL(FACTS),
            "expires_idx": sql.Identifier(f"{table}_expires_idx"),
            "user_idx": sql.Identifier(f"{table}_user_idx"),
            "public_idx": sql.Identifier(f"{table}_public_idx"),
            "meta": sql.Identifier(f"{table}_meta"),
            "tomb": sql.Identifier(f"{table}_tombstones"),
            "tomb_idx": sql.Identifier(f"{table}_tomb_exp_idx"),
            "mark": sql.Identifier(f"{table}_markers"),
            "mark_idx": sql.Identifier(f"{table}_mark_exp_idx"),
            # Markers live on the server's clock: one "now" for every process.
            "clock": sql.SQL("extract(epoch FROM statement_timestamp())::float8"),
        }
        # Ends a delete that leaves tombstones: gone (the deleted rows) -> their tombstones.
        names["buried"] = sql.SQL(
            " RETURNING id, shard, expires_at), tomb AS (INSERT INTO {tomb}"
            " (id, reason, revoked_at, expires_at) SELECT id, %s, %s, expires_at FROM gone"
            " ON CONFLICT (id) DO UPDATE SET reason = excluded.reason,"
            " revoked_at = excluded.revoked_at, expires_at = excluded.expires_at)"
        ).format(tomb=names["tomb"])
        # Given True, only an API token; False, only what is not one; NULL, any (parameters:
        # the flag twice). "API token" as core.apitokens.is_api_token: kind 'api' and an
        # object under the reserved data key.
        names["kind_ok"] = sql.SQL(
            "(%s::boolean IS NULL OR (kind = 'api' AND"
            " coalesce(jsonb_typeof(data -> {key}) = 'object', false)) = %s::boolean)"
        ).format(key=sql.Literal(API_TOKEN_KEY))

        def q(template: str) -> str:
            return sql.SQL(template).format(**names).as_string(None)

        self.schema_names = tuple(
            q(n)
            for n in (
                "{t}",
                "{expires_idx}",
                "{user_idx}",
                "{meta}",
                "{public_idx}",
                "{tomb}",
                "{tomb_idx}",
                "{mark}",
                "{mark_idx}",
            )
        )
        # Every table and index, and every added column, is there (else migrate runs).
        self.schema_present = (
            "SELECT (SELECT bool_and(to_regclass(n) IS NOT NULL) FROM unnest(%s::text[]) AS n)"
            " AND (SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass(%s::text)"
            " AND attname = ANY(%s::text[]) AND NOT attisdropped) = %s"
        )
        added = [name for name, _ in ADDED_COLUMNS]
        self.schema_params = (list(self.schema_names), self.schema_names[0], added, len(added))
        self.lock = "SELECT pg_advisory_xact_lock(%s::int8)"
        self.create = q(
            "CREATE TABLE IF NOT EXISTS {t} ("
            " id bytea PRIMARY KEY,"
            " shard bytea NOT NULL,"
            " user_id text,"
            " kind text NOT NULL,"
            " created_at double precision NOT NULL,"
            " last_seen_at double precision NOT NULL,"
            " authenticated_at double precision NULL,"
            " expires_at double precision NOT NULL,"
            " client_ip text,"
            " user_agent text,"
            " data jsonb NOT NULL,"
            " version bigint NOT NULL,"
            " public_id bytea,"
            " remember boolean NOT NULL DEFAULT false);"
            " CREATE TABLE IF NOT EXISTS {meta} (name text PRIMARY KEY, value bytea NOT NULL);"
            " CREATE TABLE IF NOT EXISTS {tomb} (id bytea PRIMARY KEY, reason text NOT NULL,"
            " revoked_at double precision NOT NULL, expires_at double precision NOT NULL);"
            " CREATE TABLE IF NOT EXISTS {mark} (name text PRIMARY KEY, value text NOT NULL,"
            " expires_at double precision NOT NULL)"
        )
        # Columns added after the first release: a table made by an older version gets them
        # before any index is made (ALTER TABLE takes the strongest lock: asked for first,
        # it waits for running requests instead of deadlocking with them).
        self.columns = "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s::text)"
        self.add_columns = {
            name: q(f"ALTER TABLE {{t}} ADD COLUMN IF NOT EXISTS {name} {kind}")
            for name, kind in ADDED_COLUMNS
        }
        self.create_indexes = q(
            "CREATE INDEX IF NOT EXISTS {expires_idx} ON {t} (expires_at);"
            " CREATE INDEX IF NOT EXISTS {user_idx} ON {t} (user_id, created_at)"
            " WHERE user_id IS NOT NULL;"
            " CREATE INDEX IF NOT EXISTS {public_idx} ON {t} (public_id);"
            " CREATE INDEX IF NOT EXISTS {tomb_idx} ON {tomb} (expires_at);"
            " CREATE INDEX IF NOT EXISTS {mark_idx} ON {mark} (expires_at)"
        )
        # Rows written before the public_id column existed get theirs, in batches.
        self.missing_public_ids = q("SELECT id, shard FROM {t} WHERE public_id IS NULL LIMIT %s")
        self.set_public_ids = q(
            "UPDATE {t} SET public_id = u.p FROM unnest(%s::bytea[], %s::bytea[]) AS u(i, p) "
            "WHERE {t}.id = u.i"
        )
        # The store's token key: the first process to need one inserts it, every one reads.
        self.token_key = q("SELECT value FROM {meta} WHERE name = 'token_key'")
        self.token_key_insert = q(
            "INSERT INTO {meta} (name, value) VALUES ('token_key', %s) ON CONFLICT (name) "
            "DO NOTHING"
        )
        self.load = q("SELECT {record} FROM {t} WHERE id = $1").encode()
        self.load_facts = q("SELECT {facts} FROM {t} WHERE id = $1").encode()
        self.load_many = q("SELECT id, {record} FROM {t} WHERE id = ANY($1)").encode()
        self.load_many_facts = q("SELECT id, {facts} FROM {t} WHERE id = ANY($1)").encode()
        self.insert = q("INSERT INTO {t} ({columns}) VALUES ({values})")
        # Rotation without a limit: one statement, nothing happens unless the old row existed.
        self.insert_replacing = q(
            "WITH gone AS (DELETE FROM {t} WHERE id = %s RETURNING id) "
            "INSERT INTO {t} ({columns}) SELECT {values} FROM gone"
        )
        self.insert_evicting = q(
            "WITH gone AS (DELETE FROM {t} WHERE id = ANY(%s::bytea[]){buried}"
            " INSERT INTO {t} ({columns}) VALUES ({values})"
        )
        self.live_browser_ids = q(
            "SELECT id FROM {t} WHERE user_id = %s AND kind = 'browser' AND expires_at > %s "
            "ORDER BY created_at, id"
        )
        self.update = q(
            "UPDATE {t} SET last_seen_at = %s, expires_at = %s, version = version + 1 "
            "WHERE id = %s RETURNING version"
        )
        self.update_checked = q(
            "UPDATE {t} SET last_seen_at = %s, expires_at = %s, version = version + 1 "
            "WHERE id = %s AND version = %s::int8 RETURNING version"
        )
        self.update_patch = q(
            "UPDATE {t} SET data = (data - %s::text[]) || %s::jsonb, last_seen_at = %s, "
            "expires_at = %s, version = version + 1 WHERE id = %s RETURNING version"
        )
        self.update_patch_checked = q(
            "UPDATE {t} SET data = (data - %s::text[]) || %s::jsonb, last_seen_at = %s, "
            "expires_at = %s, version = version + 1 WHERE id = %s AND version = %s::int8 "
            "RETURNING version"
        )
        self.version_of = q("SELECT version FROM {t} WHERE id = %s")
        self.delete = q("DELETE FROM {t} WHERE id = %s")
        # By public id: parameters (public id, user id x2, api_token x4, ...). The kind check
        # also stands in the outer WHERE, which a concurrent write makes PostgreSQL re-check on
        # the newest row version.
        self.delete_public = q(
            "DELETE FROM {t} WHERE id = (SELECT id FROM {t} WHERE public_id = %s AND "
            "(%s::text IS NULL OR user_id = %s::text) AND {kind_ok} LIMIT 1) AND {kind_ok}"
            " RETURNING id, shard"
        )
        self.delete_user = q("DELETE FROM {t} WHERE user_id = %s")
        self.delete_user_keep = q("DELETE FROM {t} WHERE user_id = %s AND id <> %s")
        # The same, leaving tombstones: parameters (where ..., reason, at); rows (id, shard).
        self.bury = q("WITH gone AS (DELETE FROM {t} WHERE id = %s{buried} SELECT 1 FROM gone")
        self.bury_public = q(
            "WITH gone AS (DELETE FROM {t} WHERE id = (SELECT id FROM {t} WHERE public_id = %s"
            " AND (%s::text IS NULL OR user_id = %s::text) AND {kind_ok} LIMIT 1)"
            " AND {kind_ok}{buried} SELECT id, shard FROM gone"
        )
        self.bury_user = q(
            "WITH gone AS (DELETE FROM {t} WHERE user_id = %s AND id <> %s{buried}"
            " SELECT 1 FROM gone"
        )
        self.tombstone = q("SELECT reason, revoked_at, expires_at FROM {tomb} WHERE id = %s")
        self.purge_tombstones = q(
            "DELETE FROM {tomb} WHERE id IN (SELECT id FROM {tomb} WHERE expires_at <= %s LIMIT %s)"
        )
        self.delete_all = q("WITH markers AS (DELETE FROM {mark}) DELETE FROM {t}")
        self.list_user = q(
            "SELECT id, shard, {record} FROM {t} WHERE user_id = %s AND expires_at > %s "
            "ORDER BY created_at, id"
        )
        # The outer condition is re-checked on the newest row version, so a session that a
        # concurrent touch just extended is not purged; SKIP LOCKED lets purgers run side by side.
        self.purge = q(
            "DELETE FROM {t} WHERE id IN (SELECT id FROM {t} WHERE expires_at <= %s "
            "LIMIT %s FOR UPDATE SKIP LOCKED) AND expires_at <= %s"
        )
        # Markers: parameters (name, value, ttl); the row count says whether it was written.
        # Only if absent: a live marker stops the write, an expired one is replaced; racing
        # writers of one name wait for the row lock, then re-check against the winner's row.
        upsert = (
            "INSERT INTO {mark} (name, value, expires_at) VALUES (%s, %s, {clock} + %s::float8)"
            " ON CONFLICT (name) DO UPDATE SET value = excluded.value,"
            " expires_at = excluded.expires_at"
        )
        self.put_marker = q(upsert)
        self.put_marker_if_absent = q(upsert + " WHERE {mark}.expires_at <= {clock}")
        self.get_marker = q("SELECT value FROM {mark} WHERE name = %s AND expires_at > {clock}")
        self.delete_marker = q("DELETE FROM {mark} WHERE name = %s RETURNING expires_at > {clock}")
        self.purge_markers = q(
            "DELETE FROM {mark} WHERE name IN (SELECT name FROM {mark} WHERE expires_at <= %s "
            "LIMIT %s FOR UPDATE SKIP LOCKED) AND expires_at <= %s"
        )
        self.count_active = q(
            "SELECT count(*) FROM {t} WHERE last_seen_at >= %s AND expires_at > %s"
        )
