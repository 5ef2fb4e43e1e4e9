"""The one contract every store keeps: the rules here, the methods in
:class:`coatcheck._async.stores.base.AsyncStore` and its generated twin
:class:`coatcheck._sync.stores.base.Store` (both re-exported by :mod:`coatcheck.stores`).

Rules every implementation follows (the conformance suite in ``tests/stores`` checks them):

* Records are keyed by ``SessionKey.digest`` (SHA-256 of the token); the token never arrives.
* ``load`` returns what is stored, expired or not: the policy, not the store, decides liveness.
  ``load_many`` does the same for several keys in one round trip (one per cluster node),
  answering position by position (``None`` where nothing is stored; a repeated key gets its
  own record object each time). Given ``data=False`` both return the records with empty
  ``data`` and everything else as stored: the stores that can leave the data unread and
  undecoded do (the service's introspection never looks at it).
* Every write is conditional on the record still existing. ``update`` of a missing record
  raises :class:`SessionGone` and writes nothing: a slow request cannot resurrect a session
  that was logged out, revoked, rotated or purged. With ``expected_version`` it also raises
  :class:`SessionConflict` when another write came first.
* ``update`` applies a :class:`Patch` atomically against the current data and bumps
  ``version`` by one, so concurrent requests that change different keys both keep them.
* Every session has a public id (``public_id_bytes(key)``: its cluster slot and a hash of its
  digest), which ``delete_by_public_id`` looks up by an index (SQL) or a key kept with the
  session (Redis): listings show it, and nothing can be derived from it. Given ``api_token``,
  it deletes only an API token (True) or only a record that is not one (False), judged as
  :func:`~coatcheck.core.apitokens.is_api_token` does (kind ``api`` and an object under the
  reserved data key) in the same atomic step as the delete, so an id taken from one kind of
  listing can never end a record of the other kind.
* A delete given a :class:`Revocation` (``delete``, ``delete_by_public_id``, ``delete_user``)
  leaves a :class:`Tombstone` per deleted session in the same atomic step: its reason and time,
  kept until the session's own ``expires_at``; a session evicted by the per-user limit leaves one
  with reason ``limit_eviction``. Nothing is written for a session that was already gone, and
  no tombstone ever brings a session back or stands in the way of a write. ``tombstone`` reads
  one as stored (expired or not, as ``load``); ``purge_expired`` deletes expired ones too;
  ``delete_all`` leaves them. Rotation (``insert`` with ``replaces``) leaves none.
* ``insert`` with ``replaces`` is rotation: in one atomic step the old record must exist (else
  :class:`SessionGone`) and is deleted, the new one is inserted, and the per-user limit is
  enforced for browser sessions (oldest evicted, or :class:`SessionLimitReached` with nothing
  changed). It returns the digests of evicted sessions.
* Markers (``put_marker``, ``get_marker``, ``delete_marker``) are small named values with a
  lifetime, beside the sessions and apart from them (limits and checks:
  :mod:`coatcheck.stores.markers`, :class:`InvalidMarker` before anything is sent). Their
  lifetime runs on the clock of whatever holds them: the PostgreSQL or Redis server's, the
  machine's for SQLite and memory (never a manager's :class:`Clock`). An expired marker is
  never returned and counts as absent: ``put_marker(only_if_absent=True)`` replaces it, and of
  any number of processes racing to put one name that way exactly one gets True (one atomic
  statement or command: ``INSERT ... ON CONFLICT DO UPDATE ... WHERE expired``, ``SET NX PX``).
  ``delete_marker`` answers whether a live one was there. ``purge_expired`` deletes markers
  expired at its ``now`` (not counted in its answer, like tombstones); Redis also drops them by
  TTL. ``delete_all`` deletes them too (not counted either). On a cluster a marker is one key.
* ``token_key`` is the store's own token key (docs/security.md, "The token key"): created
  once, atomically, never deleted by the store (not even by ``delete_all``).
* Server failures surface as :class:`StoreUnavailable`, never as a driver exception, and the
  store recovers by itself once the server is back.
"""

from __future__ import annotations

DEFAULT_PURGE_BATCH = 1000
