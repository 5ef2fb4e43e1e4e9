"""Stores chosen by URL (the schemes: :mod:`coatcheck.stores`)."""

from __future__ import annotations

from ...stores.kinds import embedded_async_store, missing_extra, scheme_of
from .base import AsyncStore


def open_async_store(url: str) -> AsyncStore:
    """The store for ``url``."""
    kind = scheme_of(url)
    if kind in ("memory", "sqlite"):
        return embedded_async_store(kind, url)
    if kind == "postgresql":
        try:
            from .postgres import AsyncPostgresStore
        except ImportError as exc:
            raise missing_extra("postgres", exc) from exc
        return AsyncPostgresStore(url)
    try:
        from .redis import AsyncRedisStore
    except ImportError as exc:
        raise missing_extra("redis", exc) from exc
    return AsyncRedisStore(url)
