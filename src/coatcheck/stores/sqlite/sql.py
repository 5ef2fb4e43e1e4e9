"""The SQLite store's schema, its upgrades and the statements more than one method sends."""

from __future__ import annotations

import sqlite3

from ...core.records import SQL_COLUMNS, Revocation, public_id_bytes
from ...core.tokens import SessionKey

SCHEMA = """
CREATE TABLE IF NOT EXISTS coatcheck_sessions (
    id BLOB PRIMARY KEY,
    shard BLOB NOT NULL,
    user_id TEXT,
    kind TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_seen_at REAL NOT NULL,
    authenticated_at REAL,
    expires_at REAL NOT NULL,
    client_ip TEXT,
    user_agent TEXT,
    data TEXT NOT NULL,
    version INTEGER NOT NULL,
    public_id BLOB,
    remember INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS coatcheck_sessions_expires ON coatcheck_sessions (expires_at);
CREATE INDEX IF NOT EXISTS coatcheck_sessions_user
    ON coatcheck_sessions (user_id, created_at) WHERE user_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS coatcheck_meta (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS coatcheck_tombstones (
    id BLOB PRIMARY KEY,
    reason TEXT NOT NULL,
    revoked_at REAL NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS coatcheck_tombstones_expires ON coatcheck_tombstones (expires_at);
CREATE TABLE IF NOT EXISTS coatcheck_markers (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS coatcheck_markers_expires ON coatcheck_markers (expires_at);
"""
# Columns added after the first release: a table made by an older version gets them on first
# use (upgrade), then the indexes that need them.
ADDED_COLUMNS = (("public_id", "BLOB"), ("remember", "INTEGER NOT NULL DEFAULT 0"))
ADDED_INDEXES = """
CREATE INDEX IF NOT EXISTS coatcheck_sessions_public ON coatcheck_sessions (public_id);
"""
INSERT = (
    f"INSERT INTO coatcheck_sessions ({SQL_COLUMNS}, public_id) "  # noqa: S608
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# A marker write: parameters (name, value, expires at); only if absent, also (now): a live
# marker stops it, an expired one is replaced. One statement, so the check cannot be split.
PUT_MARKER = (
    "INSERT INTO coatcheck_markers (name, value, expires_at) VALUES (?, ?, ?) "
    "ON CONFLICT (name) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at"
)
PUT_MARKER_IF_ABSENT = PUT_MARKER + " WHERE coatcheck_markers.expires_at <= ?"
TOKEN_KEY_NAME = "token_key"  # noqa: S105  # the row's name in coatcheck_meta


def bury(
    conn: sqlite3.Connection,
    where: str,
    params: tuple[object, ...],
    revoked: Revocation | None,
) -> int:
    """Delete the sessions ``where`` selects, inside the caller's write transaction, leaving a
    tombstone for each if ``revoked``; how many were deleted."""
    if revoked is not None:
        conn.execute(
            "INSERT OR REPLACE INTO coatcheck_tombstones (id, reason, revoked_at, expires_at) "  # noqa: S608
            f"SELECT id, ?, ?, expires_at FROM coatcheck_sessions WHERE {where}",
            (revoked.reason, revoked.at, *params),
        )
    return int(conn.execute(f"DELETE FROM coatcheck_sessions WHERE {where}", params).rowcount)  # noqa: S608


def upgrade(conn: sqlite3.Connection) -> None:
    """Bring a table made by an older version up to date: the added columns (in one write
    transaction, so that processes starting together add each once), their indexes, and the
    public ids of rows written before the column existed."""
    columns = "PRAGMA table_info(coatcheck_sessions)"
    if any(name not in {r[1] for r in conn.execute(columns)} for name, _ in ADDED_COLUMNS):
        conn.execute("BEGIN IMMEDIATE")
        try:
            have = {r[1] for r in conn.execute(columns)}
            for name, kind in ADDED_COLUMNS:
                if name not in have:
                    conn.execute(f"ALTER TABLE coatcheck_sessions ADD COLUMN {name} {kind}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    conn.executescript(ADDED_INDEXES)
    missing = conn.execute(
        "SELECT id, shard FROM coatcheck_sessions WHERE public_id IS NULL"
    ).fetchall()
    if missing:
        conn.executemany(
            "UPDATE coatcheck_sessions SET public_id = ? WHERE id = ?",
            [(public_id_bytes(SessionKey(bytes(s), bytes(d))), d) for d, s in missing],
        )
