"""The JSON API on SQLite, in-process (httpx over ASGI): every endpoint, its exact shapes, the
introspection of every kind of token, and the service key rules."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from coatcheck import Policy
from coatcheck.config import Settings
from coatcheck.core.errors import ConfigError
from coatcheck.service.context import ServiceContext
from coatcheck.service.settings import ServiceSettings
from service.conftest import ApiService

pytestmark = pytest.mark.anyio

MakeApi = Callable[..., Awaitable[ApiService]]
SESSION_FIELDS = {
    "active",
    "token_type",
    "id",
    "sub",
    "user_id",
    "kind",
    "iat",
    "exp",
    "created_at",
    "expires_at",
    "authenticated_at",
    "last_seen_at",
}
LISTED_FIELDS = {
    "id",
    "kind",
    "created_at",
    "last_seen_at",
    "authenticated_at",
    "expires_at",
    "client_ip",
    "user_agent",
}


def unknown_token() -> str:
    """A well-formed session token that was never issued."""
    return "cc2_" + secrets.token_urlsafe(36)


async def create(client: httpx.AsyncClient, user_id: str = "alice", **fields: Any) -> Any:
    response = await client.post("/v1/sessions", json={"user_id": user_id, **fields})
    assert response.status_code == 201, response.text
    return response.json()


async def introspect(service: ApiService, token: str, **fields: Any) -> Any:
    response = await service.introspector.post(
        "/v1/sessions/introspect", json={"token": token, **fields}
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.json()


# --- sessions ------------------------------------------------------------------------------


async def test_create_returns_the_token_once_with_its_facts(api_service: ApiService) -> None:
    created = await create(
        api_service.admin,
        "alice",
        client_ip="2001:db8::1",
        user_agent="curl/8",
        data={"theme": "dark"},
    )
    assert set(created) == {
        "token",
        "id",
        "user_id",
        "kind",
        "created_at",
        "expires_at",
        "absolute_expires_at",
    }
    now = api_service.clock()
    policy = api_service.context.sessions.policy
    assert created["token"].startswith("cc2_")
    assert created["user_id"] == "alice" and created["kind"] == "browser"
    assert created["created_at"] == now
    assert created["expires_at"] == now + policy.idle_timeout
    assert created["absolute_expires_at"] == now + policy.absolute_lifetime
    session = await api_service.context.sessions.load(created["token"])
    assert session["theme"] == "dark"
    assert session.record is not None and session.record.client_ip == "2001:db8::1"
    assert session.record.public_id == created["id"]


async def test_create_api_kind_and_remember(make_api: MakeApi) -> None:
    remembering = Policy(remember_absolute_lifetime=30 * 86400)
    service = await make_api(library=Settings(policy=remembering))
    created = await create(service.admin, "bob", kind="api", remember=True)
    assert created["kind"] == "api"
    assert created["absolute_expires_at"] == service.clock() + 30 * 86400


async def test_remember_refused_when_the_policy_has_it_off(api_service: ApiService) -> None:
    response = await api_service.admin.post(
        "/v1/sessions", json={"user_id": "alice", "remember": True}
    )
    assert_problem(response, "validation-error", 422)
    assert "remember" in response.json()["detail"]


async def test_reserved_data_keys_are_refused(api_service: ApiService) -> None:
    response = await api_service.admin.post(
        "/v1/sessions", json={"user_id": "alice", "data": {"coatcheck.api_token": {}}}
    )
    assert_problem(response, "validation-error", 422)


async def test_introspect_a_live_session(api_service: ApiService) -> None:
    created = await create(api_service.admin, "alice")
    facts = await introspect(api_service, created["token"])
    assert set(facts) == SESSION_FIELDS
    assert facts["active"] is True and facts["token_type"] == "session"
    assert facts["id"] == created["id"]
    assert facts["sub"] == facts["user_id"] == "alice"
    assert facts["iat"] == int(created["created_at"]) and isinstance(facts["iat"], int)
    assert facts["exp"] == int(created["expires_at"]) and isinstance(facts["exp"], int)
    assert facts["authenticated_at"] == created["created_at"]


@pytest.mark.parametrize(
    "token",
    ["", "garbage", "cc2_" + "!" * 48, "cc1_short", "cc_" + "A" * 54, "x" * 1024],
    ids=["empty", "word", "bad-alphabet", "short", "api-bad-checksum", "long"],
)
async def test_introspect_malformed_is_inactive(api_service: ApiService, token: str) -> None:
    assert await introspect(api_service, token) == {"active": False}


async def test_introspect_unknown_expired_and_revoked_are_inactive(
    api_service: ApiService,
) -> None:
    assert await introspect(api_service, unknown_token()) == {"active": False}
    expiring = await create(api_service.admin, "alice")
    revoked = await create(api_service.admin, "alice")
    response = await api_service.admin.post("/v1/sessions/revoke", json={"token": revoked["token"]})
    assert response.json() == {"revoked": True}
    assert await introspect(api_service, revoked["token"]) == {"active": False}
    assert (await introspect(api_service, expiring["token"]))["active"] is True
    api_service.clock.advance(api_service.context.sessions.policy.idle_timeout)
    assert await introspect(api_service, expiring["token"]) == {"active": False}


async def test_an_anonymous_session_is_inactive(api_service: ApiService) -> None:
    token, _ = await api_service.context.sessions.create(None)
    assert await introspect(api_service, token) == {"active": False}


async def test_touch_slides_the_idle_deadline_like_a_request(api_service: ApiService) -> None:
    created = await create(api_service.admin, "alice")
    policy = api_service.context.sessions.policy
    api_service.clock.advance(policy.touch_interval + 1)
    looked = await introspect(api_service, created["token"])
    assert looked["expires_at"] == created["expires_at"]  # without touch: nothing written
    touched = await introspect(api_service, created["token"], touch=True)
    now = api_service.clock()
    assert touched["last_seen_at"] == now
    assert touched["expires_at"] == now + policy.idle_timeout
    # Past the first idle deadline the session lives on: the touch was written.
    api_service.clock.advance(policy.idle_timeout - policy.touch_interval)
    assert (await introspect(api_service, created["token"]))["active"] is True


async def test_refresh_writes_once_the_touch_interval_passed(api_service: ApiService) -> None:
    created = await create(api_service.admin, "alice")
    policy = api_service.context.sessions.policy
    refresh = api_service.introspector
    api_service.clock.advance(1)
    early = (await refresh.post("/v1/sessions/refresh", json={"token": created["token"]})).json()
    assert early == {
        "active": True,
        "id": created["id"],
        "expires_at": created["expires_at"],
        "absolute_expires_at": created["absolute_expires_at"],
    }
    api_service.clock.advance(policy.touch_interval)
    later = (await refresh.post("/v1/sessions/refresh", json={"token": created["token"]})).json()
    assert later["expires_at"] == api_service.clock() + policy.idle_timeout
    assert later["absolute_expires_at"] == created["absolute_expires_at"]
    for dead in (unknown_token(), "nonsense"):
        response = await refresh.post("/v1/sessions/refresh", json={"token": dead})
        assert response.json() == {"active": False}


async def test_revoke_is_true_once(api_service: ApiService) -> None:
    created = await create(api_service.admin, "alice")
    for expected in (True, False):
        response = await api_service.admin.post(
            "/v1/sessions/revoke", json={"token": created["token"]}
        )
        assert response.status_code == 200 and response.json() == {"revoked": expected}
    response = await api_service.admin.post("/v1/sessions/revoke", json={"token": "junk"})
    assert response.json() == {"revoked": False}


async def test_list_a_users_sessions_without_api_tokens(api_service: ApiService) -> None:
    admin = api_service.admin
    first = await create(admin, "carol", client_ip="192.0.2.7", user_agent="Firefox")
    api_service.clock.advance(1)  # listings are oldest first
    second = await create(admin, "carol", kind="api")
    await create(admin, "dave")
    await admin.post("/v1/tokens", json={"user_id": "carol", "name": "ci"})
    response = await admin.get("/v1/users/carol/sessions")
    assert response.status_code == 200
    sessions = response.json()["sessions"]
    assert [s["id"] for s in sessions] == [first["id"], second["id"]]
    assert all(set(s) == LISTED_FIELDS for s in sessions)
    assert sessions[0]["client_ip"] == "192.0.2.7" and sessions[0]["user_agent"] == "Firefox"
    assert (await admin.get("/v1/users/nobody/sessions")).json() == {"sessions": []}


async def test_user_ids_with_slashes_and_spaces(api_service: ApiService) -> None:
    created = await create(api_service.admin, "org/team member")
    response = await api_service.admin.get("/v1/users/org%2Fteam%20member/sessions")
    assert [s["id"] for s in response.json()["sessions"]] == [created["id"]]


async def test_revoke_all_of_a_user_but_one(api_service: ApiService) -> None:
    admin = api_service.admin
    kept, *others = [await create(admin, "erin") for _ in range(3)]
    token = (await admin.post("/v1/tokens", json={"user_id": "erin", "name": "ci"})).json()
    response = await admin.request(
        "DELETE", "/v1/users/erin/sessions", json={"except_token": kept["token"]}
    )
    assert response.json() == {"revoked": 2}
    assert (await introspect(api_service, kept["token"]))["active"] is True
    for other in others:
        assert await introspect(api_service, other["token"]) == {"active": False}
    assert (await introspect(api_service, token["token"]))["active"] is True
    response = await admin.request(
        "DELETE", "/v1/users/erin/sessions", json={"include_tokens": True}
    )
    assert response.json() == {"revoked": 2}
    assert await introspect(api_service, token["token"]) == {"active": False}
    assert await introspect(api_service, kept["token"]) == {"active": False}


async def test_revoke_all_without_a_body(api_service: ApiService) -> None:
    created = await create(api_service.admin, "frank")
    response = await api_service.admin.delete("/v1/users/frank/sessions")
    assert response.json() == {"revoked": 1}
    assert await introspect(api_service, created["token"]) == {"active": False}


async def test_revoke_by_public_id(api_service: ApiService) -> None:
    created = await create(api_service.admin, "gina")
    response = await api_service.admin.delete(f"/v1/sessions/{created['id'].upper()}")
    assert response.status_code == 200 and response.json() == {"revoked": True}
    assert await introspect(api_service, created["token"]) == {"active": False}
    assert_problem(
        await api_service.admin.delete(f"/v1/sessions/{created['id']}"), "not-found", 404
    )
    assert_problem(
        await api_service.admin.delete("/v1/sessions/not-an-id"), "invalid-session-id", 400
    )


async def test_each_delete_by_id_ends_only_its_own_kind(api_service: ApiService) -> None:
    """A session's id given to DELETE /v1/tokens, or an API token's id given to DELETE
    /v1/sessions, names nothing there: 404, and the record lives on."""
    admin = api_service.admin
    browser = await create(admin, "lena")
    api_kind = await create(admin, "lena", kind="api")  # an API session, not an API token
    token = (await admin.post("/v1/tokens", json={"user_id": "lena", "name": "ci"})).json()
    for session in (browser, api_kind):
        assert_problem(await admin.delete(f"/v1/tokens/{session['id']}"), "not-found", 404)
        assert (await introspect(api_service, session["token"]))["active"] is True
    assert_problem(await admin.delete(f"/v1/sessions/{token['id']}"), "not-found", 404)
    assert (await introspect(api_service, token["token"]))["active"] is True
    for path, record in (("sessions", browser), ("sessions", api_kind), ("tokens", token)):
        response = await admin.delete(f"/v1/{path}/{record['id']}")
        assert response.status_code == 200 and response.json() == {"revoked": True}
        assert await introspect(api_service, record["token"]) == {"active": False}


async def test_session_limit_refused_is_409(make_api: MakeApi) -> None:
    policy = Policy(max_sessions_per_user=1, on_limit="refuse")
    service = await make_api(library=Settings(policy=policy))
    await create(service.admin, "hal")
    response = await service.admin.post("/v1/sessions", json={"user_id": "hal"})
    assert_problem(response, "session-limit-reached", 409)


async def test_sealed_mode_is_refused(tmp_path: Any) -> None:
    settings = ServiceSettings(
        store_url=f"sqlite:///{tmp_path}/s.db", library=Settings(session_mode="sealed")
    )
    with pytest.raises(ConfigError, match="server-side only"):
        ServiceContext.build(settings)


# --- API tokens ----------------------------------------------------------------------------


async def test_api_tokens_create_list_introspect_revoke(api_service: ApiService) -> None:
    admin = api_service.admin
    response = await admin.post(
        "/v1/tokens",
        json={"user_id": "ivy", "name": "deploy bot", "scopes": ["repo:read"], "expires_in": 3600},
    )
    assert response.status_code == 201
    created = response.json()
    now = api_service.clock()
    assert set(created) == {"token", "id", "user_id", "name", "scopes", "created_at", "expires_at"}
    assert created["token"].startswith("cc_") and created["scopes"] == ["repo:read"]
    assert created["expires_at"] == now + 3600
    listed = (await admin.get("/v1/users/ivy/tokens")).json()["tokens"]
    assert [t["id"] for t in listed] == [created["id"]]
    assert "token" not in listed[0] and listed[0]["last_used_at"] is None
    facts = await introspect(api_service, created["token"])
    assert facts == {
        "active": True,
        "token_type": "api_token",
        "id": created["id"],
        "sub": "ivy",
        "user_id": "ivy",
        "kind": "api",
        "iat": int(now),
        "exp": int(now + 3600),
        "created_at": now,
        "expires_at": now + 3600,
        "authenticated_at": None,
        "last_seen_at": now,
        "scope": "repo:read",
        "name": "deploy bot",
    }
    refreshed = await api_service.introspector.post(
        "/v1/sessions/refresh", json={"token": created["token"]}
    )
    assert refreshed.json()["active"] is True
    response = await admin.delete(f"/v1/tokens/{created['id']}")
    assert response.json() == {"revoked": True}
    assert await introspect(api_service, created["token"]) == {"active": False}
    assert_problem(await admin.delete(f"/v1/tokens/{created['id']}"), "not-found", 404)
    assert_problem(await admin.delete("/v1/tokens/xyz"), "invalid-session-id", 400)
    assert (await admin.get("/v1/users/ivy/tokens")).json() == {"tokens": []}


async def test_an_api_token_expires_on_its_own_clock(api_service: ApiService) -> None:
    response = await api_service.admin.post(
        "/v1/tokens", json={"user_id": "jo", "name": "short", "expires_in": 60}
    )
    token = response.json()["token"]
    forever = (
        await api_service.admin.post("/v1/tokens", json={"user_id": "jo", "name": "forever"})
    ).json()
    assert forever["expires_at"] is None
    api_service.clock.advance(61)
    assert await introspect(api_service, token) == {"active": False}
    facts = await introspect(api_service, forever["token"])
    assert facts["active"] is True and "exp" not in facts and facts["expires_at"] is None


async def test_revoke_an_api_token_by_its_text(api_service: ApiService) -> None:
    token = (
        await api_service.admin.post("/v1/tokens", json={"user_id": "kim", "name": "x"})
    ).json()["token"]
    response = await api_service.admin.post("/v1/sessions/revoke", json={"token": token})
    assert response.json() == {"revoked": True}
    assert await introspect(api_service, token) == {"active": False}


@pytest.mark.parametrize(
    "body",
    [
        {"user_id": "kim", "name": ""},
        {"user_id": "kim", "name": "x", "scopes": ["UPPER"]},
        {"user_id": "kim", "name": "x", "scopes": "repo"},
        {"user_id": "kim", "name": "x", "expires_in": 0},
        {"user_id": "kim", "name": "x", "expires_in": 1.5},
        {"user_id": "kim", "name": "tab\there"},
        {"user_id": "", "name": "x"},
    ],
)
async def test_bad_token_requests_are_422(api_service: ApiService, body: Any) -> None:
    assert_problem(await api_service.admin.post("/v1/tokens", json=body), "validation-error", 422)


# --- problems and keys ---------------------------------------------------------------------


def assert_problem(response: httpx.Response, slug: str, status: int) -> Any:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == f"urn:coatcheck:problem:{slug}"
    assert body["status"] == status
    assert body["title"] and body["detail"]
    return body


ADMIN_CALLS = [
    ("POST", "/v1/sessions", {"user_id": "a"}),
    ("POST", "/v1/sessions/revoke", {"token": "x"}),
    ("GET", "/v1/users/a/sessions", None),
    ("DELETE", "/v1/users/a/sessions", None),
    ("DELETE", "/v1/sessions/0000000000000000", None),
    ("POST", "/v1/tokens", {"user_id": "a", "name": "n"}),
    ("GET", "/v1/users/a/tokens", None),
    ("DELETE", "/v1/tokens/0000000000000000", None),
]
INTROSPECT_CALLS = [
    ("POST", "/v1/sessions/introspect", {"token": "x"}),
    ("POST", "/v1/sessions/refresh", {"token": "x"}),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_CALLS + INTROSPECT_CALLS)
async def test_no_wrong_or_revoked_key_is_401_alike(
    api_service: ApiService, method: str, path: str, body: Any
) -> None:
    revoked, _ = await api_service.context.service_keys.create("gone", "admin")
    assert await api_service.context.service_keys.revoke("gone")
    wrong = "cck_" + secrets.token_urlsafe(32)
    answers = []
    for client in (
        api_service.client(anonymous=True),
        api_service.client(wrong),
        api_service.client(revoked),
        api_service.client("not even a key"),
    ):
        response = await client.request(method, path, json=body)
        problem = assert_problem(response, "unauthorized", 401)
        assert response.headers["www-authenticate"] == "Bearer"
        answers.append(problem)
    assert all(answer == answers[0] for answer in answers)
    assert set(answers[0]) == {"type", "title", "status", "detail"}


async def test_basic_auth_is_not_a_service_key(api_service: ApiService) -> None:
    client = api_service.client(anonymous=True)
    response = await client.get("/v1/users/a/sessions", auth=("admin", api_service.admin_key))
    assert_problem(response, "unauthorized", 401)


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_CALLS)
async def test_an_introspect_key_may_not_administer(
    api_service: ApiService, method: str, path: str, body: Any
) -> None:
    response = await api_service.introspector.request(method, path, json=body)
    assert_problem(response, "forbidden", 403)


async def test_401_comes_before_any_look_at_the_body(api_service: ApiService) -> None:
    client = api_service.client(anonymous=True)
    response = await client.post(
        "/v1/sessions", content=b"{not json", headers={"content-type": "text/plain"}
    )
    assert_problem(response, "unauthorized", 401)


async def test_validation_errors_name_the_field_without_echoing_it(
    api_service: ApiService,
) -> None:
    admin = api_service.admin
    secret = unknown_token()
    response = await admin.post("/v1/sessions/introspect", json={"token": secret, "extra": secret})
    body = assert_problem(response, "validation-error", 422)
    assert body["errors"] == [
        {
            "loc": ["body", "extra"],
            "msg": "Extra inputs are not permitted",
            "type": "extra_forbidden",
        }
    ]
    assert secret not in response.text
    for wrong in ({"token": 5}, {"token": "x", "touch": "yes"}, {"token": ["x"]}, [], "x", 1):
        assert_problem(
            await admin.post("/v1/sessions/introspect", json=wrong), "validation-error", 422
        )
    for bad in (
        {"user_id": "a" * 257},
        {"user_id": "a", "kind": "robot"},
        {"user_id": "a", "client_ip": "nowhere"},
    ):
        assert_problem(await admin.post("/v1/sessions", json=bad), "validation-error", 422)
    assert_problem(await admin.get(f"/v1/users/{'u' * 257}/sessions"), "validation-error", 422)


@pytest.mark.parametrize(
    "raw", [b"{", b"", b"{'token': 'x'}", b'{"token": NaN}', b"\xff\xfe", b"[" * 100_00]
)
async def test_invalid_json_is_400(api_service: ApiService, raw: bytes) -> None:
    response = await api_service.introspector.post(
        "/v1/sessions/introspect", content=raw, headers={"content-type": "application/json"}
    )
    assert_problem(response, "invalid-json", 400)


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
async def test_a_body_that_is_not_json_is_415(
    api_service: ApiService, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    for path in ("/v1/sessions/introspect", "/v1/users/a/sessions"):
        method = "POST" if path.endswith("introspect") else "DELETE"
        response = await api_service.admin.request(
            method, path, content=b'{"token": "x"}', headers=headers
        )
        assert_problem(response, "unsupported-media-type", 415)


async def test_json_with_a_charset_is_json(api_service: ApiService) -> None:
    response = await api_service.introspector.post(
        "/v1/sessions/introspect",
        content=b'{"token": "x"}',
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert response.json() == {"active": False}


async def test_an_oversized_body_is_413(make_api: MakeApi) -> None:
    service = await make_api(max_body_bytes=1000)
    big = {"user_id": "a", "data": {"blob": "x" * 2000}}
    response = await service.admin.post("/v1/sessions", json=big)
    assert_problem(response, "body-too-large", 413)

    async def chunks() -> Any:  # no Content-Length: counted as it arrives
        for _ in range(10):
            yield b" " * 200

    response = await service.admin.post(
        "/v1/sessions", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert_problem(response, "body-too-large", 413)
    small = await service.admin.post("/v1/sessions", json={"user_id": "a"})
    assert small.status_code == 201


async def test_unknown_paths_and_methods(api_service: ApiService) -> None:
    admin = api_service.admin
    assert_problem(await admin.get("/v1/nothing"), "not-found", 404)
    assert_problem(await admin.get("/v1"), "not-found", 404)
    response = await admin.get("/v1/sessions")
    assert_problem(response, "method-not-allowed", 405)
    assert "POST" in response.headers["allow"]
    assert_problem(await admin.put("/v1/sessions/introspect"), "method-not-allowed", 405)


# --- operations ----------------------------------------------------------------------------


async def test_metrics_count_what_happened(api_service: ApiService) -> None:
    created = await create(api_service.admin, "lee")
    await introspect(api_service, created["token"])
    await introspect(api_service, unknown_token())
    await introspect(api_service, "junk")
    await api_service.client(anonymous=True).post("/v1/sessions", json={})
    response = await api_service.client(anonymous=True).get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    for line in (
        "coatcheck_sessions_created_total 1.0",
        'coatcheck_validations_total{result="valid"} 1.0',
        'coatcheck_validations_total{result="unknown"} 1.0',
        'coatcheck_validations_total{result="malformed"} 1.0',
        'coatcheck_rejections_total{reason="unauthorized"} 1.0',
    ):
        assert line in text.splitlines(), line
    assert 'coatcheck_store_latency_seconds_count{operation="insert"} 1.0' in text
    assert 'coatcheck_store_latency_seconds_count{operation="load"}' in text


async def test_healthz_and_openapi_need_no_key(api_service: ApiService) -> None:
    client = api_service.client(anonymous=True)
    response = await client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    document = (await client.get("/openapi.json")).json()
    assert document["components"]["securitySchemes"]["ServiceKey"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "cck_...",
        "description": document["components"]["securitySchemes"]["ServiceKey"]["description"],
    }


async def test_openapi_describes_every_api_route_and_no_page(api_service: ApiService) -> None:
    document = (await api_service.admin.get("/openapi.json")).json()
    operations = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    expected = {(m, p.replace("/a/", "/{user_id}/")) for m, p, _ in ADMIN_CALLS + INTROSPECT_CALLS}
    expected = {
        (m, p.replace("0000000000000000", "{public_id}" if "sessions" in p else "{token_id}"))
        for m, p in expected
    }
    assert operations == expected | {
        ("GET", "/v1/events"),
        ("GET", "/healthz"),
        ("GET", "/metrics"),
    }
    assert not any(path.startswith(("/login", "/account", "/logout")) for path in document["paths"])
    schemas = document["components"]["schemas"]
    for name in ("CreateSession", "Introspect", "ProblemDetails", "Introspection"):
        assert name in schemas
    assert schemas["Introspect"]["additionalProperties"] is False
    introspect_op = document["paths"]["/v1/sessions/introspect"]["post"]
    assert introspect_op["security"] == [{"ServiceKey": []}]
    assert set(introspect_op["responses"]["401"]["content"]) == {"application/problem+json"}
    create_op = document["paths"]["/v1/sessions"]["post"]
    assert "403" in create_op["responses"] and "409" in create_op["responses"]
