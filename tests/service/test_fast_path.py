"""The introspection fast path (``coatcheck.service.api.fast_path``): whatever it answers is
what FastAPI's own route answers for the same request (status, every header, body, and what
the metrics count), it answers without FastAPI's middleware stack, and every other request
still goes to FastAPI.

Each case is sent twice over one service context: to the app as ``create_app`` builds it and
to the same service with its fast path off (``fast_path = None``: FastAPI's stack, router and
LeanRoute answer). Starlette builds an app's middleware stack on the first request that
reaches it, so a fast app whose ``middleware_stack`` is still None has answered from the fast
path alone."""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from coatcheck.service.api import sessions
from coatcheck.service.app import create_app
from coatcheck.service.context import ServiceContext
from coatcheck.service.settings import ServiceSettings

from .conftest import BASE_URL, ApiService

pytestmark = pytest.mark.anyio

MakeApi = Callable[..., Awaitable[ApiService]]
INTROSPECT = "/v1/sessions/introspect"
REFRESH = "/v1/sessions/refresh"
Chunks = Callable[[], AsyncIterator[bytes]]


@dataclass(frozen=True)
class Call:
    """One request: ``key`` None sends no Authorization header; ``body`` bytes, or a function
    making the chunks of a body sent without Content-Length."""

    key: str | None
    body: bytes | Chunks | None = b"{}"
    path: str = INTROSPECT
    method: str = "POST"
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    counted: dict[str, float]
    """What the service's counters and store-call counts gained while answering."""


def counts(ctx: ServiceContext) -> dict[str, float]:
    """Every counter and histogram count of the service's metrics, by sample and labels."""
    found: dict[str, float] = {}
    for metric in ctx.metrics.registry.collect():
        for sample in metric.samples:
            if sample.name.endswith(("_total", "_count")):
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                found[f"{sample.name}{{{labels}}}"] = sample.value
    return found


def gained(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v != before.get(k, 0.0)}


async def ask(app: Any, ctx: ServiceContext, call: Call, *, raise_errors: bool = False) -> Answer:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_errors)
    headers = dict(call.headers)
    if call.key is not None:
        headers["authorization"] = f"Bearer {call.key}"
    if call.content_type is not None:
        headers["content-type"] = call.content_type
    content = call.body() if callable(call.body) else call.body
    before = counts(ctx)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        response = await client.request(call.method, call.path, content=content, headers=headers)
    return Answer(
        response.status_code,
        response.headers.multi_items(),
        response.content,
        gained(before, counts(ctx)),
    )


@dataclass
class Pair:
    """The service twice over one context: ``fast`` as ``create_app`` builds it, ``plain``
    with its fast path off."""

    service: ApiService
    fast: Any
    plain: Any

    @classmethod
    def of(cls, service: ApiService) -> Pair:
        ctx = service.context
        plain = create_app(ctx.settings, context=ctx)
        plain.fast_path = None
        return cls(service, create_app(ctx.settings, context=ctx), plain)

    async def same(self, call: Call, *, fast: bool = True) -> Answer:
        """The call's answer, identical from both; ``fast``: the fast app answered it from
        its fast path (else FastAPI did). A first call to ``plain`` leaves whatever state the
        call leaves (a remembered key, a cached answer, a recorded last use), so that both
        compared calls find the same."""
        ctx = self.service.context
        await ask(self.plain, ctx, call)
        from_fast = await ask(self.fast, ctx, call)
        assert (self.fast.middleware_stack is None) is fast, "answered by the wrong path"
        from_plain = await ask(self.plain, ctx, call)
        assert from_fast == from_plain
        return from_fast


def body_of(token: str) -> bytes:
    return b'{"token": "%s"}' % token.encode()


async def new_session(service: ApiService, user: str = "ann") -> str:
    created = await service.admin.post("/v1/sessions", json={"user_id": user})
    assert created.status_code == 201, created.text
    token: str = created.json()["token"]
    return token


async def test_the_fast_path_serves_the_lean_routes_with_their_own_endpoints(
    api_service: ApiService,
) -> None:
    fast_path = api_service.app.fast_path
    assert fast_path is not None
    assert fast_path.endpoints == {INTROSPECT: sessions.introspect, REFRESH: sessions.refresh}


@pytest.mark.parametrize("cache", [0, 30])
async def test_live_inactive_and_malformed_tokens(make_api: MakeApi, cache: int) -> None:
    service = await make_api(introspection_cache=cache)
    if service.context.introspection_cache is not None:
        service.context.introspection_cache.cache.connected()  # serve from it (no follower)
    pair = Pair.of(service)
    token = await new_session(service)
    api_token = (
        await service.admin.post("/v1/tokens", json={"user_id": "ann", "name": "ci"})
    ).json()["token"]
    key = service.introspect_key
    for path in (INTROSPECT, REFRESH):
        live = await pair.same(Call(key, body_of(token), path))
        assert live.status == 200 and b'"active":true' in live.body
        assert ("cache-control", "no-store") in live.headers
        assert live.counted["coatcheck_validations_total{result=valid}"] == 1
        answer = await pair.same(Call(key, body_of(api_token), path))
        assert b'"active":true' in answer.body
        unknown = "cc2_" + secrets.token_urlsafe(36)
        for garbage, result in ((unknown, "unknown"), ("junk", "malformed")):
            inactive = await pair.same(Call(key, body_of(garbage), path))
            assert (inactive.status, inactive.body) == (200, b'{"active":false}')
            assert inactive.counted[f"coatcheck_validations_total{{result={result}}}"] == 1


async def test_a_body_sent_in_chunks(api_service: ApiService) -> None:
    pair = Pair.of(api_service)
    token = await new_session(api_service)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length; an empty chunk inside
        body = body_of(token)
        for piece in (body[:5], b"", body[5:20], body[20:]):
            yield piece

    answer = await pair.same(Call(api_service.introspect_key, chunks))
    assert answer.status == 200 and b'"active":true' in answer.body


async def test_bad_keys_are_401(api_service: ApiService) -> None:
    ctx = api_service.context
    revoked, _ = await ctx.service_keys.create("gone", "admin")
    pair = Pair.of(api_service)
    token = await new_session(api_service)
    await pair.same(Call(revoked, body_of(token)))  # remembered while it was live
    assert await ctx.service_keys.revoke("gone")
    pair = Pair.of(api_service)  # new processes: the revoked key is not remembered
    for call in (
        Call(None, body_of(token)),
        Call("cck_" + secrets.token_urlsafe(32), body_of(token)),
        Call(revoked, body_of(token)),
        Call(None, body_of(token), headers={"authorization": f"Basic {api_service.admin_key}"}),
        Call("", body_of(token), REFRESH),
    ):
        answer = await pair.same(call)
        assert answer.status == 401
        assert ("www-authenticate", "Bearer") in answer.headers
        assert answer.counted == {"coatcheck_rejections_total{reason=unauthorized}": 1}


@pytest.mark.parametrize(
    ("content_type", "body", "status", "slug"),
    [
        ("text/plain", b'{"token": "x"}', 415, "unsupported-media-type"),
        (None, b'{"token": "x"}', 415, "unsupported-media-type"),
        ("application/json", b'{"token": ', 400, "invalid-json"),
        ("application/json", b'{"token": NaN}', 400, "invalid-json"),
        ("application/json", b"\xff\xfe{}", 400, "invalid-json"),
        ("application/json", b'{"token": "x", "extra": 1}', 422, "validation-error"),
        ("application/json", b'{"token": 5}', 422, "validation-error"),
        ("application/json", b'{"token": "x", "touch": "yes"}', 422, "validation-error"),
        ("application/json", b"[]", 422, "validation-error"),
        ("application/json", b"", 400, "invalid-json"),
    ],
)
async def test_refused_bodies(
    api_service: ApiService, content_type: str | None, body: bytes, status: int, slug: str
) -> None:
    pair = Pair.of(api_service)
    for path in (INTROSPECT, REFRESH):
        call = Call(api_service.introspect_key, body, path, content_type=content_type)
        answer = await pair.same(call)
        assert answer.status == status
        assert ("content-type", "application/problem+json") in answer.headers
        assert f'"urn:coatcheck:problem:{slug}"'.encode() in answer.body
        assert answer.counted == {f"coatcheck_rejections_total{{reason={slug}}}": 1}


async def test_oversized_bodies_are_413_declared_or_streamed(make_api: MakeApi) -> None:
    service = await make_api(max_body_bytes=100)
    pair = Pair.of(service)
    key = service.introspect_key

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"token": "'
        for _ in range(10):
            yield b"x" * 20

    big = body_of("x" * 200)
    for call in (Call(key, big), Call(key, chunks), Call(key, big, REFRESH)):
        answer = await pair.same(call)
        assert answer.status == 413
        assert b"urn:coatcheck:problem:body-too-large" in answer.body
        assert answer.counted == {"coatcheck_rejections_total{reason=body-too-large}": 1}
    declared = await pair.same(Call(key, big))
    assert ("connection", "close") in declared.headers  # refused before the body was read
    unkeyed = await pair.same(Call(None, chunks))  # the key is checked before the body is read
    assert unkeyed.status == 401
    fits = await pair.same(Call(key, body_of("junk")))
    assert fits.status == 200


async def test_store_down_is_503(make_api: MakeApi, redis_instance: Any) -> None:
    server = redis_instance()
    service = await make_api(f"redis://{server.address}/0")
    pair = Pair.of(service)
    token = await new_session(service)
    await pair.same(Call(service.introspect_key, body_of(token)))  # both keys remembered
    server.stop()
    for path in (INTROSPECT, REFRESH):
        answer = await pair.same(Call(service.introspect_key, body_of(token), path))
        assert answer.status == 503
        assert ("retry-after", "5") in answer.headers
        assert answer.counted["coatcheck_rejections_total{reason=store-unavailable}"] == 1


async def test_an_unexpected_failure_is_the_apps_500_problem(api_service: ApiService) -> None:
    pair = Pair.of(api_service)
    token = await new_session(api_service)
    database = api_service.context.settings.store_url.removeprefix("sqlite:///")
    with sqlite3.connect(database) as conn:  # a row no code wrote: reading it fails
        conn.execute("UPDATE coatcheck_sessions SET created_at = 'garbage'")
    call = Call(api_service.introspect_key, body_of(token))
    answer = await pair.same(call)
    assert answer.status == 500
    assert b"urn:coatcheck:problem:internal-error" in answer.body
    assert answer.counted["coatcheck_rejections_total{reason=internal-error}"] == 1
    raised = []  # and the exception goes on to the server, which logs it
    for app in (pair.fast, pair.plain):
        with pytest.raises(TypeError, match="concatenate") as caught:
            await ask(app, api_service.context, call, raise_errors=True)
        raised.append(type(caught.value))
    assert raised[0] is raised[1]


@pytest.mark.parametrize(
    "call",
    [
        Call(None, None, INTROSPECT, "GET", None),
        Call(None, b"{}", INTROSPECT, "PUT"),
        Call(None, b"{}", INTROSPECT + "/"),
        Call(None, b"{}", "/v1/sessions/introspect-not"),
        Call(None, b'{"user_id": "a"}', "/v1/sessions"),
        Call(None, None, "/openapi.json", "GET", None),
        Call(None, None, "/healthz", "GET", None),
        Call(None, None, "/no-such-page", "GET", None),
    ],
)
async def test_everything_else_goes_to_fastapi(api_service: ApiService, call: Call) -> None:
    pair = Pair.of(api_service)
    keyed = Call(api_service.introspect_key, call.body, call.path, call.method, call.content_type)
    await pair.same(keyed, fast=False)
    await pair.same(call, fast=False)


async def test_a_request_under_a_root_path_goes_to_fastapi(api_service: ApiService) -> None:
    pair = Pair.of(api_service)
    token = await new_session(api_service)
    answers = []
    for app in (pair.fast, pair.plain):
        transport = httpx.ASGITransport(app=app, root_path="/svc")
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            response = await client.post(
                "/svc" + INTROSPECT,
                content=body_of(token),
                headers={
                    "authorization": f"Bearer {api_service.introspect_key}",
                    "content-type": "application/json",
                },
            )
        answers.append((response.status_code, response.headers.multi_items(), response.content))
    assert pair.fast.middleware_stack is not None
    assert answers[0] == answers[1]


async def test_websockets_go_to_fastapi(api_service: ApiService) -> None:
    pair = Pair.of(api_service)
    sent: list[list[dict[str, Any]]] = []
    for app in (pair.fast, pair.plain):
        messages: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "websocket.connect"}

        async def send(message: dict[str, Any], into: list[Any] = messages) -> None:
            into.append(message)

        scope = {
            "type": "websocket",
            "asgi": {"version": "3.0"},
            "path": INTROSPECT,
            "raw_path": INTROSPECT.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [],
            "scheme": "ws",
            "server": ("service.test", 80),
            "subprotocols": [],
        }
        await app(scope, receive, send)
        sent.append(messages)
    assert sent[0] == sent[1]
    assert sent[0][0]["type"] == "websocket.close"
    assert pair.fast.middleware_stack is not None


async def test_the_lifespan_goes_to_fastapi(tmp_path: Any) -> None:
    settings = ServiceSettings(store_url="memory://", data_dir=tmp_path, introspection_cache=30)
    context = ServiceContext.build(settings)
    app = create_app(settings, context=context)
    cache = context.introspection_cache
    assert cache is not None
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: list[str] = []
    started = asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        outbox.append(message["type"])
        started.set()

    running = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, send)
    )
    await inbox.put({"type": "lifespan.startup"})
    await started.wait()
    assert outbox == ["lifespan.startup.complete"] and cache.running
    await inbox.put({"type": "lifespan.shutdown"})
    await running
    assert outbox == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert not cache.running


async def test_metrics_count_fast_path_calls(api_service: ApiService) -> None:
    token = await new_session(api_service)
    client = api_service.introspector
    for body in (body_of(token), body_of("junk"), b"{"):
        await client.post(INTROSPECT, content=body, headers={"content-type": "application/json"})
    await api_service.client(anonymous=True).post(REFRESH, json={"token": token})
    text = (await api_service.client(anonymous=True).get("/metrics")).text.splitlines()
    for line in (
        'coatcheck_validations_total{result="valid"} 1.0',
        'coatcheck_validations_total{result="malformed"} 1.0',
        'coatcheck_rejections_total{reason="invalid-json"} 1.0',
        'coatcheck_rejections_total{reason="unauthorized"} 1.0',
        'coatcheck_store_latency_seconds_count{operation="load"} 1.0',
    ):
        assert line in text, line


async def test_a_fresh_app_answers_introspection_without_building_fastapis_stack(
    api_service: ApiService,
) -> None:
    ctx = api_service.context
    token = await new_session(api_service)
    app = create_app(ctx.settings, context=ctx)
    answer = await ask(app, ctx, Call(api_service.introspect_key, body_of(token)))
    assert answer.status == 200 and b'"active":true' in answer.body
    assert app.middleware_stack is None
    assert (await ask(app, ctx, Call(None, None, "/healthz", "GET", None))).status == 200
    assert app.middleware_stack is not None


async def test_handlers_the_app_gains_later_answer_on_the_fast_path_too(
    api_service: ApiService,
) -> None:
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse

    async def by_status(request: Request, exc: Exception) -> PlainTextResponse:
        return PlainTextResponse("a 401 of its own", status_code=401)

    pair = Pair.of(api_service)
    for app in (pair.fast, pair.plain):
        app.add_exception_handler(401, by_status)
    answer = await pair.same(Call(None, b"{}"))
    assert (answer.status, answer.body) == (401, b"a 401 of its own")
