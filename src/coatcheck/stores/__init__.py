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

from .._async.stores.base import AsyncStore
from .._async.stores.by_url import open_async_store
from .._sync.stores.base import Store
from .._sync.stores.by_url import open_store
from .kinds import scheme_of

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
