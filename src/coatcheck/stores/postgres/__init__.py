"""The PostgreSQL store's parts that are the same for its synchronous and asynchronous faces.

=============  =================================================================================
``url``        a ``postgresql://`` store URL -> :class:`~.url.PostgresOptions` (or ConfigError)
``sql``        the schema, its upgrades and every statement the store sends
``decode``     rows -> records, and the text PostgreSQL refuses to store
``failures``   driver errors -> :class:`StoreUnavailable` / :class:`ConfigError`
``backend``    the only things the two faces do differently (waiting, an event), each twice
=============  =================================================================================

The store classes live in ``coatcheck/_async/stores/postgres.py`` (``AsyncPostgresStore``) and
its generated twin ``coatcheck/_sync/stores/postgres.py`` (``PostgresStore``); their connection
handling in ``postgres_pool.py`` beside them. Operator documentation: ``docs/stores/postgres.md``.
"""
