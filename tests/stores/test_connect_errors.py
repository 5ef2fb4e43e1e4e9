"""A store pointed at the wrong place says so at once: a refused connection is StoreUnavailable
without waiting out the pool's timeout, and settings the server refuses (a role, database or
Redis database number it lacks, credentials it rejects, a SQLite directory that is not there)
are ConfigErrors, since no retry can help."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from servers import (
    POSTGRES_HOST,
    POSTGRES_PORT,
    REDIS_HOST,
    REDIS_PORT,
    free_port,
    require_server,
)

from coatcheck import ConfigError, StoreUnavailable, open_async_store, open_store

GUARD = 60.0  # seconds before a hung call fails the test; the URLs below say timeout=600


def sync_count(url: str) -> Callable[[], Any]:
    def call() -> Any:
        store = open_store(url)
        try:
            return store.count_active(0.0, 0.0)
        finally:
            store.close()

    return call


def async_count(url: str) -> Callable[[], Any]:
    async def run() -> Any:
        store = open_async_store(url)
        try:
            return await asyncio.wait_for(store.count_active(0.0, 0.0), GUARD)
        finally:
            await store.close()

    return lambda: asyncio.run(run())


@pytest.fixture(params=["sync", "async"])
def count(request: pytest.FixtureRequest) -> Callable[[str], Any]:
    """Counts active sessions through a fresh store of either API, in a thread with a guard
    so that a regression hangs the test for a minute, not ten."""
    make = sync_count if request.param == "sync" else async_count

    def run(url: str) -> Any:
        pool = ThreadPoolExecutor(1)
        try:
            return pool.submit(make(url)).result(timeout=GUARD)
        finally:
            pool.shutdown(wait=False)

    return run


def test_refused_postgres_connection_fails_at_once(count: Callable[[str], Any]) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/test?timeout=600"
    with pytest.raises(StoreUnavailable, match="Connection refused") as caught:
        count(url)
    assert "no connection within" not in str(caught.value)


@pytest.mark.parametrize(
    ("user", "database", "named"),
    [
        ("no_such_role_cc", "test", 'role "no_such_role_cc" does not exist'),
        ("postgres", "no_such_db_cc", 'database "no_such_db_cc" does not exist'),
    ],
)
def test_postgres_refusing_the_settings_is_a_config_error(
    count: Callable[[str], Any], user: str, database: str, named: str
) -> None:
    require_server("postgresql", POSTGRES_HOST, POSTGRES_PORT)
    url = f"postgresql://{user}@{POSTGRES_HOST}:{POSTGRES_PORT}/{database}?timeout=600"
    with pytest.raises(ConfigError, match=named) as caught:
        count(url)
    assert str(caught.value).startswith(f"PostgreSQL at {POSTGRES_HOST}:{POSTGRES_PORT}/")


@pytest.mark.parametrize(
    ("url", "says"),
    [
        (f"redis://{REDIS_HOST}:{REDIS_PORT}/99", "has no database 99"),
        (f"redis://nobody_cc:wrong@{REDIS_HOST}:{REDIS_PORT}/0", "refused the credentials"),
        (f"redis://{REDIS_HOST}:{REDIS_PORT}/99?multiplex=false", "has no database 99"),
    ],
)
def test_redis_refusing_the_settings_is_a_config_error(
    count: Callable[[str], Any], url: str, says: str
) -> None:
    require_server("redis", REDIS_HOST, REDIS_PORT)
    with pytest.raises(ConfigError, match=says):
        count(url)


def test_sqlite_missing_directory_is_refused_not_created(
    count: Callable[[str], Any], tmp_path: Path
) -> None:
    missing = tmp_path / "no" / "such"
    with pytest.raises(ConfigError, match="does not exist"):
        count(f"sqlite:///{missing}/x.db")
    assert not (tmp_path / "no").exists()
    assert count(f"sqlite:///{tmp_path}/x.db") == 0  # an existing directory: the file is made
