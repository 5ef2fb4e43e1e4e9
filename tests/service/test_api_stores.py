"""The API's main flows on every server store, the revocation event stream through a real
uvicorn, and ``/healthz`` while a Redis server stops and comes back."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest

from coatcheck.service.app import create_app
from coatcheck.service.data import open_service_data
from service.conftest import ApiService, service_keys, service_settings, uvicorn_server
from service.test_data import url_for

MakeApi = Callable[..., Awaitable[ApiService]]


@pytest.fixture(params=["sqlite", "postgres", "redis", "cluster"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return url_for(request.param, request, tmp_path)


@pytest.mark.anyio
async def test_main_flow(make_api: MakeApi, store: str) -> None:
    service = await make_api(store)
    admin, introspector = service.admin, service.introspector
    policy = service.context.sessions.policy

    created = (await admin.post("/v1/sessions", json={"user_id": "alice"})).json()
    other = (await admin.post("/v1/sessions", json={"user_id": "alice"})).json()
    facts = await introspector.post("/v1/sessions/introspect", json={"token": created["token"]})
    assert facts.json()["active"] is True and facts.json()["id"] == created["id"]

    service.clock.advance(policy.touch_interval + 1)
    refreshed = await introspector.post("/v1/sessions/refresh", json={"token": created["token"]})
    assert refreshed.json()["expires_at"] == service.clock() + policy.idle_timeout

    listed = (await admin.get("/v1/users/alice/sessions")).json()["sessions"]
    assert {s["id"] for s in listed} == {created["id"], other["id"]}

    token = (await admin.post("/v1/tokens", json={"user_id": "alice", "name": "ci"})).json()
    token_facts = await introspector.post("/v1/sessions/introspect", json={"token": token["token"]})
    assert token_facts.json()["token_type"] == "api_token"
    assert [t["id"] for t in (await admin.get("/v1/users/alice/tokens")).json()["tokens"]] == [
        token["id"]
    ]

    assert (await admin.delete(f"/v1/sessions/{other['id']}")).json() == {"revoked": True}
    inactive = await introspector.post("/v1/sessions/introspect", json={"token": other["token"]})
    assert inactive.json() == {"active": False}
    everything = await admin.request(
        "DELETE", "/v1/users/alice/sessions", json={"include_tokens": True}
    )
    assert everything.json() == {"revoked": 2}
    for gone in (created["token"], token["token"]):
        answer = await introspector.post("/v1/sessions/introspect", json={"token": gone})
        assert answer.json() == {"active": False}
    assert (await admin.get("/healthz")).json() == {"status": "ok"}


# --- the event stream ----------------------------------------------------------------------


def read_event(lines: Iterator[str]) -> dict[str, str]:
    """The next event's fields (comments and the retry field skipped)."""
    fields: dict[str, str] = {}
    for line in lines:
        if line == "":
            if "event" in fields:
                return fields
            fields = {}
        elif not line.startswith(":") and not line.startswith("retry:"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
    raise AssertionError(f"the stream ended; last fields {fields}")


def digest_prefix(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


class Served(NamedTuple):
    """A real server on loopback: its URL, an admin key, an introspect key, its store."""

    base: str
    admin_key: str
    introspect_key: str
    store_url: str


@pytest.fixture(params=["sqlite", "redis"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    url = url_for(request.param, request, tmp_path)
    admin, introspect = service_keys(url, tmp_path)
    with uvicorn_server(create_app(service_settings(url, tmp_path))) as base:
        yield Served(base, admin, introspect, url)


def admin_and_watcher(served: Served) -> tuple[httpx.Client, httpx.Client]:
    """A client with the admin key, and one with the introspect key for reading streams."""
    admin = httpx.Client(
        base_url=served.base, headers={"authorization": f"Bearer {served.admin_key}"}
    )
    watcher = httpx.Client(
        base_url=served.base,
        headers={"authorization": f"Bearer {served.introspect_key}"},
        timeout=20,
    )
    return admin, watcher


def new_sessions(admin: httpx.Client, count: int) -> list[dict[str, Any]]:
    return [admin.post("/v1/sessions", json={"user_id": "alice"}).json() for _ in range(count)]


def test_events_stream_revocations_and_resume(served: Served) -> None:
    admin, watcher = admin_and_watcher(served)
    with admin, watcher:
        first, second, third = new_sessions(admin, 3)
        # An empty log and a client that has seen events: it must flush (reset).
        with watcher.stream("GET", "/v1/events", headers={"last-event-id": "5"}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = response.iter_lines()
            assert read_event(lines) == {"event": "reset", "data": "{}"}
            admin.post("/v1/sessions/revoke", json={"token": first["token"]})
            revoked = read_event(lines)
        assert revoked["event"] == "revoked"
        assert json.loads(revoked["data"]) == {
            "id": first["id"],
            "digest_prefix": digest_prefix(first["token"]),
        }
        # Missed while disconnected, delivered on resuming after the last id seen.
        admin.delete(f"/v1/sessions/{second['id']}")
        with watcher.stream(
            "GET", "/v1/events", headers={"last-event-id": revoked["id"]}
        ) as response:
            lines = response.iter_lines()
            missed = read_event(lines)
            assert missed["event"] == "revoked"
            assert json.loads(missed["data"]) == {"id": second["id"], "digest_prefix": None}
            assert int(missed["id"]) > int(revoked["id"])
        # A new client starts after the newest event.
        with watcher.stream("GET", "/v1/events") as response:
            lines = response.iter_lines()
            assert next(lines).startswith("retry:")
            admin.post("/v1/sessions/revoke", json={"token": third["token"]})
            assert json.loads(read_event(lines)["data"])["id"] == third["id"]


def append_raw_event(url: str, payload: str) -> int:
    """Write an event payload straight into the store's log, as another version might."""

    async def append() -> int:
        data = open_service_data(url)
        try:
            return await data.append_event(payload, 1_700_000_000.0)
        finally:
            await data.close()

    return asyncio.run(append())


def test_events_stream_moves_past_an_unreadable_event(served: Served) -> None:
    admin, watcher = admin_and_watcher(served)
    with admin, watcher:
        first, second = new_sessions(admin, 2)
        with watcher.stream("GET", "/v1/events") as response:
            lines = response.iter_lines()
            admin.post("/v1/sessions/revoke", json={"token": first["token"]})
            seen = read_event(lines)
            garbage = append_raw_event(served.store_url, "not json")
            # Unknown contents: the client must flush, and the stream moves on past it.
            assert read_event(lines) == {"id": str(garbage), "event": "reset", "data": "{}"}
            admin.post("/v1/sessions/revoke", json={"token": second["token"]})
            after = read_event(lines)
        assert (seen["event"], after["event"]) == ("revoked", "revoked")
        assert json.loads(after["data"])["id"] == second["id"]
        assert int(seen["id"]) < garbage < int(after["id"])


def test_events_need_a_key_and_a_numeric_last_event_id(served: Served) -> None:
    base, _, introspect_key, _ = served
    with httpx.Client(base_url=base) as client:
        response = client.get("/v1/events")
        assert response.status_code == 401
        response = client.get(
            "/v1/events",
            headers={"authorization": f"Bearer {introspect_key}", "last-event-id": "abc"},
        )
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"


# --- health --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_healthz_follows_the_store(make_api: MakeApi, redis_instance: Any) -> None:
    server = redis_instance()
    service = await make_api(f"redis://127.0.0.1:{server.port}/0")
    client = service.client(anonymous=True)
    assert (await client.get("/healthz")).status_code == 200
    server.stop()
    down = await client.get("/healthz")
    assert down.status_code == 503
    assert down.headers["content-type"] == "application/problem+json"
    assert down.json()["type"] == "urn:coatcheck:problem:store-unavailable"
    assert down.headers["retry-after"]
    refused = await service.introspector.post("/v1/sessions/introspect", json={"token": "x"})
    assert refused.status_code == 503
    server.start()
    assert (await client.get("/healthz")).status_code == 200
