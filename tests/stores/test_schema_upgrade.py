"""Tables made by an earlier release keep working: the SQL stores add what is missing on first
use (columns, indexes) and fill in what older rows lack, without losing a session."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import psycopg
import pytest
from fixtures_postgres import SHARED_DSN
from psycopg import sql

from coatcheck import SessionManager, open_store
from coatcheck.core.records import public_id, public_id_bytes
from coatcheck.core.tokens import SessionKey, TokenCodec, new_token_key

# The schemas of release 0.1, as its stores created them.
SQLITE_0_1 = """
CREATE TABLE coatcheck_sessions (
    id BLOB PRIMARY KEY, shard BLOB NOT NULL, user_id TEXT, kind TEXT NOT NULL,
    created_at REAL NOT NULL, last_seen_at REAL NOT NULL, authenticated_at REAL,
    expires_at REAL NOT NULL, client_ip TEXT, user_agent TEXT, data TEXT NOT NULL,
    version INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX coatcheck_sessions_expires ON coatcheck_sessions (expires_at);
CREATE INDEX coatcheck_sessions_user
    ON coatcheck_sessions (user_id, created_at) WHERE user_id IS NOT NULL;
"""
POSTGRES_0_1 = (
    "CREATE TABLE {t} (id bytea PRIMARY KEY, shard bytea NOT NULL, user_id text,"
    " kind text NOT NULL, created_at double precision NOT NULL,"
    " last_seen_at double precision NOT NULL, authenticated_at double precision NULL,"
    " expires_at double precision NOT NULL, client_ip text, user_agent text,"
    " data jsonb NOT NULL, version bigint NOT NULL);"
    " CREATE INDEX {e} ON {t} (expires_at);"
    " CREATE INDEX {u} ON {t} (user_id, created_at) WHERE user_id IS NOT NULL"
)
COLUMNS = (
    "id, shard, user_id, kind, created_at, last_seen_at, authenticated_at, expires_at, "
    "client_ip, user_agent, data, version"
)


def old_rows(count: int) -> list[tuple[object, ...]]:
    tokens = TokenCodec(new_token_key())
    now = time.time()
    rows = []
    for i in range(count):
        _, key = tokens.new_token(f"user{i}")
        data = json.dumps({"n": i})
        row = (key.digest, key.shard, f"user{i}", "browser", now, now, now, now + 1800)
        rows.append((*row, None, None, data, 1))
    return rows


def check_upgraded(url: str, rows: list[tuple[object, ...]]) -> None:
    keys = [SessionKey(bytes(r[1]), bytes(r[0])) for r in rows]  # type: ignore[arg-type]
    store = open_store(url)
    manager = SessionManager(store)
    try:
        assert [r and r.data for r in store.load_many(keys)] == [{"n": i} for i in range(len(rows))]
        assert manager.revoke_session(public_id(keys[0]), user_id="user0") is True
        assert store.load(keys[0]) is None
        assert store.delete_by_public_id(public_id_bytes(keys[-1])) == keys[-1]
        assert store.load(keys[1]) is not None
        store.migrate()  # idempotent on an upgraded table
    finally:
        store.close()


def test_sqlite_table_of_release_0_1_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    rows = old_rows(3)
    with sqlite3.connect(path) as conn:
        conn.executescript(SQLITE_0_1)
        conn.executemany(
            f"INSERT INTO coatcheck_sessions ({COLUMNS}) VALUES ({', '.join('?' * 12)})", rows
        )
    check_upgraded(f"sqlite:///{path}", rows)
    with sqlite3.connect(path) as conn:
        indexes = {r[1] for r in conn.execute("PRAGMA index_list(coatcheck_sessions)")}
        assert "coatcheck_sessions_public" in indexes
        assert conn.execute(
            "SELECT count(*) FROM coatcheck_sessions WHERE public_id IS NULL"
        ).fetchone() == (0,)


@pytest.fixture
def old_postgres_table(postgres_url: str, postgres_table: str) -> str:
    ddl = sql.SQL(POSTGRES_0_1).format(
        t=sql.Identifier(postgres_table),
        e=sql.Identifier(f"{postgres_table}_expires_idx"),
        u=sql.Identifier(f"{postgres_table}_user_idx"),
    )
    with psycopg.connect(SHARED_DSN, autocommit=True) as conn:
        conn.execute(ddl)
    return postgres_table  # postgres_url drops it and the tables beside it


@pytest.mark.postgres
def test_postgres_table_of_release_0_1_is_upgraded_in_place(
    postgres_url: str, old_postgres_table: str
) -> None:
    rows = old_rows(1500)  # more than one batch of the back-fill
    insert = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        sql.Identifier(old_postgres_table), sql.SQL(COLUMNS), sql.SQL(", ".join(["%s"] * 12))
    )
    with psycopg.connect(SHARED_DSN, autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany(insert, rows)
    check_upgraded(postgres_url, rows)
    with psycopg.connect(SHARED_DSN, autocommit=True) as conn:
        missing = conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE public_id IS NULL").format(
                sql.Identifier(old_postgres_table)
            )
        ).fetchone()
        assert missing == (0,)
        assert conn.execute(
            "SELECT to_regclass(%s) IS NOT NULL", (f"{old_postgres_table}_public_idx",)
        ).fetchone() == (True,)
