"""Which kind of store a URL names, and the stores written once, synchronously.

Memory and SQLite have no asyncio driver worth having: their one implementation is
synchronous, and the async API runs it through :mod:`coatcheck.stores.threaded`. These two
functions are where the async and the sync opener differ (``scripts/unasync.py`` turns
``embedded_async_store`` into ``embedded_store``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .._extras import extra_hint
from ..core.errors import ConfigError

if TYPE_CHECKING:
    from .._async.stores.base import AsyncStore
    from .._sync.stores.base import Store


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


def missing_extra(extra: str, exc: ImportError) -> ConfigError:
    """The error for a store whose driver is not installed: it names the extra."""
    return ConfigError(extra_hint(extra, f"the {extra} store needs its driver", exc))


def embedded_store(kind: str, url: str) -> Store:
    """A ``memory://`` or ``sqlite://`` store."""
    if kind == "memory":
        from .memory import MemoryStore

        return MemoryStore(url)
    from .sqlite import SQLiteStore

    return SQLiteStore(url)


def embedded_async_store(kind: str, url: str) -> AsyncStore:
    """The same store behind the async API: SQLite on a small thread pool, memory inline."""
    from .threaded import AsyncOverSync

    return AsyncOverSync(embedded_store(kind, url), threads=None if kind == "memory" else 4)
