"""The service's non-session data on the session store's URL: :func:`open_service_data`.

The same URL string names the same database as the session store (same parsing helpers), so
one ``--store`` setting places everything the service keeps. What each kind stores, and how
long: ``docs/service-storage.md``.
"""

from __future__ import annotations

from ...core.errors import ConfigError
from ...stores.kinds import scheme_of
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
    raise ConfigError(
        f"service data on {kind} stores is not in this build yet; use sqlite:/// or memory://"
    )
