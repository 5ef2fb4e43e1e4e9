"""The service's non-session data on the session store's URL: :func:`open_service_data`.

The same URL string names the same database as the session store (same parsing helpers), so
one ``--store`` setting places everything the service keeps. What each kind stores, and how
long: ``docs/service-storage.md``.
"""

from __future__ import annotations

from ...stores.kinds import missing_extra, scheme_of
from .base import EVENTS_KEPT, ServiceData, ServiceDataError
from .memory import MemoryServiceData

__all__ = [
    "EVENTS_KEPT",
    "MemoryServiceData",
    "ServiceData",
    "ServiceDataError",
    "open_service_data",
]


def open_service_data(url: str, *, events_kept: int = EVENTS_KEPT) -> ServiceData:
    """The service data for a store URL; nothing connects before the first call.

    ``events_kept``: how many revocation events at least are kept (tests lower it).
    """
    kind = scheme_of(url)
    if kind == "memory":
        return MemoryServiceData(url, events_kept=events_kept)
    if kind == "sqlite":
        from .sqlite import SQLiteServiceData

        return SQLiteServiceData(url, events_kept=events_kept)
    if kind == "postgresql":
        try:
            from .postgres import PostgresServiceData
        except ImportError as exc:
            raise missing_extra("postgres", exc) from exc
        return PostgresServiceData(url, events_kept=events_kept)
    try:
        from .redis import RedisServiceData
    except ImportError as exc:
        raise missing_extra("redis", exc) from exc
    return RedisServiceData(url, events_kept=events_kept)
