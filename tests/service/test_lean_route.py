"""The introspection routes served as LeanRoutes: answers of the documented shapes (the same
bytes FastAPI's JSONResponse would send), bodies read in one pass where that cannot change an
answer, and a LeanRoute that refuses an endpoint whose parameters or dependencies would not
run."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from coatcheck.service.api.headers import header
from coatcheck.service.api.lean import LeanRoute
from coatcheck.service.api.models import Introspection, Refreshed
from coatcheck.service.api.replies import encode, json_reply, reply

from .conftest import ApiService

pytestmark = pytest.mark.anyio

MakeApi = Callable[..., Awaitable[ApiService]]
INTROSPECT = "/v1/sessions/introspect"
REFRESH = "/v1/sessions/refresh"


def assert_documented(response: httpx.Response, model: type[Introspection | Refreshed]) -> Any:
    """A 200 of the documented model, byte for byte what ``JSONResponse`` makes of it."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    model.model_validate_json(response.content)
    body = response.json()
    assert response.content == JSONResponse(body).body
    return body


@pytest.mark.parametrize("cache", [0, 30])
async def test_answers_have_the_documented_shape(make_api: MakeApi, cache: int) -> None:
    service = await make_api(introspection_cache=cache)
    if service.context.introspection_cache is not None:
        service.context.introspection_cache.cache.connected()  # serve from it (no follower)
    admin, client = service.admin, service.introspector
    session = (await admin.post("/v1/sessions", json={"user_id": "ann"})).json()
    token = (await admin.post("/v1/tokens", json={"user_id": "ann", "name": "ci"})).json()
    for _ in range(2):  # with the cache on: a miss, then a hit
        facts = assert_documented(
            await client.post(INTROSPECT, json={"token": session["token"]}), Introspection
        )
        assert facts["active"] is True and facts["id"] == session["id"]
        assert facts["sub"] == facts["user_id"] == "ann"
        facts = assert_documented(
            await client.post(INTROSPECT, json={"token": token["token"]}), Introspection
        )
        assert facts["token_type"] == "api_token" and facts["name"] == "ci"
    inactive = await client.post(INTROSPECT, json={"token": "cc2_" + "A" * 48})
    assert assert_documented(inactive, Introspection) == {"active": False}
    refreshed = await client.post(REFRESH, json={"token": session["token"]})
    assert assert_documented(refreshed, Refreshed)["id"] == session["id"]


async def test_bodies_read_in_one_pass_are_read_as_before(api_service: ApiService) -> None:
    client = api_service.introspector
    created = (await api_service.admin.post("/v1/sessions", json={"user_id": "bo"})).json()
    token = created["token"]
    for raw in (
        b"\xef\xbb\xbf" + json.dumps({"token": token}).encode(),  # a UTF-8 byte order mark
        json.dumps({"token": token}).encode("utf-16"),
        b'{"token": "junk", "token": "%s"}' % token.encode(),  # the last one counts
    ):
        response = await client.post(
            INTROSPECT, content=raw, headers={"content-type": "application/json"}
        )
        assert response.status_code == 200, response.text
        assert response.json()["id"] == created["id"]
    # A number where the model takes any JSON value: NaN is still not JSON.
    response = await api_service.admin.post(
        "/v1/sessions",
        content=b'{"user_id": "bo", "data": {"x": NaN}}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["type"] == "urn:coatcheck:problem:invalid-json"


def test_a_lean_route_refuses_what_it_would_not_run() -> None:
    async def takes_more(request: Request, token: str) -> Response:
        return Response()

    async def fine(request: Request) -> Response:
        return Response()

    def sync(request: Request) -> Response:
        return Response()

    for router, endpoint in (
        (APIRouter(route_class=LeanRoute), takes_more),
        (APIRouter(route_class=LeanRoute), sync),
        (APIRouter(route_class=LeanRoute, dependencies=[Depends(lambda: None)]), fine),
    ):
        with pytest.raises(TypeError, match="LeanRoute"):
            router.add_api_route("/x", endpoint, methods=["POST"])
    APIRouter(route_class=LeanRoute).add_api_route("/x", fine, methods=["POST"])


@pytest.mark.parametrize("content", [{"active": False}, {"active": True, "sub": "é€", "n": 1.5}])
def test_an_encoded_answer_is_what_reply_sends(content: dict[str, Any]) -> None:
    encoded, replied = json_reply(encode(content)), reply(content)
    assert encoded.status_code == replied.status_code == 200
    assert encoded.raw_headers == replied.raw_headers  # the same headers in the same order
    assert encoded.body == replied.body


def test_a_header_read_from_the_scope_is_what_request_headers_give() -> None:
    raw = [
        (b"content-type", b"application/json; charset=caf\xe9"),
        (b"authorization", b"Bearer first"),
        (b"authorization", b"Bearer second"),
        (b"x-empty", b""),
    ]
    request = Request({"type": "http", "headers": raw})
    for name in ("content-type", "authorization", "x-empty", "absent"):
        assert header(request, name.encode()) == request.headers.get(name)
