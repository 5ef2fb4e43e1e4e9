"""Middleware mode in-process: a Starlette app (remote_app.py) validates cookies and bearer API
tokens through the real service on loopback; read-only sessions, logout through the service,
503 when the service is down; the WSGI way too."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from servers import free_port

from coatcheck import Policy
from coatcheck.client import ClientCache, ServiceClient
from coatcheck.client.middleware import remote_asgi, remote_wsgi
from coatcheck.config import Settings

from .conftest import Served, serve, wait_until
from .remote_app import build_app

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

LOCAL = "http://127.0.0.1"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


JSON = {"accept": "application/json"}


@pytest.fixture
def admin(served: Served) -> Iterator[ServiceClient]:
    with ServiceClient(served.url, served.admin_key) as client:
        yield client


@pytest.fixture
def second(served: Served) -> Iterator[TestClient]:
    """The second service, with the admin key (its logout revokes on the service)."""
    with TestClient(build_app(served.url, served.admin_key), base_url=LOCAL) as client:
        yield client


def with_cookie(token: str) -> dict[str, str]:
    return {**JSON, "cookie": f"session={token}"}


def test_a_service_session_is_accepted_until_revoked(
    second: TestClient, admin: ServiceClient
) -> None:
    created = admin.create_session("alice")
    answer = second.get("/me", headers=with_cookie(created.token))
    assert answer.status_code == 200
    body = answer.json()
    assert (body["user"], body["kind"], body["scopes"]) == ("alice", "browser", None)
    assert body["id"] == created.id  # record.public_id: the id the service lists
    assert "set-cookie" not in answer.headers
    assert admin.revoke(created.token)
    refused = second.get("/me", headers=with_cookie(created.token))
    assert refused.status_code == 401
    assert "set-cookie" in refused.headers  # the dead cookie is expired


def test_anonymous_and_malformed_cookies_ask_nothing(second: TestClient) -> None:
    assert second.get("/public", headers=JSON).json() == {"user": None}
    assert second.get("/public", headers=with_cookie("garbage")).json() == {"user": None}


def test_activity_here_keeps_the_session_alive_there(
    second: TestClient, admin: ServiceClient, served: Served
) -> None:
    created = admin.create_session("alice")
    (before,) = admin.list_sessions("alice")
    served.clock.advance(300)
    assert second.get("/me", headers=with_cookie(created.token)).status_code == 200
    (after,) = admin.list_sessions("alice")
    assert after.last_seen_at == before.last_seen_at + 300
    assert after.expires_at > before.expires_at


def test_bearer_api_tokens_with_scopes(second: TestClient, admin: ServiceClient) -> None:
    reader = admin.create_token("carol", "reader", scopes=["repo:read"])
    other = admin.create_token("carol", "other", scopes=["wiki:read"])
    bearer = {**JSON, "authorization": f"Bearer {reader.token}"}
    answer = second.get("/repo", headers=bearer)
    assert answer.status_code == 200
    assert answer.json() == {"user": "carol", "scopes": ["repo:read"]}
    assert second.get("/me", headers=bearer).json()["kind"] == "api"
    missing = second.get("/repo", headers={**JSON, "authorization": f"Bearer {other.token}"})
    assert missing.status_code == 403
    session = admin.create_session("carol")  # a session token is no API token
    as_bearer = second.get("/repo", headers={**JSON, "authorization": f"Bearer {session.token}"})
    assert as_bearer.status_code == 401
    assert admin.revoke_token(reader.info.id)
    refused = second.get("/repo", headers=bearer)
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]


def test_sessions_are_read_only_here(second: TestClient, admin: ServiceClient) -> None:
    created = admin.create_session("alice")
    csrf = second.get("/me", headers=with_cookie(created.token)).json()["csrf"]
    unsafe = {**with_cookie(created.token), "x-csrf-token": csrf, "origin": LOCAL}
    wrote = second.post("/write", headers=unsafe)
    assert wrote.status_code == 409
    assert "validated through the session service are read-only here" in wrote.json()["message"]
    logged = second.post("/login", headers=unsafe)
    assert logged.status_code == 409
    assert "logging in happens on the session service" in logged.json()["message"]
    assert admin.introspect(created.token).active


def test_csrf_is_checked_with_a_token_of_this_app(second: TestClient, admin: ServiceClient) -> None:
    created = admin.create_session("alice")
    forged = {**with_cookie(created.token), "x-csrf-token": "guess", "origin": LOCAL}
    assert second.post("/logout", headers=forged).status_code == 403
    assert admin.introspect(created.token).active


def test_logout_revokes_on_the_service(second: TestClient, admin: ServiceClient) -> None:
    created = admin.create_session("alice")
    csrf = second.get("/me", headers=with_cookie(created.token)).json()["csrf"]
    unsafe = {**with_cookie(created.token), "x-csrf-token": csrf, "origin": LOCAL}
    answer = second.post("/logout", headers=unsafe)
    assert answer.status_code == 200
    assert (
        "session=;" in answer.headers["set-cookie"] or "Max-Age=0" in answer.headers["set-cookie"]
    )
    assert not admin.introspect(created.token).active


def test_logging_out_the_other_sessions(second: TestClient, admin: ServiceClient) -> None:
    here, *_ = (admin.create_session("alice") for _ in range(3))
    csrf = second.get("/me", headers=with_cookie(here.token)).json()["csrf"]
    unsafe = {**with_cookie(here.token), "x-csrf-token": csrf, "origin": LOCAL}
    assert second.post("/logout-others", headers=unsafe).json() == {"ended": 2}
    assert [s.id for s in admin.list_sessions("alice")] == [here.id]


def test_a_down_service_is_a_503(admin: ServiceClient) -> None:
    created = admin.create_session("alice")
    app = build_app(f"http://127.0.0.1:{free_port()}", "cck_" + "k" * 43)
    with TestClient(app, base_url=LOCAL) as client:
        answer = client.get("/me", headers=with_cookie(created.token))
        assert answer.status_code == 503
        assert answer.json()["error"] == "session_store_unavailable"
        assert created.token not in answer.text


def test_a_wrong_service_key_is_a_503_too(served: Served, admin: ServiceClient) -> None:
    created = admin.create_session("alice")
    with TestClient(build_app(served.url, "cck_" + "w" * 43), base_url=LOCAL) as client:
        assert client.get("/me", headers=with_cookie(created.token)).status_code == 503


def test_with_a_cache_a_revocation_arrives_by_event(served: Served, admin: ServiceClient) -> None:
    cache = ClientCache(max_age=3600)
    app = build_app(served.url, served.introspect_key, cache=cache)
    created = admin.create_session("alice")
    with TestClient(app, base_url=LOCAL) as client:
        wait_until(lambda: cache.live, "the revocation stream")
        assert client.get("/me", headers=with_cookie(created.token)).status_code == 200
        assert len(cache) == 1
        assert admin.revoke_session(created.id)
        wait_until(lambda: len(cache) == 0, "the revocation event")
        assert client.get("/me", headers=with_cookie(created.token)).status_code == 401
    assert not cache.live  # the lifespan's end closed the client


def whoami(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    session = environ["coatcheck.session"]
    start_response("200 OK", [("content-type", "text/plain")])
    return [str(session.user_id).encode()]


def test_the_client_address_goes_along(tmp_path: Path) -> None:
    """A service policy binding sessions to addresses sees the end user's address."""
    with serve(tmp_path, library=Settings(policy=Policy(bind_ip=True))) as bound:
        with ServiceClient(bound.url, bound.admin_key) as admin:
            created = admin.create_session("erin", client_ip="192.0.2.1")
        app = remote_wsgi(whoami, bound.url, bound.introspect_key, cookie_name="session")
        cookie = {"cookie": f"session={created.token}"}
        for address, user in (("192.0.2.1", "erin"), ("192.0.2.2", "None")):
            transport = httpx.WSGITransport(app=app, remote_addr=address)
            with httpx.Client(transport=transport, base_url="https://127.0.0.1") as client:
                assert client.get("/", headers=cookie).text == user
        app.handler.manager.close()


async def asgi_whoami(scope: dict[str, Any], receive: Any, send: Any) -> None:
    session = await scope["coatcheck.session"].load()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(session.user_id).encode()})


@pytest.mark.anyio
async def test_the_asgi_way(served: Served) -> None:
    with ServiceClient(served.url, served.admin_key) as admin:
        created = admin.create_session("dave")
    app = remote_asgi(asgi_whoami, served.url, served.introspect_key, cookie_name="session")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://127.0.0.1") as client:
        cookie = {"cookie": f"session={created.token}"}
        assert (await client.get("/", headers=cookie)).text == "dave"
        assert (await client.get("/")).text == "None"
    await app.handler.manager.close()


def test_the_wsgi_way(served: Served, admin: ServiceClient) -> None:
    created = admin.create_session("dave")
    app = remote_wsgi(whoami, served.url, served.introspect_key, cookie_name="session")
    transport = httpx.WSGITransport(app=app)
    with httpx.Client(transport=transport, base_url="https://127.0.0.1") as client:
        assert client.get("/", headers={"cookie": f"session={created.token}"}).text == "dave"
        assert client.get("/").text == "None"
        admin.revoke(created.token)
        assert client.get("/", headers={"cookie": f"session={created.token}"}).text == "None"
    app.handler.manager.close()
