"""The parts of the Redis store that are the same for the sync and the async store, by job.

==============  =========================================================================
``url``         a store URL -> :class:`~coatcheck.stores.redis.url.RedisOptions`
``keys``        key layout: names, SCAN patterns, cluster hash tags and slots
``record``      a session as a Redis hash, and back
``lua``         the Lua scripts and the arguments each one takes
``failures``    which driver errors mean "the server is unavailable", and error replies
``wire``        commands as RESP bytes (hiredis's packer)
``mux``         the async store's pipelined connection (asyncio only)
``aio``         what only the async store does (imported by it alone)
``blocking``    the same names for the sync store (what ``scripts/unasync.py`` maps to)
==============  =========================================================================

The stores themselves are ``coatcheck._async.stores.redis`` (the source) and the generated
``coatcheck._sync.stores.redis``. Nothing here imports a store, and only ``aio`` and ``mux``
import asyncio.
"""
