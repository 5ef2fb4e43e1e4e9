"""The Starlette/FastAPI adapter, end to end through Starlette's TestClient.

Apps run in the loopback development cookie mode on ``http://127.0.0.1`` and with the secure
defaults on ``https://testserver``. Time moves only by ``FakeClock``; store calls are counted
with a wrapping store, so "no store call" is asserted, not assumed.
"""

from __future__ import annotations

import importlib.util
import re
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jinja2
import pytest
from fastapi import Depends, FastAPI, Form, Request
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from coatcheck import AsyncSessionManager, ConfigError, FakeClock, Policy, open_async_store
from coatcheck.cookies import development
from coatcheck.web.settings import WebSettings
from coatcheck.web.starlette import (
    EXCEPTION_HANDLERS,
    AsyncRequestSession,
    AuthenticatedSession,
    Session,
    add_sessions,
    csrf_input,
    csrf_token,
    get_session,
    require_login,
    require_recent_login,
    session_middleware,
)

with warnings.catch_warnings():
    # Starlette 1.x would rather use httpx2; the httpx of the dev dependencies works the same.
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

LOCAL = "http://127.0.0.1"
SECURE = "https://testserver"
DEV_SETTINGS = WebSettings.build(cookie=development(), exempt_paths=["/static"])
SECURE_SETTINGS = WebSettings.build(exempt_paths=["/static"])
HTML = {"accept": "text/html,application/xhtml+xml"}
API = {"accept": "application/json"}
REAUTH_SECONDS = 300
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fastapi_app" / "app.py"


class CountingStore:
    """A real store, with every call counted by method name."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.url = inner.url
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)
        if name == "use_tokens":  # the manager's token codec, once: not a store call
            return method

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return await method(*args, **kwargs)

        return counted

    @property
    def writes(self) -> int:
        return sum(
            n for name, n in self.calls.items() if name not in ("load", "close", "token_key")
        )


@pytest.fixture
def store() -> CountingStore:
    return CountingStore(open_async_store("memory://"))


@pytest.fixture
def sessions(store: CountingStore, clock: FakeClock) -> AsyncSessionManager:
    return AsyncSessionManager(store, Policy(touch_interval=60), clock=clock)  # type: ignore[arg-type]


def build_app(
    manager: AsyncSessionManager, settings: WebSettings | None = DEV_SETTINGS, **kw: Any
) -> Any:
    """A FastAPI app using every helper the adapter offers."""
    app = FastAPI()
    add_sessions(app, manager=manager, settings=settings, **kw)

    @app.get("/plain")
    async def plain() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/static/info")
    async def static_info() -> PlainTextResponse:
        return PlainTextResponse("static")

    @app.get("/static/peek")
    async def static_peek(request: Request) -> dict[str, Any]:
        return dict(await get_session(request))

    @app.get("/read")
    async def read(session: Session) -> dict[str, Any]:
        return {"value": session.get("k"), "user": session.user_id, "why": session.expired_reason}

    @app.get("/set/{value}")
    async def set_value(value: str, session: Session) -> dict[str, str]:
        session["k"] = value
        return {"k": value}

    @app.get("/csrf")
    async def token(session: Session) -> dict[str, str]:
        return {"csrf_token": session.csrf_token()}

    @app.post("/login/{user}")
    async def login(user: str, session: Session) -> dict[str, str]:
        await session.login(user)
        return {"user": user}

    @app.post("/logout")
    async def logout(session: Session) -> dict[str, bool]:
        await session.logout()
        return {"ok": True}

    @app.get("/me")
    async def me(session: AuthenticatedSession) -> dict[str, str | None]:
        return {"user": session.user_id}

    @app.get("/sensitive")
    async def sensitive(
        session: AsyncRequestSession = Depends(require_recent_login(REAUTH_SECONDS)),  # noqa: B008
    ) -> dict[str, str | None]:
        return {"user": session.user_id}

    @app.post("/form")
    async def form(session: Session, text: str = Form("")) -> dict[str, str]:
        return {"text": text}

    @app.post("/api")
    async def api(session: Session) -> dict[str, bool]:
        return {"ok": True}

    @app.get("/page")
    async def page(request: Request, session: Session) -> PlainTextResponse:
        return PlainTextResponse(str(csrf_input(request)))

    return app


def client(app: Any, base_url: str = LOCAL) -> TestClient:
    return TestClient(app, base_url=base_url, follow_redirects=False)


def log_in(c: TestClient, user: str = "alice") -> None:
    token = c.get("/csrf").json()["csrf_token"]
    assert c.post(f"/login/{user}", headers={"x-csrf-token": token}).status_code == 200


def set_cookies(response: Any) -> list[str]:
    return response.headers.get_list("set-cookie")


@pytest.fixture
def app(sessions: AsyncSessionManager) -> Any:
    return build_app(sessions)


@pytest.fixture
def local(app: Any) -> Iterator[TestClient]:
    with client(app) as c:
        yield c


# --- laziness and when cookies are sent ----------------------------------------------------


def test_route_that_never_uses_the_session_makes_no_store_call(
    local: TestClient, store: CountingStore
) -> None:
    log_in(local)
    store.calls.clear()
    response = local.get("/plain")
    assert response.status_code == 200
    assert store.calls == Counter()
    assert set_cookies(response) == []


def test_cookie_is_set_once_when_the_token_is_new(local: TestClient) -> None:
    first = local.get("/set/a")
    assert first.json() == {"k": "a"}
    (cookie,) = set_cookies(first)
    assert cookie.startswith("session=cc2_")
    assert first.headers["cache-control"] == "no-store"
    again = local.get("/set/b")
    assert set_cookies(again) == []
    assert local.get("/read").json()["value"] == "b"


def test_anonymous_visitor_who_stores_nothing_gets_no_cookie(
    local: TestClient, store: CountingStore
) -> None:
    response = local.get("/read")
    assert response.json() == {"value": None, "user": None, "why": None}
    assert set_cookies(response) == []
    assert store.writes == 0


def test_read_inside_touch_interval_writes_nothing_and_sends_no_cookie(
    local: TestClient, store: CountingStore, clock: FakeClock
) -> None:
    local.get("/set/a")
    store.calls.clear()
    clock.advance(30)
    inside = local.get("/read")
    assert (store.writes, set_cookies(inside)) == (0, [])
    clock.advance(60)
    after = local.get("/read")
    assert store.calls["update"] == 1
    assert set_cookies(after) == []


def test_secure_defaults_on_https(sessions: AsyncSessionManager) -> None:
    with client(build_app(sessions, SECURE_SETTINGS), SECURE) as c:
        response = c.get("/set/a")
        (cookie,) = set_cookies(response)
        assert re.fullmatch(
            r"__Host-session=cc2_[A-Za-z0-9_-]{48}; Path=/; Secure; HttpOnly; SameSite=Lax", cookie
        )
        assert "domain" not in cookie.lower()
        assert response.headers["cache-control"] == "no-store"
        assert c.get("/read").json()["value"] == "a"


def test_development_cookie_is_refused_off_loopback(sessions: AsyncSessionManager) -> None:
    with client(build_app(sessions), "http://app.example") as c:
        response = c.get("/read")
    assert response.status_code == 500
    assert response.json()["error"] == "insecure_cookie_mode"


def test_loopback_development_picks_the_cookie_per_request(sessions: AsyncSessionManager) -> None:
    app = build_app(sessions, SECURE_SETTINGS, loopback_development=True)
    for base_url, name in [
        (LOCAL, "session="),
        ("http://localhost:8000", "session="),
        (SECURE, "__Host-session="),
        ("https://127.0.0.1", "__Host-session="),
    ]:
        with client(app, base_url) as c:
            (cookie,) = set_cookies(c.get("/set/a"))
            assert cookie.startswith(name), base_url
            assert ("Secure" in cookie) == name.startswith("__Host-")


def test_exempt_path_sends_no_cookie_and_has_no_session(
    local: TestClient, store: CountingStore
) -> None:
    log_in(local)
    store.calls.clear()
    response = local.get("/static/info")
    assert (response.text, set_cookies(response), store.calls) == ("static", [], Counter())
    with pytest.raises(RuntimeError, match="exempt_paths"):
        local.get("/static/peek")


# --- login, logout ---------------------------------------------------------------------------


def test_login_issues_a_new_token_and_the_old_one_is_dead(local: TestClient) -> None:
    local.get("/set/pre")
    before = local.cookies["session"]
    token = local.get("/csrf").json()["csrf_token"]
    response = local.post("/login/alice", headers={"x-csrf-token": token})
    after = local.cookies["session"]
    assert after != before
    assert response.headers["cache-control"] == "no-store"
    assert local.get("/me").json() == {"user": "alice"}
    with client(local.app) as replay:
        replay.cookies.set("session", before)
        assert replay.get("/read").json() == {"value": None, "user": None, "why": "unknown"}


@pytest.mark.parametrize("clear_site_data", [False, True])
def test_logout_expires_cookie_and_clears_site_data_only_when_asked(
    sessions: AsyncSessionManager, clear_site_data: bool
) -> None:
    """``Clear-Site-Data`` reaches the whole registrable domain: only with the setting on."""
    config = {
        "COATCHECK_LOOPBACK_DEVELOPMENT": "true",
        "COATCHECK_CLEAR_SITE_DATA": str(clear_site_data).lower(),
    }
    with client(build_app(sessions, settings=None, config=config)) as local:
        log_in(local)
        old = local.cookies["session"]
        token = local.get("/csrf").json()["csrf_token"]
        response = local.post("/logout", headers={"x-csrf-token": token})
    assert response.headers.get("clear-site-data") == ('"cookies"' if clear_site_data else None)
    assert response.headers["cache-control"] == "no-store"
    (cookie,) = set_cookies(response)
    assert cookie.startswith("session=;") and "Max-Age=0" in cookie
    with client(local.app) as replay:
        replay.cookies.set("session", old)
        assert replay.get("/me", headers=API).status_code == 401


# --- guards ----------------------------------------------------------------------------------


def test_guard_sends_browsers_to_login_with_next(local: TestClient) -> None:
    response = local.get("/me?tab=1", headers=HTML)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/me%3Ftab%3D1&reason=login_required"


def test_guard_gives_api_clients_401_json(local: TestClient) -> None:
    response = local.get("/me", headers=API)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == "login_required"
    assert response.headers["www-authenticate"].startswith("Cookie")


def test_expired_session_is_told_apart_from_none(local: TestClient, clock: FakeClock) -> None:
    log_in(local)
    clock.advance(31 * 60)
    api = local.get("/me", headers=API)
    assert (api.status_code, api.json()["error"]) == (401, "session_expired")
    # The stale cookie is expired in the same response, so the next request is simply anonymous.
    (cookie,) = set_cookies(api)
    assert "Max-Age=0" in cookie
    with client(local.app) as fresh:
        fresh.cookies.set("session", "cc1_" + "A" * 48)
        assert fresh.get("/me", headers=API).json()["error"] == "login_required"


def test_expired_session_redirects_browser_with_reason(local: TestClient, clock: FakeClock) -> None:
    log_in(local)
    clock.advance(13 * 60 * 60)  # past the absolute lifetime too
    response = local.get("/me", headers=HTML)
    assert response.status_code == 303
    assert response.headers["location"].endswith("reason=session_expired")


def test_reauthentication_guard(local: TestClient, clock: FakeClock) -> None:
    log_in(local)
    assert local.get("/sensitive", headers=API).json() == {"user": "alice"}
    clock.advance(REAUTH_SECONDS + 1)
    assert local.get("/me", headers=API).status_code == 200  # still logged in
    stale = local.get("/sensitive", headers=API)
    assert (stale.status_code, stale.json()["error"]) == (401, "reauthenticate")
    browser = local.get("/sensitive", headers=HTML)
    assert browser.headers["location"] == "/login?next=/sensitive&reason=reauthenticate"
    log_in(local)
    assert local.get("/sensitive", headers=API).status_code == 200


def test_recent_login_max_age_must_be_positive() -> None:
    with pytest.raises(ConfigError):
        require_recent_login(0)


# --- CSRF ------------------------------------------------------------------------------------


@pytest.fixture
def csrf_client(local: TestClient) -> tuple[TestClient, str]:
    return local, local.get("/csrf").json()["csrf_token"]


def test_cross_origin_post_is_refused(csrf_client: tuple[TestClient, str]) -> None:
    c, token = csrf_client
    for headers in ({"origin": "https://evil.example"}, {"sec-fetch-site": "cross-site"}):
        response = c.post("/api", headers={"x-csrf-token": token, **headers})
        assert (response.status_code, response.json()["error"]) == (403, "csrf_origin")


def test_missing_or_wrong_token_is_refused(csrf_client: tuple[TestClient, str]) -> None:
    c, _ = csrf_client
    for headers in ({}, {"x-csrf-token": "nope"}):
        response = c.post("/api", headers=headers)
        assert (response.status_code, response.json()["error"]) == (403, "csrf_token")
    assert c.post("/form", data={"text": "hi"}).status_code == 403


def test_token_in_header_or_form_field_passes(csrf_client: tuple[TestClient, str]) -> None:
    c, token = csrf_client
    assert c.post("/api", headers={"x-csrf-token": token, "origin": LOCAL}).status_code == 200
    # The middleware reads the form to find the field, and the endpoint still gets the body.
    form = c.post("/form", data={"text": "hello", "csrf_token": token})
    assert form.json() == {"text": "hello"}
    multipart = c.post("/form", data={"text": "files too", "csrf_token": token}, files={"f": b"x"})
    assert multipart.json() == {"text": "files too"}


def test_bearer_authenticated_requests_are_exempt(app: Any) -> None:
    cross_site = {"origin": "https://evil.example", "sec-fetch-site": "cross-site"}
    response = client(app).post("/api", headers={"authorization": "Bearer cct_x", **cross_site})
    assert response.status_code == 200


def test_a_bearer_header_beside_the_cookie_is_checked(csrf_client: tuple[TestClient, str]) -> None:
    """The session still comes from the cookie, so the bearer header exempts nothing."""
    c, _ = csrf_client
    bearer = {"authorization": "Bearer cct_something"}
    response = c.post("/api", headers=bearer)
    assert (response.status_code, response.json()["error"]) == (403, "csrf_token")
    cross_site = {**bearer, "origin": "https://evil.example", "sec-fetch-site": "cross-site"}
    response = c.post("/api", headers=cross_site)
    assert (response.status_code, response.json()["error"]) == (403, "csrf_origin")


def test_csrf_input_is_escaped_markup(csrf_client: tuple[TestClient, str]) -> None:
    c, token = csrf_client
    assert c.get("/page").text == f'<input type="hidden" name="csrf_token" value="{token}">'


def test_csrf_input_renders_unescaped_in_jinja2(sessions: AsyncSessionManager) -> None:
    env = jinja2.Environment(autoescape=True)
    env.globals.update(csrf_input=csrf_input, csrf_token=csrf_token)
    template = env.from_string("<form>{{ csrf_input(request) }}{{ csrf_token(request) }}</form>")

    async def form_page(request: Request) -> PlainTextResponse:
        await get_session(request)
        return PlainTextResponse(template.render(request=request))

    app = Starlette(routes=[Route("/", form_page)])
    add_sessions(app, manager=sessions, settings=DEV_SETTINGS)
    with client(app) as c:
        page = c.get("/").text
    token = re.search(r'value="([^"]+)">([^<]+)</form>', page)
    assert token is not None and token.group(1) == token.group(2)


# --- failure modes ---------------------------------------------------------------------------


def test_store_down_gives_503_json_and_untouched_routes_still_work() -> None:
    app = FastAPI()
    add_sessions(app, store_url="redis://127.0.0.1:1/0?socket_connect_timeout=0.5")

    @app.get("/read")
    async def read(session: Session) -> dict[str, Any]:
        return dict(session)

    @app.get("/plain")
    async def plain() -> dict[str, bool]:
        return {"ok": True}

    with client(app, SECURE) as c:
        c.cookies.set("__Host-session", "cc1_" + "A" * 48)
        response = c.get("/read", headers=API)
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        assert response.json()["error"] == "session_store_unavailable"
        assert "unavailable" in response.json()["message"]
        browser = c.get("/read", headers=HTML)
        assert browser.status_code == 503 and "text/html" in browser.headers["content-type"]
        assert c.get("/plain").status_code == 200


@pytest.mark.parametrize(
    "raw",
    [
        b"session=",
        b"session=" + b"A" * 10240,
        b"session=\xff\xfe\x00\x80binary",
        "session=caf\xe9-latin1".encode("latin-1"),
        b"session=cc1_" + b"!" * 48,
        b"session=cc1_" + b"A" * 47 + b"=",
        b"session===; =session; session",
    ],
    ids=["empty", "10KB", "binary", "latin-1", "wrong-alphabet", "padding", "junk-pairs"],
)
def test_malformed_cookie_is_a_normal_anonymous_request(
    app: Any, store: CountingStore, raw: bytes
) -> None:
    with client(app) as c:
        response = c.get("/read", headers={"cookie": raw})  # type: ignore[dict-item]
        assert response.status_code == 200
        assert response.json() == {"value": None, "user": None, "why": "unknown"}
        assert store.calls["load"] == 0  # refused before any store call
        (expired,) = set_cookies(response)  # the junk is cleared from the browser
        assert expired.startswith("session=;") and "Max-Age=0" in expired
        assert c.get("/plain", headers={"cookie": raw}).status_code == 200  # type: ignore[dict-item]


def _live_token(app: Any, user: str | None = None) -> str:
    with client(app) as c:
        if user:
            log_in(c, user)
        else:
            c.get("/set/mine")
        return str(c.cookies["session"])


@pytest.mark.parametrize("tossed_first", [True, False])
def test_tossed_cookie_cannot_shadow_the_real_one(app: Any, tossed_first: bool) -> None:
    real = _live_token(app, "alice")
    for tossed in ("cc1_" + "B" * 48, "junk", ""):
        pair = [f"session={tossed}", f"session={real}"]
        header = "; ".join(pair if tossed_first else pair[::-1])
        with client(app) as c:
            assert c.get("/me", headers={"cookie": header, **API}).json() == {"user": "alice"}


def test_two_live_cookies_are_ambiguous_and_may_not_write(app: Any) -> None:
    mine, planted = _live_token(app, "alice"), _live_token(app, "mallory")
    with client(app) as c:
        header = {"cookie": f"session={planted}; session={mine}"}
        assert c.get("/read", headers=header).json()["user"] is None
        refused = c.get("/set/x", headers={**header, **API})
        assert (refused.status_code, refused.json()["error"]) == (
            400,
            "conflicting_session_cookies",
        )


# --- plain Starlette, installation -----------------------------------------------------------


def test_plain_starlette_routes(sessions: AsyncSessionManager) -> None:
    async def count(request: Request) -> JSONResponse:
        session = await get_session(request)
        request.session["n"] = request.session.get("n", 0) + 1  # the same object
        return JSONResponse({"n": session["n"]})

    async def private(request: Request) -> JSONResponse:
        session = await require_login(request)
        return JSONResponse({"user": session.user_id})

    app = Starlette(
        routes=[Route("/count", count), Route("/private", private)],
        middleware=[session_middleware(sessions, DEV_SETTINGS)],
        exception_handlers=EXCEPTION_HANDLERS,
    )
    with client(app) as c:
        assert [c.get("/count").json()["n"] for _ in range(3)] == [1, 2, 3]
        assert c.get("/private", headers=API).status_code == 401
        assert c.get("/private", headers=HTML).headers["location"].startswith("/login?next=")


def test_guard_works_without_the_exception_handlers(sessions: AsyncSessionManager) -> None:
    async def private(request: Request) -> JSONResponse:
        await require_login(request)
        return JSONResponse({})

    app = Starlette(
        routes=[Route("/private", private)],
        middleware=[session_middleware(sessions, DEV_SETTINGS)],
    )
    with client(app) as c:
        assert c.get("/private", headers=API).json()["error"] == "login_required"
        assert c.get("/private", headers=HTML).status_code == 303


def test_get_session_without_middleware_says_what_is_missing() -> None:
    async def view(request: Request) -> JSONResponse:
        await get_session(request)
        return JSONResponse({})

    with (
        client(Starlette(routes=[Route("/", view)])) as c,
        pytest.raises(RuntimeError, match="add_sessions"),
    ):
        c.get("/")


def test_owned_manager_is_closed_with_the_lifespan(sessions: AsyncSessionManager) -> None:
    app = FastAPI()
    owned = add_sessions(app, store_url="memory://")
    counting = CountingStore(owned.store)
    owned.store = counting  # type: ignore[assignment]
    with client(app):
        assert counting.calls["close"] == 0
    assert counting.calls["close"] == 1

    borrowed_app = FastAPI()
    add_sessions(borrowed_app, manager=sessions)
    with client(borrowed_app):
        pass
    assert sessions.store.calls["close"] == 0  # type: ignore[attr-defined]


def test_add_sessions_wants_one_source_of_sessions(sessions: AsyncSessionManager) -> None:
    with pytest.raises(ConfigError, match="not both"):
        add_sessions(FastAPI(), manager=sessions, store_url="memory://")


# --- the example app -------------------------------------------------------------------------


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("COATCHECK_STORE_URL", "memory://")
    spec = importlib.util.spec_from_file_location("coatcheck_fastapi_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with client(module.app) as c:
        yield c


def _form_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def test_example_login_me_note_logout(example: TestClient) -> None:
    assert example.get("/me", headers=HTML).headers["location"].startswith("/login?next=/me")
    token = _form_token(example.get("/login?next=/note", headers=HTML).text)
    wrong = {"username": "alice", "password": "nope", "csrf_token": token, "next": "/note"}
    assert example.post("/login", data=wrong, headers=HTML).status_code == 401
    right = {**wrong, "password": "alice-password"}
    assert example.post("/login", data=right).headers["location"] == "/note"
    assert example.get("/me", headers=API).json()["user"] == "alice"
    token = _form_token(example.get("/note", headers=HTML).text)
    saved = example.post("/note", data={"note": "<b>", "csrf_token": token})
    assert saved.headers["location"] == "/note"
    page = example.get("/note", headers=HTML).text
    assert "saved" in page and "&lt;b&gt;" in page
    assert "saved" not in example.get("/note", headers=HTML).text
    out = example.post("/logout", data={"csrf_token": token})
    assert (out.status_code, out.headers["location"]) == (303, "/")
    assert example.get("/me", headers=API).status_code == 401


def test_example_refuses_login_without_its_form_and_open_redirects(example: TestClient) -> None:
    creds = {"username": "alice", "password": "alice-password"}
    assert example.post("/login", data=creds).status_code == 403
    token = _form_token(example.get("/login", headers=HTML).text)
    evil = example.post("/login", data={**creds, "csrf_token": token, "next": "//evil.example"})
    assert evil.headers["location"] == "/me"


def test_example_scripts_counter_keys_and_exempt_static(example: TestClient) -> None:
    assert [example.get("/counter").json()["count"] for _ in range(2)] == [1, 2]
    token = example.get("/csrf").json()["csrf_token"]
    assert example.post("/keys/k1", headers={"x-csrf-token": token}).json() == {"set": "k1"}
    assert example.get("/keys").json() == {"keys": ["count", "k1"]}
    static = example.get("/static/hello.txt")
    assert (static.text, set_cookies(static)) == ("hello\n", [])
