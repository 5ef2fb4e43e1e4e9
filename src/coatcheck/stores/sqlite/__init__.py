"""The embedded default store (``sqlite:///path/to/file.db``): zero set-up, one file.

===============  ================================================================================
``url``          a ``sqlite:///`` store URL -> the database file's path (or ConfigError)
``connections``  one connection per thread, set up alike for sessions and service data
``sql``          the schema, its upgrades, and the statements more than one method sends
``store``        :class:`SQLiteStore`, the store class (synchronous; ``threaded`` makes it async)
===============  ================================================================================

Operator documentation: ``docs/stores/sqlite.md``.
"""

from .store import SQLiteStore
from .url import path_from_url

__all__ = ["SQLiteStore", "path_from_url"]
