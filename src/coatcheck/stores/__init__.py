"""Stores, chosen by URL. ``open_store`` gives the synchronous API, ``open_async_store`` the
asynchronous one; both speak the contract in :mod:`coatcheck.stores.base`.

=================================  ==========================================================
``memory://``                      in-process, for tests
``sqlite:///path/to/file.db``      embedded default (relative path; ``sqlite:////abs.db``)
``postgresql://user@host:5432/db``  PostgreSQL (extra ``coatcheck[postgres]``)
``redis://host:6379/0``            Redis (extra ``coatcheck[redis]``); ``rediss://`` for TLS
``redis+cluster://host:7000``      Redis Cluster, any node as seed
=================================  ==========================================================
"""

from __future__ import annotations

from urllib.parse import urlsplit

from .._extras import extra_hint
from ..core.errors import ConfigError
from .base import AsyncStore, Store

DEFAULT_URL = "sqlite:///coatcheck.db"
STORE_URL_ENV = "COATCHECK_STORE_URL"

__all__ = [
    "DEFAULT_URL",
    "STORE_URL_ENV",
    "AsyncStore",
    "Store",
    "open_async_store",
    "open_store",
    "scheme_of",
]


def scheme_of(url: str) -> str:
    """The store kind a URL names, or a ConfigError listing the ones that exist."""
    if not isinstance(url, str) or "://" not in url:
        raise ConfigError(f"store URL must look like scheme://..., got {url!r}")
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("postgres", "postgresql"):
        return "postgresql"
    if scheme in ("redis", "rediss"):
        return "redis"
    if scheme in ("redis+cluster", "rediss+cluster"):
        return "redis+cluster"
    if scheme in ("memory", "sqlite"):
        return scheme
    raise ConfigError(
        f"unknown store scheme {scheme!r} in {url!r}; use memory://, sqlite:///file.db, "
        "postgresql://..., redis://... or redis+cluster://..."
    )


def _missing_extra(extra: str, exc: ImportError) -> ConfigError:
    return ConfigError(extra_hint(extra, f"the {extra} store needs its driver", exc))


def open_store(url: str) -> Store:
    """A synchronous store for ``url``."""
    kind = scheme_of(url)
    if kind == "memory":
        from .memory import MemoryStore

        return MemoryStore(url)
    if kind == "sqlite":
        from .sqlite import SQLiteStore

        return SQLiteStore(url)
    if kind == "postgresql":
        try:
            from ._sync.postgres import PostgresStore
        except ImportError as exc:
            raise _missing_extra("postgres", exc) from exc
        return PostgresStore(url)
    try:
        from ._sync.redis import RedisStore
    except ImportError as exc:
        raise _missing_extra("redis", exc) from exc
    return RedisStore(url)


def open_async_store(url: str) -> AsyncStore:
    """An asynchronous store for ``url``."""
    kind = scheme_of(url)
    if kind in ("memory", "sqlite"):
        from .threaded import AsyncOverSync

        return AsyncOverSync(open_store(url), threads=None if kind == "memory" else 4)
    if kind == "postgresql":
        try:
            from ._async.postgres import AsyncPostgresStore
        except ImportError as exc:
            raise _missing_extra("postgres", exc) from exc
        return AsyncPostgresStore(url)
    try:
        from ._async.redis import AsyncRedisStore
    except ImportError as exc:
        raise _missing_extra("redis", exc) from exc
    return AsyncRedisStore(url)
