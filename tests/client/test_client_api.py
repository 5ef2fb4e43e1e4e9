"""Every method of the asyncio client against the real service app (in-process, httpx over
ASGI): answers as dataclasses, errors as ServiceError subclasses, no token in any message."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from servers import free_port
from service.conftest import make_keys, service_settings

from coatcheck import ConfigError, FakeClock, Policy
from coatcheck.client import (
    AsyncServiceClient,
    Introspection,
    ServiceAuthError,
    ServiceError,
    ServiceUnavailable,
)
from coatcheck.client.errors import from_response
from coatcheck.config import Settings
from coatcheck.service.app import create_app
from coatcheck.service.context import ServiceContext

from .conftest import BASE_URL, Counter, InProcess

pytestmark = pytest.mark.anyio


def client(service: InProcess, key: str | None = None) -> AsyncServiceClient:
    return AsyncServiceClient(BASE_URL, key or service.admin_key, http=service.http)


async def test_sessions_create_introspect_refresh_list_revoke(service: InProcess) -> None:
    api = client(service)
    created = await api.create_session(
        "alice", client_ip="203.0.113.7", user_agent="Firefox", data={"theme": "dark"}
    )
    assert created.token.startswith("cc2_") and created.token not in repr(created)
    assert created.user_id == "alice" and created.kind == "browser"
    found = await api.introspect(created.token)
    assert found.active and found.is_session and not found.is_api_token
    assert (found.id, found.user_id, found.kind) == (created.id, "alice", "browser")
    assert found.expires_at == created.expires_at and found.scopes is None
    service.clock.advance(120)
    refreshed = await api.refresh(created.token)
    assert refreshed.active and refreshed.id == created.id
    assert refreshed.expires_at is not None and refreshed.expires_at > created.expires_at
    (listed,) = await api.list_sessions("alice")
    assert (listed.id, listed.client_ip, listed.user_agent) == (
        created.id,
        "203.0.113.7",
        "Firefox",
    )
    assert await api.revoke_session(created.id) is True
    assert await api.revoke_session(created.id) is False
    assert await api.introspect(created.token) == Introspection(active=False)
    assert (await api.refresh(created.token)).active is False
    assert await api.list_sessions("alice") == []


async def test_revoke_by_token_and_everything_of_a_user(service: InProcess) -> None:
    api = client(service)
    one = await api.create_session("bob")
    two = await api.create_session("bob")
    kept = await api.create_session("bob")
    token = await api.create_token("bob", "deploy")
    assert await api.revoke(one.token) is True
    assert await api.revoke(one.token) is False
    assert await api.revoke_user_sessions("bob", except_token=kept.token) == 1
    assert not (await api.introspect(two.token)).active
    assert (await api.introspect(kept.token)).active
    assert (await api.introspect(token.token)).active  # API tokens only with include_tokens
    assert await api.revoke_user_sessions("bob", include_tokens=True) == 2
    assert not (await api.introspect(kept.token)).active
    assert not (await api.introspect(token.token)).active


async def test_api_tokens_create_introspect_list_revoke(service: InProcess) -> None:
    api = client(service)
    created = await api.create_token(
        "carol", "ci", scopes=["repo:read", "repo:write"], expires_in=3600
    )
    assert created.token.startswith("cc_") and created.token not in repr(created)
    info = created.info
    assert (info.user_id, info.name, info.scopes) == ("carol", "ci", ("repo:read", "repo:write"))
    assert info.expires_at == pytest.approx(info.created_at + 3600)
    found = await api.introspect(created.token)
    assert found.is_api_token and found.id == info.id
    assert found.scopes == ("repo:read", "repo:write") and found.name == "ci"
    (listed,) = await api.list_tokens("carol")
    assert listed.id == info.id and listed.scopes == info.scopes
    assert await api.list_sessions("carol") == []  # tokens are not sessions
    assert await api.revoke_token(info.id) is True
    assert await api.revoke_token(info.id) is False
    assert not (await api.introspect(created.token)).active


async def test_client_ip_for_a_policy_that_binds_addresses(tmp_path: Path) -> None:
    library = Settings(policy=Policy(bind_ip=True))
    settings = service_settings(f"sqlite:///{tmp_path}/bound.db", tmp_path, library=library)
    context = ServiceContext.build(settings)
    app = create_app(settings, context=context)
    admin_key, _ = await make_keys(context)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        api = AsyncServiceClient(BASE_URL, admin_key, http=http)
        token = (await api.create_session("alice", client_ip="192.0.2.1")).token
        assert (await api.introspect(token, client_ip="192.0.2.1")).active
        assert not (await api.introspect(token, client_ip="192.0.2.99")).active
        assert (await api.refresh(token, client_ip="192.0.2.1")).active
    await context.close()


async def test_health(service: InProcess) -> None:
    assert await client(service).health() is True


async def test_a_wrong_key_is_an_auth_error(service: InProcess) -> None:
    with pytest.raises(ServiceAuthError) as caught:
        await client(service, "cck_" + "x" * 43).introspect("cc2_" + "A" * 48)
    assert caught.value.status == 401 and caught.value.slug == "unauthorized"


async def test_an_introspect_key_cannot_create_or_revoke(service: InProcess) -> None:
    reader = client(service, service.introspect_key)
    with pytest.raises(ServiceError) as caught:
        await reader.create_session("alice")
    assert caught.value.status == 403 and caught.value.slug == "forbidden"
    assert not isinstance(caught.value, ServiceAuthError | ServiceUnavailable)
    created = await client(service).create_session("alice")
    assert (await reader.introspect(created.token)).active
    with pytest.raises(ServiceError, match="403"):
        await reader.revoke(created.token)


async def test_bad_input_is_a_clear_error_without_the_token(service: InProcess) -> None:
    api = client(service)
    with pytest.raises(ServiceError) as caught:
        await api.create_session("")
    assert caught.value.status == 422 and caught.value.slug == "validation-error"
    secret = "cc2_" + "S" * 70_000  # oversized: refused by the service
    with pytest.raises(ServiceError) as refused:
        await api.introspect(secret)
    assert refused.value.status in (413, 422)
    for text in (str(refused.value), repr(refused.value), refused.value.detail):
        assert "SSSSSSSS" not in text


def test_a_problem_quoting_the_token_is_scrubbed() -> None:
    token = "cc2_" + "Q" * 48
    body = f'{{"type": "urn:coatcheck:problem:x", "title": "t", "detail": "bad {token}"}}'
    error = from_response(400, "Bad Request", "application/problem+json", body.encode(), token)
    assert token not in str(error) and "[token]" in error.detail


def test_a_proxy_page_is_a_plain_status_error() -> None:
    error = from_response(502, "Bad Gateway", "text/html", b"<html>oops</html>", None)
    assert isinstance(error, ServiceUnavailable) and error.title == "Bad Gateway"


async def test_an_unreachable_service_is_unavailable() -> None:
    api = AsyncServiceClient(f"http://127.0.0.1:{free_port()}", "cck_" + "k" * 43, timeout=2)
    async with api:
        with pytest.raises(ServiceUnavailable) as caught:
            await api.introspect("cc2_" + "A" * 48)
        assert caught.value.slug == "unreachable" and "cc2_" not in str(caught.value)
        assert await api.health() is False


@pytest.fixture
async def down_service(tmp_path: Path) -> AsyncIterator[InProcess]:
    """The service on a PostgreSQL URL where nothing listens: its store is down."""
    settings = service_settings(f"postgresql://127.0.0.1:{free_port()}/test", tmp_path)
    context = ServiceContext.build(settings)
    http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(settings, context=context))
    )
    try:
        yield InProcess(None, context, FakeClock(), "cck_" + "k" * 43, "", http, Counter())
    finally:
        await http.aclose()
        await context.close()


async def test_a_down_store_is_unavailable(down_service: InProcess) -> None:
    api = client(down_service)
    with pytest.raises(ServiceUnavailable) as caught:
        await api.introspect("cc2_" + "A" * 48)
    assert caught.value.status == 503 and caught.value.slug == "store-unavailable"
    assert await api.health() is False


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="base_url"):
        AsyncServiceClient("ftp://x", "cck_key")
    with pytest.raises(ConfigError, match="service_key"):
        AsyncServiceClient("http://x", " ")
    api = AsyncServiceClient("http://x", "cck_secretkey")
    assert "cck_secretkey" not in repr(api)
