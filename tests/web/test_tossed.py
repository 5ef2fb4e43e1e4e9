"""Several values of the session cookie's name, through the bare WSGI and ASGI middlewares: what
is looked up (one batched store call, junk dropped first, a bounded number of candidates), what
wins, and that no expiring Set-Cookie is ever sent for them."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterable
from typing import Any

import httpx
import pytest
from harness import CountingStore
from starlette.testclient import TestClient

from coatcheck import AsyncSessionManager, FakeClock, Policy, SessionManager
from coatcheck._sync.web.handler import MAX_COOKIE_CANDIDATES
from coatcheck.core import tokens
from coatcheck.stores.threaded import AsyncOverSync
from coatcheck.web import asgi, wsgi
from coatcheck.web.settings import WebSettings

HTTPS = "https://testserver"
NAME = "__Host-session"


def made_up() -> str:
    """A well-formed token that was never issued."""
    token = tokens.PREFIX + base64.urlsafe_b64encode(os.urandom(36)).decode()
    assert tokens.is_well_formed(token)
    return token


def whoami_wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    session = environ[wsgi.ENVIRON_KEY]
    body = {"user": session.user_id, "expired": session.expired_reason}
    start_response("200 OK", [("content-type", "application/json")])
    return [json.dumps(body).encode()]


async def whoami_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    session = await scope[asgi.SCOPE_KEY].load()
    body = {"user": session.user_id, "expired": session.expired_reason}
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


class Site:
    def __init__(self, kind: str, clock: FakeClock) -> None:
        self.store = CountingStore()
        policy = Policy(idle_timeout=600)
        self.manager = SessionManager(self.store, policy, clock=clock)  # type: ignore[arg-type]
        settings = WebSettings(csrf=False)
        if kind == "wsgi":
            app = wsgi.SessionMiddleware(whoami_wsgi, self.manager, settings)
            self.client: httpx.Client = httpx.Client(
                transport=httpx.WSGITransport(app=app), base_url=HTTPS
            )
        else:
            inner = AsyncOverSync(self.store, threads=None)  # type: ignore[arg-type]
            async_manager = AsyncSessionManager(inner, policy, clock=clock)
            app = asgi.SessionMiddleware(whoami_asgi, async_manager, settings)
            self.client = TestClient(app, base_url=HTTPS)

    def live(self, user: str = "alice") -> str:
        return str(self.manager.create(user)[0])

    def get(self, values: list[str]) -> httpx.Response:
        self.store.calls.clear()
        cookie = "; ".join(f"{NAME}={v}" for v in values)
        return self.client.get("/", headers={"cookie": cookie})


@pytest.fixture(params=["wsgi", "asgi"])
def site(request: pytest.FixtureRequest, clock: FakeClock) -> Site:
    return Site(request.param, clock)


def test_one_cookie_is_one_plain_lookup(site: Site) -> None:
    live = site.live()
    assert site.get([live]).json()["user"] == "alice"
    assert site.store.calls == ["load"]


def test_several_values_are_looked_up_in_one_store_call(site: Site) -> None:
    live = site.live()
    values = ["junk0", made_up(), made_up(), live, made_up(), "junk1", ""]
    response = site.get(values)
    assert response.json()["user"] == "alice"
    assert site.store.calls == ["load_many"]
    assert "set-cookie" not in response.headers


def test_junk_beside_one_token_costs_one_plain_lookup(site: Site) -> None:
    live = site.live()
    assert site.get(["junk0", "junk1", live, "junk2"]).json()["user"] == "alice"
    assert site.store.calls == ["load"]
    response = site.get(["junk0", "junk1", "junk2"])
    assert response.json() == {"user": None, "expired": "unknown"}
    assert site.store.calls == []
    assert "set-cookie" not in response.headers


def test_the_last_well_formed_values_are_the_ones_looked_up(site: Site) -> None:
    """The browser sends the newest cookie of the shortest path last, which is where a cookie
    this site just set ends up; a live value behind more well-formed ones than the cap is not
    looked up (bounded work), junk never counts."""
    live = site.live()
    planted = [made_up() for _ in range(MAX_COOKIE_CANDIDATES)]
    junk = [f"junk{i}" for i in range(30)]
    assert site.get([*junk, made_up(), *planted[1:], live, *junk]).json()["user"] == "alice"
    response = site.get([live, *planted])
    assert response.json() == {"user": None, "expired": "unknown"}
    assert "set-cookie" not in response.headers


def test_an_expiry_among_several_values_is_reported(site: Site, clock: FakeClock) -> None:
    stale = site.live()
    clock.advance(601)
    response = site.get([made_up(), stale, "junk"])
    assert response.json() == {"user": None, "expired": "expired_idle"}
    assert "set-cookie" not in response.headers


def test_two_live_sessions_are_ambiguous(site: Site) -> None:
    response = site.get([site.live("alice"), site.live("mallory")])
    assert response.json() == {"user": None, "expired": "unknown"}
    assert "set-cookie" not in response.headers


def test_a_repeated_value_is_one_cookie(site: Site) -> None:
    live = site.live()
    assert site.get([live, live]).json()["user"] == "alice"
    assert site.store.calls == ["load"]
