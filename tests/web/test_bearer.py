"""Bearer API tokens through every adapter: raw ASGI, Starlette/FastAPI, raw WSGI and Flask.

Each adapter serves the same four routes (who am I, a scoped read, an unsafe ping, a write to
the session), so one set of tests runs against all of them. The token records live in one real
memory store shared by a sync and an async manager; time moves only by ``FakeClock``.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from flask import Flask
from werkzeug.test import Client

from coatcheck import AsyncSessionManager, FakeClock, Policy, SessionManager
from coatcheck.apitokens import ApiTokens
from coatcheck.core.session import SessionReadOnly, bearer_session
from coatcheck.stores.memory import MemoryStore
from coatcheck.stores.threaded import AsyncOverSync
from coatcheck.web import asgi, guards, wsgi
from coatcheck.web.errors import WebError
from coatcheck.web.flask import CoatCheck, current_session, login_required
from coatcheck.web.settings import WebSettings
from coatcheck.web.starlette import (
    AsyncRequestSession,
    add_sessions,
    get_session,
    require_login,
    require_scopes,
)

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

BASE = "https://testserver"
SETTINGS = WebSettings()
SCOPE = "repo:read"
JSON = {"accept": "application/json"}
DAY = 86400.0


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


def _answer(status: int, body: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    return status, [("content-type", "application/json")], json.dumps(body).encode()


def _decided(state: Any, scopes: tuple[str, ...]) -> tuple[int, list[tuple[str, str]], bytes]:
    """What a plain ASGI/WSGI app does with the guard's decision."""
    decision = state.login_decision(scopes=scopes)
    if isinstance(decision, guards.Redirect):
        return decision.status, [("location", decision.location)], b""
    assert isinstance(decision, WebError)
    return decision.render(state.request)


def _route(state: Any, method: str, path: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """The four routes, over a loaded request session (raw ASGI and WSGI apps)."""
    scopes = (SCOPE,) if path == "/repo" else ()
    if state.login_decision(scopes=scopes) is not None:
        return _decided(state, scopes)
    if path == "/write":
        try:
            state["k"] = 1
        except SessionReadOnly as exc:
            return _answer(409, {"refused": str(exc)})
        return _answer(200, {"written": True})
    return _answer(200, {"user": state.user_id, "kind": state.kind, "scopes": state.scopes})


# --- the apps -------------------------------------------------------------------------------


def raw_asgi(manager: AsyncSessionManager) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        state = await scope[asgi.SCOPE_KEY].load()
        if scope["path"].startswith("/login/"):
            await state.login(scope["path"].rsplit("/", 1)[1])
            status, headers, body = _answer(200, {"in": True})
        else:
            status, headers, body = _route(state, scope["method"], scope["path"])
        encoded = [(k.encode(), v.encode()) for k, v in headers]
        await send({"type": "http.response.start", "status": status, "headers": encoded})
        await send({"type": "http.response.body", "body": body})

    return asgi.SessionMiddleware(app, manager, SETTINGS)


def fastapi_app(manager: AsyncSessionManager) -> Any:
    app = FastAPI()
    add_sessions(app, manager=manager, settings=SETTINGS)

    def who(session: AsyncRequestSession) -> dict[str, Any]:
        return {"user": session.user_id, "kind": session.kind, "scopes": session.scopes}

    @app.get("/me")
    async def me(session: AsyncRequestSession = Depends(require_login)) -> dict[str, Any]:  # noqa: B008
        return who(session)

    @app.get("/repo")
    async def repo(
        session: AsyncRequestSession = Depends(require_scopes(SCOPE)),  # noqa: B008
    ) -> dict[str, Any]:
        return who(session)

    @app.post("/ping")
    async def ping(session: AsyncRequestSession = Depends(require_login)) -> dict[str, Any]:  # noqa: B008
        return who(session)

    @app.post("/write")
    async def write(session: AsyncRequestSession = Depends(require_login)) -> Any:  # noqa: B008
        from starlette.responses import JSONResponse

        try:
            session["k"] = 1
        except SessionReadOnly as exc:
            return JSONResponse({"refused": str(exc)}, status_code=409)
        return {"written": True}

    @app.get("/login/{user}")
    async def login(user: str, session: AsyncRequestSession = Depends(get_session)) -> Any:  # noqa: B008
        await session.login(user)
        return {"in": True}

    return app


def raw_wsgi(manager: SessionManager) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        state = environ[wsgi.ENVIRON_KEY]
        path = environ["PATH_INFO"]
        if path.startswith("/login/"):
            state.login(path.rsplit("/", 1)[1])
            status, headers, body = _answer(200, {"in": True})
        else:
            state.load()
            status, headers, body = _route(state, environ["REQUEST_METHOD"], path)
        start_response(f"{status} X", headers)
        return [body]

    return wsgi.SessionMiddleware(app, manager, SETTINGS)


def flask_app(manager: SessionManager) -> Flask:
    app = Flask(__name__)
    app.config.update(TESTING=True)
    CoatCheck(app, manager=manager, settings=SETTINGS)

    def who() -> dict[str, Any]:
        cs = current_session()
        return {"user": cs.user_id, "kind": cs.state.kind, "scopes": cs.state.scopes}

    @app.get("/me")
    @login_required
    def me() -> dict[str, Any]:
        return who()

    @app.get("/repo")
    @login_required(scopes=[SCOPE])
    def repo() -> dict[str, Any]:
        return who()

    @app.post("/ping")
    @login_required
    def ping() -> dict[str, Any]:
        return who()

    @app.post("/write")
    @login_required
    def write() -> Any:
        from flask import session

        try:
            session["k"] = 1
        except SessionReadOnly as exc:
            return {"refused": str(exc)}, 409
        return {"written": True}

    @app.get("/login/<user>")
    def do_login(user: str) -> dict[str, bool]:
        current_session().login(user)
        return {"in": True}

    return app


# --- one way to call each -------------------------------------------------------------------


class Rig:
    """An adapter's app with the API tokens of its store and a uniform ``call``."""

    def __init__(self, kind: str, clock: FakeClock) -> None:
        store = MemoryStore()
        self.sync = SessionManager(store, Policy(), clock=clock)  # type: ignore[arg-type]
        self.tokens = ApiTokens(self.sync)
        self.kind = kind
        if kind in ("asgi", "starlette"):
            amanager = AsyncSessionManager(AsyncOverSync(store, threads=None), clock=clock)
            app = raw_asgi(amanager) if kind == "asgi" else fastapi_app(amanager)
            self._asgi: TestClient | None = TestClient(app, base_url=BASE, follow_redirects=False)
        else:
            self._asgi = None
            target = raw_wsgi(self.sync) if kind == "wsgi" else flask_app(self.sync)
            self._wsgi = Client(target, use_cookies=False)

    def call(self, method: str, path: str, headers: dict[str, str] | None = None) -> Answer:
        sent = {**JSON, **(headers or {})}
        if self._asgi is not None:
            got = self._asgi.request(method, path, headers=sent)
            body = got.json() if got.content else None
            return Answer(got.status_code, {k.lower(): v for k, v in got.headers.items()}, body)
        response = self._wsgi.open(path, method=method, base_url=BASE, headers=sent)
        data = response.get_data()
        lowered = {k.lower(): v for k, v in response.headers.items()}
        lowered["set-cookie"] = "; ".join(response.headers.getlist("Set-Cookie"))
        return Answer(response.status_code, lowered, json.loads(data) if data else None)

    def cookie(self, user: str) -> str:
        """A session cookie of ``user`` (logged in through the app), as a Cookie header."""
        answer = self.call("GET", f"/login/{user}")
        assert answer.status == 200, answer
        return answer.headers["set-cookie"].split(";", 1)[0]

    def close(self) -> None:
        if self._asgi is not None:
            self._asgi.close()


@pytest.fixture(params=["asgi", "starlette", "wsgi", "flask"])
def rig(request: pytest.FixtureRequest, clock: FakeClock) -> Iterator[Rig]:
    made = Rig(request.param, clock)
    yield made
    made.close()


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def refused_as_invalid(answer: Answer) -> None:
    assert answer.status == 401, answer
    assert answer.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert answer.body["error"] == "invalid_token"
    assert "set-cookie" not in answer.headers or not answer.headers["set-cookie"]


# --- the tests ------------------------------------------------------------------------------


def test_a_bearer_token_is_the_tokens_user_read_only(rig: Rig) -> None:
    token, _ = rig.tokens.create("alice", "ci", scopes=[SCOPE, "x"])
    answer = rig.call("GET", "/me", bearer(token))
    assert answer.status == 200, answer
    assert answer.body == {"user": "alice", "kind": "api", "scopes": [SCOPE, "x"]}
    assert "no-store" in answer.headers["cache-control"]
    assert "Authorization" in answer.headers["vary"]
    assert not answer.headers.get("set-cookie")
    assert rig.tokens.list_user("alice")[0].last_used_at is not None
    assert rig.call("GET", "/me", {"authorization": f"bEaReR   {token}"}).status == 200


def test_scopes_are_enforced(rig: Rig) -> None:
    token, _ = rig.tokens.create("alice", "ci", scopes=[SCOPE])
    assert rig.call("GET", "/repo", bearer(token)).body["user"] == "alice"
    narrow, _ = rig.tokens.create("alice", "narrow", scopes=["other"])
    answer = rig.call("GET", "/repo", bearer(narrow))
    assert answer.status == 403, answer
    assert answer.headers["www-authenticate"] == (
        f'Bearer error="insufficient_scope", scope="{SCOPE}"'
    )
    assert answer.body["error"] == "insufficient_scope"
    assert rig.call("GET", "/me", bearer(narrow)).status == 200


def test_a_cookie_session_passes_scope_checks(rig: Rig) -> None:
    cookie = rig.cookie("carol")
    answer = rig.call("GET", "/repo", {"cookie": cookie})
    assert answer.status == 200 and answer.body["user"] == "carol"
    assert answer.body["scopes"] is None and answer.body["kind"] == "browser"


@pytest.mark.parametrize(
    "value",
    ["garbage", "", "cc_" + "A" * 54, "cc2_" + "A" * 48],
)
def test_malformed_bearer_tokens_are_refused(rig: Rig, value: str) -> None:
    refused_as_invalid(rig.call("GET", "/me", bearer(value)))
    refused_as_invalid(rig.call("GET", "/me", {**bearer(value), "accept": "text/html"}))


def test_a_changed_character_is_refused(rig: Rig) -> None:
    token, _ = rig.tokens.create("alice", "ci")
    flipped = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    refused_as_invalid(rig.call("GET", "/me", bearer(flipped)))


def test_revoked_and_expired_tokens_are_refused(rig: Rig, clock: FakeClock) -> None:
    token, info = rig.tokens.create("alice", "ci")
    assert rig.call("GET", "/me", bearer(token)).status == 200
    assert rig.tokens.revoke(info.id, user_id="alice")
    refused_as_invalid(rig.call("GET", "/me", bearer(token)))
    short, _ = rig.tokens.create("alice", "short", expires_in=DAY)
    assert rig.call("GET", "/me", bearer(short)).status == 200
    clock.advance(DAY)
    refused_as_invalid(rig.call("GET", "/me", bearer(short)))


def test_no_credentials_at_all_is_the_usual_login_required(rig: Rig) -> None:
    answer = rig.call("GET", "/me")
    assert answer.status == 401 and answer.body["error"] == "login_required"
    assert answer.headers["www-authenticate"].startswith("Cookie")
    basic = rig.call("GET", "/me", {"authorization": "Basic YWxpY2U6eA=="})
    assert basic.status == 401 and basic.body["error"] == "login_required"


def test_the_cookie_wins_over_the_bearer_header(rig: Rig) -> None:
    token, _ = rig.tokens.create("alice", "ci")
    cookie = rig.cookie("carol")
    answer = rig.call("GET", "/me", {"cookie": cookie, **bearer(token)})
    assert answer.body["user"] == "carol" and answer.body["kind"] == "browser"
    garbage = rig.call("GET", "/me", {"cookie": cookie, **bearer("garbage")})
    assert garbage.status == 200 and garbage.body["user"] == "carol"
    # An unsafe cookie request with a bearer header still needs its CSRF token.
    refused = rig.call("POST", "/ping", {"cookie": cookie, **bearer(token)})
    assert refused.status == 403 and refused.body["error"].startswith("csrf")


def test_writes_to_a_bearer_session_are_refused_clearly(rig: Rig) -> None:
    token, _ = rig.tokens.create("alice", "ci")
    answer = rig.call("POST", "/write", bearer(token))
    assert answer.status == 409, answer
    assert "read-only" in answer.body["refused"] and "API token" in answer.body["refused"]
    assert not answer.headers.get("set-cookie")


def test_bearer_only_unsafe_requests_need_no_csrf(rig: Rig) -> None:
    token, _ = rig.tokens.create("alice", "ci")
    cross = {"origin": "https://elsewhere.example", "sec-fetch-site": "cross-site"}
    answer = rig.call("POST", "/ping", {**bearer(token), **cross})
    assert answer.status == 200 and answer.body["user"] == "alice"
    # Without the bearer header the same cross-site POST is refused by the origin check.
    assert rig.call("POST", "/ping", cross).status == 403


# --- the pieces on their own ----------------------------------------------------------------


def test_bearer_session_is_read_only_with_its_facts() -> None:
    session = bearer_session(
        "alice", scopes=["a"], token_id="0123456789abcdef", created_at=10.0, expires_at=None
    )
    assert session.user_id == "alice" and session.kind == "api" and session.scopes == ("a",)
    assert session.token_id == "0123456789abcdef" and session.authenticated_at == 10.0
    assert session.read_only and not session.is_new
    for write in (
        lambda: session.__setitem__("k", 1),
        lambda: session.__delitem__("k"),
        session.clear,
        lambda: session.update(k=1),
    ):
        with pytest.raises(SessionReadOnly, match="read-only"):
            write()


def test_login_and_logout_are_refused_on_a_bearer_session(clock: FakeClock) -> None:
    seen: list[str] = []
    store = MemoryStore()
    manager = AsyncSessionManager(AsyncOverSync(store, threads=None), clock=clock)
    token, _ = ApiTokens(SessionManager(store, clock=clock)).create("alice", "ci")  # type: ignore[arg-type]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        state = await scope[asgi.SCOPE_KEY].load()
        for act in (state.logout, lambda: state.login("mallory"), state.rotate):
            try:
                await act()
            except SessionReadOnly as exc:
                seen.append(str(exc))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    client = TestClient(asgi.SessionMiddleware(app, manager), base_url=BASE)
    assert client.get("/", headers=bearer(token)).status_code == 204
    assert len(seen) == 3 and all("API token" in message for message in seen)


def test_bearer_can_be_switched_off(clock: FakeClock) -> None:
    store = MemoryStore()
    manager = SessionManager(store, clock=clock)  # type: ignore[arg-type]
    token, _ = ApiTokens(manager).create("alice", "ci")
    middleware = wsgi.SessionMiddleware(lambda e, s: [], manager, SETTINGS, bearer=False)
    assert middleware.handler.bearer is None
    state = middleware.handler.begin(wsgi.request_from_environ(_environ(bearer(token))))
    state.load()
    assert state.user_id is None and not state.bearer_refused


def test_scope_names_of_a_guard_are_checked_when_it_is_made() -> None:
    from coatcheck import ConfigError

    with pytest.raises(ConfigError, match="scope"):
        require_scopes("Not A Scope")
    with pytest.raises(ConfigError, match="scope"):
        login_required(scopes=["no spaces"])


def _environ(headers: dict[str, str]) -> dict[str, Any]:
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/me",
        "wsgi.url_scheme": "https",
        "HTTP_HOST": "testserver",
    }
    environ.update({"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()})
    return environ
