"""The service's optional introspection cache (setting ``introspection_cache``): hits cost no
store call, revocations anywhere on the store reach it through the event log, a lost or
unreadable log flushes and bypasses it, and it is off (no cache object) by default."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from coatcheck.client.cache import ClientCache, cache_key
from coatcheck.client.models import Introspection
from coatcheck.service.app import create_app
from coatcheck.service.context import ServiceContext
from coatcheck.service.data import open_service_data
from coatcheck.service.events import EventBatch, RevocationEvent, RevocationEvents
from coatcheck.service.introspection_cache import IntrospectionCache

from .conftest import BASE_URL, ApiService, service_settings

pytestmark = pytest.mark.anyio

MakeApi = Callable[..., Awaitable[ApiService]]
POLLS = 400  # how many times a test looks (every 0.05 s) for the follower to catch up
INTROSPECT = "/v1/sessions/introspect"


def store_calls(ctx: ServiceContext) -> int:
    """Session store calls so far (the store-latency histogram's counts, every operation)."""
    total = 0.0
    for metric in ctx.metrics.registry.collect():
        if metric.name == "coatcheck_store_latency_seconds":
            total += sum(s.value for s in metric.samples if s.name.endswith("_count"))
    return int(total)


def cache_of(service: ApiService) -> IntrospectionCache:
    cache = service.context.introspection_cache
    assert cache is not None
    return cache


async def until(condition: Callable[[], bool]) -> None:
    """Wait, a bounded number of times, until the follower has done what ``condition`` says."""
    for _ in range(POLLS):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the introspection cache's follower did not get there")


async def following(service: ApiService) -> IntrospectionCache:
    """Start the follower (as the application's lifespan does) and wait until it is live."""
    cache = cache_of(service)
    cache.start()
    await until(lambda: cache.cache.live)
    return cache


async def new_session(service: ApiService, user: str = "alice") -> dict[str, Any]:
    answer = await service.admin.post("/v1/sessions", json={"user_id": user})
    assert answer.status_code == 201
    body: dict[str, Any] = answer.json()
    return body


async def introspect(client: httpx.AsyncClient, token: str, **extra: Any) -> dict[str, Any]:
    answer = await client.post(INTROSPECT, json={"token": token, **extra})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def stopped(cache: IntrospectionCache) -> None:
    await cache.stop()
    assert not cache.cache.live


async def test_off_by_default(make_api: MakeApi) -> None:
    service = await make_api()
    assert service.context.settings.introspection_cache == 0
    assert service.context.introspection_cache is None
    created = await new_session(service)
    before = store_calls(service.context)
    for _ in range(2):
        assert (await introspect(service.introspector, created["token"]))["active"] is True
    assert store_calls(service.context) == before + 2  # each one asks the store


async def test_a_hit_makes_no_store_call(make_api: MakeApi) -> None:
    service = await make_api(introspection_cache=30)
    cache = await following(service)
    created = await new_session(service)
    client = service.introspector
    first = await introspect(client, created["token"])
    calls = store_calls(service.context)
    second = await introspect(client, created["token"])
    assert store_calls(service.context) == calls
    assert second == first
    assert first["active"] is True and first["id"] == created["id"]
    assert set(first) == {
        "active", "token_type", "id", "sub", "user_id", "kind", "iat", "exp",
        "created_at", "expires_at", "authenticated_at", "last_seen_at",
    }  # fmt: skip
    assert cache.cache.hits >= 1
    # Another client address is another entry (a policy may bind sessions to addresses).
    await introspect(client, created["token"], client_ip="192.0.2.1")
    assert store_calls(service.context) == calls + 1
    # Inactive answers are never kept.
    unknown = "cc2_" + "A" * 48
    for _ in range(2):
        assert await introspect(client, unknown) == {"active": False}
    await stopped(cache)


async def test_the_cache_serves_only_while_followed(make_api: MakeApi) -> None:
    service = await make_api(introspection_cache=30)
    cache = cache_of(service)
    created = await new_session(service)
    calls = store_calls(service.context)
    for _ in range(2):  # no follower yet: bypassed
        await introspect(service.introspector, created["token"])
    assert store_calls(service.context) == calls + 2
    assert len(cache.cache) == 0


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
async def test_a_revocation_by_another_process_reaches_the_cache(
    make_api: MakeApi, request: pytest.FixtureRequest, tmp_path: Path, kind: str
) -> None:
    url = None if kind == "sqlite" else str(request.getfixturevalue("redis_url"))
    service = await make_api(url, introspection_cache=30)
    cache = await following(service)
    created = await new_session(service)
    await introspect(service.introspector, created["token"])
    assert len(cache.cache) == 1

    # Another service process on the same store, without a cache, revokes the token.
    other = ServiceContext.build(service_settings(service.context.settings.store_url, tmp_path))
    try:
        transport = httpx.ASGITransport(app=create_app(other.settings, context=other))
        headers = {"authorization": f"Bearer {service.admin_key}"}
        async with httpx.AsyncClient(
            transport=transport, base_url=BASE_URL, headers=headers
        ) as admin:
            answer = await admin.post("/v1/sessions/revoke", json={"token": created["token"]})
            assert answer.json() == {"revoked": True}
        published = await other.events.newest_id()
    finally:
        await other.close()
    assert published is not None
    await until(lambda: (cache.last_id or 0) >= published)
    assert len(cache.cache) == 0
    assert await introspect(service.introspector, created["token"]) == {"active": False}
    await stopped(cache)


async def test_a_revocation_here_drops_the_entry_before_any_event_is_read(
    make_api: MakeApi,
) -> None:
    service = await make_api(introspection_cache=30)
    cache = cache_of(service)
    cache.cache.connected()  # live, but no follower: only the local drop can remove it
    sessions = [await new_session(service) for _ in range(3)]
    for created in sessions:
        await introspect(service.introspector, created["token"])
    assert len(cache.cache) == 3
    revoke = await service.admin.post("/v1/sessions/revoke", json={"token": sessions[0]["token"]})
    assert revoke.json() == {"revoked": True}
    assert await introspect(service.introspector, sessions[0]["token"]) == {"active": False}
    by_id = await service.admin.delete(f"/v1/sessions/{sessions[1]['id']}")
    assert by_id.status_code == 200
    assert await introspect(service.introspector, sessions[1]["token"]) == {"active": False}
    assert (await introspect(service.introspector, sessions[2]["token"]))["active"] is True
    assert len(cache.cache) == 1


async def test_an_unreadable_event_flushes_the_cache(make_api: MakeApi) -> None:
    service = await make_api(introspection_cache=30)
    cache = await following(service)
    created = await new_session(service)
    await introspect(service.introspector, created["token"])
    assert len(cache.cache) == 1
    unreadable = await service.context.data.append_event("not an event", 0.0)
    await until(lambda: (cache.last_id or 0) >= unreadable)
    assert len(cache.cache) == 0
    assert cache.cache.live  # flushed, still serving
    await introspect(service.introspector, created["token"])
    assert len(cache.cache) == 1
    await stopped(cache)


def test_a_gap_in_the_event_ids_flushes_the_cache() -> None:
    events = RevocationEvents(open_service_data("memory://"))
    cache = IntrospectionCache(ClientCache(30), events, session_touch=60, token_touch=60)
    cache.cache.connected()
    now = cache.cache.clock()
    answer = Introspection(
        active=True, token_type="session", id="00" * 8, user_id="u", kind="browser",
        created_at=now, expires_at=now + 100, last_seen_at=now,
    )  # fmt: skip
    other = "11" * 8
    event = RevocationEvent(7, other, None, now)
    for last, kept in ((6, 1), (5, 0)):
        cache.cache.put(cache_key("t"), answer, cache.cache.ticket())
        cache.apply(EventBatch((event,), 7), last)
        assert len(cache.cache) == kept


async def test_store_unavailable_flushes_and_bypasses_until_back(
    make_api: MakeApi, redis_instance: Any
) -> None:
    server = redis_instance()
    service = await make_api(f"redis://{server.address}/0", introspection_cache=30)
    cache = await following(service)
    created = await new_session(service)
    await introspect(service.introspector, created["token"])
    assert len(cache.cache) == 1
    server.stop()
    await until(lambda: not cache.cache.live)
    assert len(cache.cache) == 0
    down = await service.introspector.post(INTROSPECT, json={"token": created["token"]})
    assert down.status_code == 503  # asked the store, not the cache
    server.start()
    await until(lambda: cache.connections == 2 and cache.cache.live)
    await stopped(cache)


async def test_max_age_on_the_injected_clock(make_api: MakeApi) -> None:
    service = await make_api(introspection_cache=5)
    cache = await following(service)
    created = await new_session(service)
    await introspect(service.introspector, created["token"])
    calls = store_calls(service.context)
    service.clock.now += 4.9
    await introspect(service.introspector, created["token"])
    assert store_calls(service.context) == calls
    service.clock.now += 0.1
    assert (await introspect(service.introspector, created["token"]))["active"] is True
    assert store_calls(service.context) == calls + 1
    await stopped(cache)


async def test_touch_is_served_only_while_no_write_is_due(make_api: MakeApi) -> None:
    service = await make_api(introspection_cache=600)  # longer than the touch interval (60 s)
    cache = await following(service)
    created = await new_session(service)
    first = await introspect(service.introspector, created["token"])
    calls = store_calls(service.context)
    assert await introspect(service.introspector, created["token"], touch=True) == first
    assert store_calls(service.context) == calls
    service.clock.now += 60  # a touch is due: the store slides the deadline
    touched = await introspect(service.introspector, created["token"], touch=True)
    assert store_calls(service.context) > calls
    assert touched["last_seen_at"] == service.clock.now
    assert touched["expires_at"] > first["expires_at"]
    calls = store_calls(service.context)
    assert await introspect(service.introspector, created["token"], touch=True) == touched
    assert await introspect(service.introspector, created["token"]) == touched
    assert store_calls(service.context) == calls
    await stopped(cache)


async def test_api_tokens_keep_their_last_used_coalescing(make_api: MakeApi) -> None:
    service = await make_api(introspection_cache=600)
    cache = await following(service)
    made = await service.admin.post("/v1/tokens", json={"user_id": "alice", "name": "ci"})
    token = made.json()["token"]
    first = await introspect(service.introspector, token)  # writes the first last-used time
    assert first["token_type"] == "api_token" and first["last_seen_at"] == service.clock.now
    calls = store_calls(service.context)
    assert await introspect(service.introspector, token) == first
    assert store_calls(service.context) == calls
    service.clock.now += 60  # the store would write the last-used time now: ask it
    later = await introspect(service.introspector, token)
    assert later["last_seen_at"] == service.clock.now
    assert store_calls(service.context) > calls
    listed = await service.admin.get("/v1/users/alice/tokens")
    assert listed.json()["tokens"][0]["last_used_at"] == service.clock.now
    revoked = await service.admin.delete(f"/v1/tokens/{first['id']}")
    assert revoked.status_code == 200
    assert await introspect(service.introspector, token) == {"active": False}
    await stopped(cache)


async def test_the_lifespan_runs_the_follower(tmp_path: Path) -> None:
    settings = service_settings(f"sqlite:///{tmp_path}/life.db", tmp_path, introspection_cache=2)
    context = ServiceContext.build(settings)
    app = create_app(settings, context=context)
    cache = context.introspection_cache
    assert cache is not None
    async with app.router.lifespan_context(app):
        assert cache.running
        await until(lambda: cache.cache.live)
    assert not cache.running
    assert not cache.cache.live
