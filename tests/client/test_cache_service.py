"""The client cache against the real service on loopback: a warm hit makes no request, a
revocation anywhere drops the entry through the event stream, a cut stream bypasses the cache,
a reconnection starts it afresh, ``max_age`` bounds it; both faces (the blocking client's
stream runs in a thread). Requests are counted with httpx event hooks, never timed."""

from __future__ import annotations

import httpx
import pytest

from coatcheck import FakeClock
from coatcheck.client import AsyncServiceClient, ClientCache, ServiceClient

from .conftest import PATIENCE, Counter, Proxied, Served, until, wait_until

pytestmark = pytest.mark.anyio
INTROSPECT = "/v1/sessions/introspect"


def cached_async(url: str, key: str, counter: Counter, cache: ClientCache) -> AsyncServiceClient:
    http = httpx.AsyncClient(event_hooks={"request": [counter.hook]})
    return AsyncServiceClient(url, key, http=http, cache=cache)


async def close(api: AsyncServiceClient) -> None:
    await api.aclose()
    await api._http.aclose()


async def test_a_warm_hit_makes_no_request(served: Served) -> None:
    counter = Counter()
    api = cached_async(served.url, served.introspect_key, counter, ClientCache())
    admin = AsyncServiceClient(served.url, served.admin_key)
    try:
        token = (await admin.create_session("alice")).token
        assert await api.start_events(PATIENCE)
        first = await api.introspect(token)
        again = await api.introspect(token, touch=True)
        assert first.active and again == first
        assert counter.count(INTROSPECT) == 1
        assert api.cache is not None and api.cache.hits == 1
    finally:
        await close(api)
        await admin.aclose()


async def test_a_revocation_elsewhere_drops_the_entry(served: Served) -> None:
    counter = Counter()
    cache = ClientCache(max_age=3600)
    api = cached_async(served.url, served.introspect_key, counter, cache)
    admin = AsyncServiceClient(served.url, served.admin_key)  # another service, no cache
    try:
        created = await admin.create_session("alice")
        other = await admin.create_session("bob")
        assert await api.start_events(PATIENCE)
        await api.introspect(created.token)
        await api.introspect(other.token)
        assert len(cache) == 2
        assert await admin.revoke_session(created.id)
        await until(lambda: len(cache) == 1, "the revocation event")
        assert not (await api.introspect(created.token)).active
        assert (await api.introspect(other.token)).active  # still cached
        assert counter.count(INTROSPECT) == 3
    finally:
        await close(api)
        await admin.aclose()


async def test_own_revocations_drop_at_once(served: Served) -> None:
    cache = ClientCache(max_age=3600)
    api = AsyncServiceClient(served.url, served.admin_key, cache=cache)
    try:
        assert await api.start_events(PATIENCE)
        created = [await api.create_session("dora") for _ in range(4)]
        token = await api.create_token("dora", "ci")
        for each in (*created, token):
            await api.introspect(each.token)
        assert len(cache) == 5
        await api.revoke(created[0].token)
        assert len(cache) == 4  # before any event could arrive
        await api.revoke_session(created[1].id)
        await api.revoke_token(token.info.id)
        assert len(cache) == 2
        await api.revoke_user_sessions("dora", except_token=created[3].token)
        assert len(cache) == 1
        assert (await api.introspect(created[3].token)).active
    finally:
        await api.aclose()


async def test_a_cut_stream_bypasses_and_a_reconnection_starts_afresh(proxied: Proxied) -> None:
    served = proxied.served
    counter = Counter()
    cache = ClientCache(max_age=3600)
    api = cached_async(proxied.url, served.introspect_key, counter, cache)
    admin = AsyncServiceClient(served.url, served.admin_key)
    try:
        token = (await admin.create_session("erin")).token
        assert await api.start_events(PATIENCE)
        await api.introspect(token)
        await api.introspect(token)
        assert counter.count(INTROSPECT) == 1
        proxied.proxy.cut_streams()
        await until(lambda: not cache.live, "the listener to notice the cut")
        await api.introspect(token)
        await api.introspect(token)
        assert counter.count(INTROSPECT) == 3  # bypassed: every call asks
        assert len(cache) == 0
        proxied.proxy.allow_streams()
        await until(lambda: cache.live, "the reconnection")
        assert api.events is not None and api.events.listener.connections == 2
        await api.introspect(token)  # afresh: asks once more, then cached again
        await api.introspect(token)
        assert counter.count(INTROSPECT) == 4
    finally:
        await close(api)
        await admin.aclose()


async def test_max_age_bounds_a_warm_entry(served: Served) -> None:
    counter = Counter()
    clock = FakeClock()
    api = cached_async(
        served.url, served.introspect_key, counter, ClientCache(max_age=10, clock=clock)
    )
    admin = AsyncServiceClient(served.url, served.admin_key)
    try:
        token = (await admin.create_session("fay")).token
        assert await api.start_events(PATIENCE)
        await api.introspect(token)
        clock.advance(9)
        await api.introspect(token)
        assert counter.count(INTROSPECT) == 1
        clock.advance(1)
        await api.introspect(token)
        assert counter.count(INTROSPECT) == 2
    finally:
        await close(api)
        await admin.aclose()


def test_blocking_client_listens_in_a_thread(served: Served) -> None:
    counter = Counter()
    cache = ClientCache(max_age=3600)
    http = httpx.Client(event_hooks={"request": [counter]})
    api = ServiceClient(served.url, served.introspect_key, http=http, cache=cache)
    with ServiceClient(served.url, served.admin_key) as admin:
        created = admin.create_session("gus")
        try:
            assert api.start_events(PATIENCE)
            assert api.introspect(created.token).active
            assert api.introspect(created.token).active
            assert counter.count(INTROSPECT) == 1
            assert admin.revoke_session(created.id)
            wait_until(lambda: len(cache) == 0, "the revocation event")
            assert not api.introspect(created.token).active
        finally:
            api.close()
            http.close()
    assert not cache.live
    assert api.events is not None and not api.events.running
