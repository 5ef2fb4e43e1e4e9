"""What the manager sends to its store: how many calls, and which values never get there.

Behaviour shared by every store is in tests/stores/test_conformance.py; these tests count the
calls on a real memory store (harness.CountingStore).
"""

from __future__ import annotations

import asyncio

from harness import CountingStore, logged_in

from coatcheck import AsyncSessionManager, SessionManager
from coatcheck.core.tokens import PREFIX
from coatcheck.stores.threaded import AsyncOverSync


def test_load_many_is_one_store_call_and_malformed_tokens_never_reach_it() -> None:
    store = CountingStore()
    manager = SessionManager(store)  # type: ignore[arg-type]
    tokens = [logged_in(manager, f"user{i}") for i in range(3)]
    store.calls.clear()
    sessions = manager.load_many([None, "", "junk", PREFIX + "*" * 48, *tokens, tokens[0]])
    assert store.calls == ["load_many"]
    assert [s.user_id for s in sessions[4:]] == ["user0", "user1", "user2", "user0"]
    store.calls.clear()
    assert all(s.is_new for s in manager.load_many(["junk", None, PREFIX + "!" * 48]))
    assert store.calls == []


def test_load_many_of_one_token_is_the_plain_load() -> None:
    """One well-formed token (however often it is given) takes the per-request path."""
    store = CountingStore()
    manager = SessionManager(store)  # type: ignore[arg-type]
    token = logged_in(manager)
    store.calls.clear()
    first, again = manager.load_many([token, "junk", token])[::2]
    assert store.calls == ["load"]
    assert first.record is not None and again.record is not None
    assert first.record is not again.record and first.record.data is not again.record.data


def test_async_load_many_is_one_store_call() -> None:
    store = CountingStore()
    sync = SessionManager(store)  # type: ignore[arg-type]
    tokens = [logged_in(sync, "a"), logged_in(sync, "b")]
    store.calls.clear()
    manager = AsyncSessionManager(AsyncOverSync(store, threads=None))  # type: ignore[arg-type]
    sessions = asyncio.run(manager.load_many(["junk", *tokens]))
    assert store.calls == ["load_many"]
    assert [s.user_id for s in sessions] == [None, "a", "b"]


def test_a_request_never_looks_for_tombstones_an_inspection_does_on_a_miss() -> None:
    store = CountingStore()
    manager = SessionManager(store)  # type: ignore[arg-type]
    live, revoked = logged_in(manager), logged_in(manager)
    manager.revoke(revoked)
    store.calls.clear()
    manager.load(live)
    manager.load(revoked)
    manager.load_many([live, revoked])
    manager.load_many([revoked, "junk"])
    assert store.calls == ["load", "load", "load_many", "load"]
    store.calls.clear()
    manager.inspect(live)
    assert store.calls == ["load"], "a live session costs what it always cost"
    manager.inspect(revoked)
    assert store.calls == ["load", "load", "tombstone"]
