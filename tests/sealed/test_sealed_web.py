"""Sealed mode behind the unchanged web layer: the ASGI middleware with a tiny Starlette app and
the WSGI middleware with a plain WSGI app. Only the manager differs from server mode."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs
from wsgiref.handlers import SimpleHandler
from wsgiref.util import setup_testing_defaults

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from coatcheck import FakeClock, Policy, open_async_store, open_store
from coatcheck._async.web.handler import AsyncRequestSession
from coatcheck.sealed import AsyncSealedSessionManager, SealedSessionManager, generate_key
from coatcheck.sealed.codec import PREFIX
from coatcheck.web import asgi, wsgi
from coatcheck.web.errors import WebError
from coatcheck.web.guards import require_login
from coatcheck.web.settings import WebSettings

BASE = "https://testserver"
COOKIE = "__Host-session"
KEYS = [generate_key()]
SETTINGS = WebSettings.build(exempt_paths=["/static"])
USERS = {"alice": "alice-password"}


# --- a tiny Starlette app that knows nothing about sealed mode -------------------------------


async def state_of(request: Request) -> AsyncRequestSession:
    state: AsyncRequestSession = request.scope[asgi.SCOPE_KEY]
    return await state.load()


async def csrf_page(request: Request) -> Response:
    return JSONResponse({"csrf_token": (await state_of(request)).csrf_token()})


async def login(request: Request) -> Response:
    state = await state_of(request)
    form = await request.form()
    user = str(form.get("username"))
    if USERS.get(user) != form.get("password"):
        return JSONResponse({"error": "bad_credentials"}, status_code=401)
    await state.login(user, carry=("cart",))
    return JSONResponse({"user": user})


async def me(request: Request) -> Response:
    state = await state_of(request)
    decision = require_login(
        state.request, SETTINGS, user_id=state.user_id, expired_reason=state.expired_reason
    )
    if isinstance(decision, WebError):
        body = {"error": decision.code, "reason": state.expired_reason}
        return JSONResponse(body, status_code=decision.status)
    return JSONResponse({"user": state.user_id, "cart": state.get("cart")})


async def note(request: Request) -> Response:
    state = await state_of(request)
    state["note"] = str((await request.form()).get("note"))
    state.flash("saved")
    return JSONResponse({"ok": True})


async def flashes(request: Request) -> Response:
    return JSONResponse({"flashes": (await state_of(request)).pop_flashes()})


async def counter(request: Request) -> Response:
    state = await state_of(request)
    state["count"] = state.get("count", 0) + 1
    return JSONResponse({"count": state["count"]})


async def cart(request: Request) -> Response:
    (await state_of(request))["cart"] = ["apple"]
    return JSONResponse({"ok": True})


async def blob(request: Request) -> Response:
    (await state_of(request))["blob"] = "x" * int(request.query_params["n"])
    return JSONResponse({"ok": True})


async def logout(request: Request) -> Response:
    await (await state_of(request)).logout()
    return JSONResponse({"ok": True})


async def logout_others(request: Request) -> Response:
    await (await state_of(request)).logout_other_sessions()
    return JSONResponse({"ok": True})


async def hello(request: Request) -> Response:
    return PlainTextResponse("hello")


ROUTES = [
    Route("/csrf", csrf_page),
    Route("/login", login, methods=["POST"]),
    Route("/me", me),
    Route("/note", note, methods=["POST"]),
    Route("/flashes", flashes),
    Route("/counter", counter),
    Route("/cart", cart, methods=["POST"]),
    Route("/blob", blob, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/logout-others", logout_others, methods=["POST"]),
    Route("/static/hello.txt", hello),
]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def asgi_app(clock: FakeClock, store_url: str | None = None) -> asgi.SessionMiddleware:
    store = open_async_store(store_url) if store_url else None
    manager = AsyncSealedSessionManager(KEYS, Policy(), store=store, clock=clock)
    return asgi.SessionMiddleware(Starlette(routes=ROUTES), manager, SETTINGS)


@pytest.fixture
def app(clock: FakeClock) -> asgi.SessionMiddleware:
    return asgi_app(clock)


@pytest.fixture
def client(app: asgi.SessionMiddleware) -> Iterator[TestClient]:
    with TestClient(app, base_url=BASE) as c:
        yield c


def set_cookie(response: httpx.Response) -> str | None:
    return response.headers.get("set-cookie")


def sealed_value(response: httpx.Response) -> str:
    header = set_cookie(response)
    assert header and header.startswith(f"{COOKIE}={PREFIX}"), header
    return header.split(";", 1)[0].split("=", 1)[1]


def csrf(client: TestClient) -> str:
    return str(client.get("/csrf").json()["csrf_token"])


def log_in(client: TestClient) -> httpx.Response:
    form = {"username": "alice", "password": "alice-password", "csrf_token": csrf(client)}
    response = client.post("/login", data=form)
    assert response.status_code == 200, response.text
    return response


def replay(app: Any, value: str, path: str = "/me") -> httpx.Response:
    """A request from a different browser that copied the cookie value (sent as raw bytes)."""
    with TestClient(app, base_url=BASE) as other:
        return other.get(path, headers={"cookie": f"{COOKIE}={value}".encode("latin-1")})


# --- the flows ---------------------------------------------------------------------------------


def test_login_flash_csrf_and_logout_work_unchanged(
    client: TestClient, app: asgi.SessionMiddleware
) -> None:
    first = client.get("/csrf")
    pre_login = sealed_value(first)
    client.post("/cart", headers={"x-csrf-token": first.json()["csrf_token"]})
    response = log_in(client)
    assert response.json() == {"user": "alice"}
    logged_in = sealed_value(response)
    assert logged_in != pre_login and response.headers["cache-control"] == "no-store"
    assert client.get("/me").json() == {"user": "alice", "cart": ["apple"]}
    # The pre-login cookie never becomes the logged-in session (no fixation).
    assert replay(app, pre_login).status_code == 401

    # CSRF: the pre-login token died with the anonymous session; cross-site posts fail.
    assert client.post("/note", data={"note": "hi", "csrf_token": "stale"}).status_code == 403
    token = csrf(client)
    hostile = {"origin": "https://evil.example"}
    assert client.post("/note", data={"csrf_token": token}, headers=hostile).status_code == 403
    assert client.post("/note", data={"note": "hi", "csrf_token": token}).status_code == 200

    assert client.get("/flashes").json() == {"flashes": [["info", "saved"]]}
    assert client.get("/flashes").json() == {"flashes": []}  # read once

    out = client.post("/logout", headers={"x-csrf-token": token})
    assert out.status_code == 200
    assert set_cookie(out).startswith(f"{COOKIE}=;") and "Max-Age=0" in set_cookie(out)
    assert "clear-site-data" not in out.headers  # off by default (docs/web.md)
    assert client.get("/me").json()["error"] == "login_required"


def test_reads_inside_the_touch_interval_send_no_cookie(
    client: TestClient, clock: FakeClock
) -> None:
    assert sealed_value(client.get("/counter"))
    read = client.get("/me")
    assert read.status_code == 401 and set_cookie(read) is None
    clock.advance(61)
    touched = client.get("/me")
    assert sealed_value(touched)  # the idle deadline slides: a re-sealed cookie
    assert set_cookie(client.get("/me")) is None
    static = client.get("/static/hello.txt")
    assert static.text == "hello" and set_cookie(static) is None and "vary" not in static.headers
    assert client.get("/counter").json() == {"count": 2}


def test_an_expired_session_is_told_apart(client: TestClient, clock: FakeClock) -> None:
    log_in(client)
    clock.advance(Policy().idle_timeout)
    response = client.get("/me")
    assert response.status_code == 401
    assert response.json() == {"error": "session_expired", "reason": "expired_idle"}
    assert "Max-Age=0" in set_cookie(response)


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "x" * 4000,
        "cs1." + "A" * 3000,
        "cs1.%00%ff",
        "\u00e9\u00ff",
        "not base64!",
        "cc1_" + "A" * 48,
    ],
)
def test_malformed_cookies_are_anonymous_never_a_500(app: Any, junk: str) -> None:
    response = replay(app, junk)
    assert response.status_code == 401
    assert response.json()["error"] == "login_required"


def test_a_tampered_cookie_is_anonymous(client: TestClient, app: Any) -> None:
    value = sealed_value(log_in(client))
    middle = len(value) // 2
    tampered = value[:middle] + ("A" if value[middle] != "A" else "B") + value[middle + 1 :]
    assert replay(app, tampered).json()["reason"] == "unknown"
    assert replay(app, value).json()["user"] == "alice"


def test_an_oversized_session_is_a_clear_error_not_a_dropped_cookie(
    app: asgi.SessionMiddleware,
) -> None:
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as client:
        value = sealed_value(log_in(client))
        token = csrf(client)
        ok = client.post("/blob?n=2000", headers={"x-csrf-token": token})
        assert ok.status_code == 200 and sealed_value(ok)
        too_big = client.post("/blob?n=4000", headers={"x-csrf-token": token})
        assert too_big.status_code == 500 and set_cookie(too_big) is None
        assert client.get("/me").json()["user"] == "alice"  # not locked out
    with TestClient(app, base_url=BASE) as client:
        client.cookies.set(COOKIE, value, domain="testserver")
        token = csrf(client)
        answer = client.post("/blob?n=4000", headers={"x-csrf-token": token})
        assert answer.status_code == 500 and set_cookie(answer) is None
        assert answer.json()["error"] == "session_too_large"
        assert re.search(r"would be \d+ bytes.*server mode", answer.json()["message"])


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_logout_everywhere_and_real_logout_with_a_store(
    kind: str, tmp_path: Any, clock: FakeClock
) -> None:
    url = "memory://" if kind == "memory" else f"sqlite:///{tmp_path}/revocations.db"
    app = asgi_app(clock, url)
    with TestClient(app, base_url=BASE) as laptop, TestClient(app, base_url=BASE) as phone:
        laptop_cookie = sealed_value(log_in(laptop))
        phone_cookie = sealed_value(log_in(phone))
        clock.advance(5)
        response = laptop.post("/logout-others", headers={"x-csrf-token": csrf(laptop)})
        assert response.status_code == 200
        assert phone.get("/me").json() == {"error": "login_required", "reason": "unknown"}
        assert laptop.get("/me").json()["user"] == "alice"
        assert replay(app, laptop_cookie).status_code == 401  # the pre-re-issue copy too
        assert replay(app, phone_cookie).status_code == 401

        current = laptop.cookies.get(COOKIE)
        assert current and replay(app, current).json()["user"] == "alice"
        laptop.post("/logout", headers={"x-csrf-token": csrf(laptop)})
        assert replay(app, current).status_code == 401  # a copied cookie dies with logout


def test_without_a_store_logout_cannot_reach_a_copied_cookie(client: TestClient, app: Any) -> None:
    value = sealed_value(log_in(client))
    client.post("/logout", headers={"x-csrf-token": csrf(client)})
    assert client.get("/me").status_code == 401
    assert replay(app, value).json()["user"] == "alice"  # the documented limit


# --- the WSGI middleware with the synchronous manager -------------------------------------------


def wsgi_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """A plain WSGI application using ``environ["coatcheck.session"]``."""
    state = environ[wsgi.ENVIRON_KEY]
    path, method = environ["PATH_INFO"], environ["REQUEST_METHOD"]
    status, body = "200 OK", {}
    if path == "/csrf":
        body = {"csrf_token": state.csrf_token()}
    elif path == "/login" and method == "POST":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        form = parse_qs(environ["wsgi.input"].read(length).decode())
        user = form.get("username", [""])[0]
        if USERS.get(user) == form.get("password", [""])[0]:
            state.login(user)
            body = {"user": user}
        else:
            status, body = "401 Unauthorized", {"error": "bad_credentials"}
    elif path == "/me":
        if state.user_id is None:
            status, body = "401 Unauthorized", {"error": "login_required"}
        else:
            body = {"user": state.user_id, "count": state.get("count")}
    elif path == "/counter":
        state["count"] = state.get("count", 0) + 1
        body = {"count": state["count"]}
    elif path == "/blob" and method == "POST":
        state["blob"] = "x" * 4000
    elif path == "/logout" and method == "POST":
        state.logout()
    else:
        status, body = "404 Not Found", {"error": "not_found"}
    start_response(status, [("content-type", "application/json")])
    return [json.dumps(body).encode()]


@pytest.fixture
def wsgi_middleware(clock: FakeClock, tmp_path: Any) -> Iterator[wsgi.SessionMiddleware]:
    store = open_store(f"sqlite:///{tmp_path}/revocations.db")
    manager = SealedSessionManager(KEYS, store=store, clock=clock)
    yield wsgi.SessionMiddleware(wsgi_app, manager, SETTINGS)
    manager.close()


def wsgi_client(middleware: wsgi.SessionMiddleware) -> httpx.Client:
    return httpx.Client(transport=httpx.WSGITransport(app=middleware), base_url=BASE)


def test_wsgi_login_starts_a_fresh_session(wsgi_middleware: wsgi.SessionMiddleware) -> None:
    with wsgi_client(wsgi_middleware) as client:
        token = client.get("/csrf").json()["csrf_token"]
        assert client.get("/counter").json() == {"count": 1}
        pre_login = client.cookies.get(COOKIE)
        form = {"username": "alice", "password": "alice-password", "csrf_token": token}
        assert sealed_value(client.post("/login", data=form)) != pre_login
        # The handler's login carries nothing it is not told to: the count starts again.
        assert client.get("/counter").json() == {"count": 1}
        bad = {**form, "password": "wrong", "csrf_token": client.get("/csrf").json()["csrf_token"]}
        assert client.post("/login", data=bad).status_code == 401


def test_wsgi_touch_size_and_logout(
    wsgi_middleware: wsgi.SessionMiddleware, clock: FakeClock
) -> None:
    with wsgi_client(wsgi_middleware) as client:
        token = client.get("/csrf").json()["csrf_token"]
        form = {"username": "alice", "password": "alice-password", "csrf_token": token}
        value = sealed_value(client.post("/login", data=form))
        assert client.get("/me").json() == {"user": "alice", "count": None}
        assert set_cookie(client.get("/me")) is None  # a read inside the touch interval
        clock.advance(61)
        assert sealed_value(client.get("/me"))
        assert client.get("/counter").json() == {"count": 1}

        token = client.get("/csrf").json()["csrf_token"]
        too_big = client.post("/blob", headers={"x-csrf-token": token})
        assert too_big.status_code == 500 and "server mode" in too_big.json()["message"]
        assert client.get("/me").json()["count"] == 1  # the previous cookie still works

        out = client.post("/logout", headers={"x-csrf-token": token})
        assert "Max-Age=0" in set_cookie(out) and "clear-site-data" not in out.headers
        assert client.get("/me").status_code == 401
    with wsgi_client(wsgi_middleware) as thief:
        assert thief.get("/me", headers={"cookie": f"{COOKIE}={value}"}).status_code == 401


def test_a_wsgi_server_answers_oversize_with_a_500_and_no_cookie(
    wsgi_middleware: wsgi.SessionMiddleware,
) -> None:
    environ: dict[str, Any] = {}
    setup_testing_defaults(environ)
    environ.update(REQUEST_METHOD="POST", PATH_INFO="/blob", HTTP_HOST="testserver")
    environ["wsgi.url_scheme"] = "https"
    out, log = io.BytesIO(), io.StringIO()
    SimpleHandler(io.BytesIO(), out, log, environ).run(wsgi_middleware)  # the stdlib server
    status_line, _, rest = out.getvalue().partition(b"\r\n")
    head, _, body = rest.partition(b"\r\n\r\n")
    assert b" 500 " in status_line and b"set-cookie" not in head.lower()
    assert json.loads(body)["error"] == "session_too_large" and b"server mode" in body
