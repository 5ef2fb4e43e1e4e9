"""The autosession door, in front of real apps: ASGI through Starlette's TestClient, WSGI through
Flask's test client and through a real server on a loopback socket."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from http.cookiejar import CookieJar
from types import SimpleNamespace
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from coatcheck_testing_support import (  # noqa: F401 (clean_guard_env is autouse)
    TestClient,
    clean_guard_env,
    flask_app,
    starlette_app,
)

from coatcheck import AsyncSessionManager, ConfigError, SessionManager
from coatcheck.cookies import development
from coatcheck.testing import (
    DEFAULT_PATH,
    AutoSessionASGI,
    AutoSessionWSGI,
    TestingNotAllowed,
    log_in,
)
from coatcheck.web.settings import WebSettings

LOCAL_HTTPS = "https://localhost"
LOOPBACK_PEER = ("127.0.0.1", 50000)
DOOR = DEFAULT_PATH


def peer_client(app: Any, base_url: str, peer: tuple[str, int]) -> Any:
    """A TestClient whose requests come from ``peer`` (the ASGI scope's ``client``)."""

    async def from_peer(scope: Any, receive: Any, send: Any) -> None:
        await app(dict(scope, client=peer), receive, send)

    return TestClient(from_peer, base_url=base_url)


def session_cookie(response: Any, name: str = "__Host-session") -> str:
    headers = response.headers.get_list("set-cookie")
    mine = [h for h in headers if h.startswith(f"{name}=")]
    assert len(mine) == 1, headers
    return mine[0]


@pytest.fixture
def asgi_door(
    coatcheck_testing_enabled: None,
    coatcheck_async_memory_manager: AsyncSessionManager,
) -> AutoSessionASGI:
    app = starlette_app(coatcheck_async_memory_manager)
    return AutoSessionASGI(
        app,
        coatcheck_async_memory_manager,
        ["alice", "bob"],
        settings=WebSettings.build(),
        bind_host="127.0.0.1",
    )


@pytest.fixture
def local_client(asgi_door: AutoSessionASGI) -> Any:
    return peer_client(asgi_door, LOCAL_HTTPS, LOOPBACK_PEER)


# -- ASGI ------------------------------------------------------------------------------------


def test_predefined_user_gets_a_working_session(local_client: Any) -> None:
    response = local_client.post(DOOR, json={"user": "alice"})
    assert response.status_code == 200
    assert response.json() == {"user": "alice"}
    assert response.headers["cache-control"] == "no-store"
    set_cookie = session_cookie(response)
    token = set_cookie.split(";", 1)[0].split("=", 1)[1]
    for attribute in ("Path=/", "Secure", "HttpOnly", "SameSite=Lax"):
        assert attribute in set_cookie
    assert token not in response.text
    assert token not in str(response.url)
    assert local_client.get("/me").json()["user"] == "alice"


def test_form_body_works_too(local_client: Any) -> None:
    response = local_client.post(DOOR, data={"user": "bob"})
    assert response.status_code == 200
    assert local_client.get("/me").json()["user"] == "bob"


def test_logging_in_again_replaces_the_previous_session(
    local_client: Any, coatcheck_async_memory_manager: AsyncSessionManager
) -> None:
    local_client.post(DOOR, json={"user": "alice"})
    first = local_client.cookies.get("__Host-session")
    local_client.post(DOOR, json={"user": "bob"})
    assert local_client.get("/me").json()["user"] == "bob"
    assert local_client.cookies.get("__Host-session") != first
    replay = peer_client(local_client.app, LOCAL_HTTPS, LOOPBACK_PEER)
    replay.cookies.set("__Host-session", first)
    assert replay.get("/me").json()["user"] is None  # the old session was destroyed


@pytest.mark.parametrize(
    "kwargs",
    [
        {"json": {"user": "mallory"}},
        {"json": {"name": "alice"}},
        {"json": ["alice"]},
        {"data": {"user": "mallory"}},
        {"content": b"user=alice", "headers": {"content-type": "text/plain"}},
        {"content": b"{not json", "headers": {"content-type": "application/json"}},
        {"content": b"[" * 4000, "headers": {"content-type": "application/json"}},
        {"content": b"\xff\xfe", "headers": {"content-type": "application/json"}},
    ],
)
def test_anything_but_a_predefined_user_is_403(local_client: Any, kwargs: dict[str, Any]) -> None:
    response = local_client.post(DOOR, **kwargs)
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == "unknown_user"
    assert "set-cookie" not in response.headers
    assert local_client.get("/me").json()["user"] is None


@pytest.mark.parametrize(
    ("base_url", "peer", "headers"),
    [
        ("https://testserver", LOOPBACK_PEER, {}),
        ("https://app.example", LOOPBACK_PEER, {}),
        (LOCAL_HTTPS, ("203.0.113.9", 4000), {}),
        (LOCAL_HTTPS, ("testclient", 50000), {}),
        (LOCAL_HTTPS, LOOPBACK_PEER, {"x-forwarded-for": "203.0.113.9"}),
        (LOCAL_HTTPS, LOOPBACK_PEER, {"forwarded": "for=203.0.113.9"}),
        (LOCAL_HTTPS, LOOPBACK_PEER, {"x-real-ip": "203.0.113.9"}),
        (LOCAL_HTTPS, LOOPBACK_PEER, {"origin": "https://evil.example"}),
        (LOCAL_HTTPS, LOOPBACK_PEER, {"sec-fetch-site": "cross-site"}),
    ],
)
def test_only_direct_loopback_requests_may_use_the_door(
    asgi_door: AutoSessionASGI,
    base_url: str,
    peer: tuple[str, int],
    headers: dict[str, str],
) -> None:
    client = peer_client(asgi_door, base_url, peer)
    response = client.post(DOOR, json={"user": "alice"}, headers=headers)
    assert response.status_code == 403
    assert response.json()["error"] == "autosession_refused"
    assert "set-cookie" not in response.headers


def test_door_takes_post_only(local_client: Any) -> None:
    response = local_client.get(DOOR)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


def test_oversized_body_is_refused(local_client: Any) -> None:
    response = local_client.post(DOOR, json={"user": "alice", "pad": "x" * 5000})
    assert response.status_code == 413


def test_every_other_path_passes_through_untouched(asgi_door: AutoSessionASGI) -> None:
    remote = peer_client(asgi_door, "https://app.example", ("203.0.113.9", 1))
    assert remote.get("/me").json() == {"user": None, "cart": None, "why": None}
    assert remote.post(f"{DOOR}/more", json={"user": "alice"}).status_code == 404


def test_users_may_map_names_to_ids(
    coatcheck_testing_enabled: None,
    coatcheck_async_memory_manager: AsyncSessionManager,
) -> None:
    door = AutoSessionASGI(
        starlette_app(coatcheck_async_memory_manager),
        coatcheck_async_memory_manager,
        {"admin": "user-1"},
    )
    client = peer_client(door, LOCAL_HTTPS, LOOPBACK_PEER)
    assert client.post(DOOR, json={"user": "admin"}).json() == {"user": "user-1"}
    assert client.get("/me").json()["user"] == "user-1"
    assert client.post(DOOR, json={"user": "user-1"}).status_code == 403


def test_custom_path_and_cookie(
    coatcheck_testing_enabled: None,
    coatcheck_async_memory_manager: AsyncSessionManager,
) -> None:
    settings = WebSettings.build(cookie=development())
    door = AutoSessionASGI(
        starlette_app(coatcheck_async_memory_manager, settings),
        coatcheck_async_memory_manager,
        ["alice"],
        path="/test-login",
        cookie=settings.cookie,
    )
    client = peer_client(door, "http://127.0.0.1", LOOPBACK_PEER)
    response = client.post("/test-login", json={"user": "alice"})
    assert "Secure" not in session_cookie(response, "session")
    assert client.get("/me").json()["user"] == "alice"


@pytest.mark.usefixtures("coatcheck_testing_enabled")
def test_one_user_as_a_string_and_a_warning_in_the_log(
    coatcheck_async_memory_manager: AsyncSessionManager, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="coatcheck.testing"):
        door = AutoSessionASGI(
            starlette_app(coatcheck_async_memory_manager), coatcheck_async_memory_manager, "alice"
        )
    assert door.door.users == {"alice": "alice"}
    assert "autosession door open at /__coatcheck__/autosession" in caplog.text


# -- refusing to exist -----------------------------------------------------------------------


def test_wrapper_refuses_to_construct_without_the_flag(
    coatcheck_async_memory_manager: AsyncSessionManager, coatcheck_memory_manager: SessionManager
) -> None:
    with pytest.raises(TestingNotAllowed, match="COATCHECK_TESTING"):
        AutoSessionASGI(lambda *a: None, coatcheck_async_memory_manager, ["alice"])  # type: ignore[arg-type, return-value]
    with pytest.raises(TestingNotAllowed, match="COATCHECK_TESTING"):
        AutoSessionWSGI(lambda *a: [], coatcheck_memory_manager, ["alice"])


@pytest.mark.usefixtures("coatcheck_testing_enabled")
def test_wrapper_refuses_in_production_and_on_public_binds(
    monkeypatch: pytest.MonkeyPatch, coatcheck_async_memory_manager: AsyncSessionManager
) -> None:
    with pytest.raises(TestingNotAllowed, match=r"0\.0\.0\.0"):
        AutoSessionASGI(
            lambda *a: None, coatcheck_async_memory_manager, ["alice"], bind_host="0.0.0.0"
        )  # type: ignore[arg-type, return-value]
    monkeypatch.setenv("APP_ENV", "production")
    with pytest.raises(TestingNotAllowed, match="APP_ENV"):
        AutoSessionASGI(
            lambda *a: None, coatcheck_async_memory_manager, ["alice"], bind_host="127.0.0.1"
        )  # type: ignore[arg-type, return-value]


@pytest.mark.usefixtures("coatcheck_testing_enabled")
def test_wrapper_configuration_errors(
    coatcheck_async_memory_manager: AsyncSessionManager, coatcheck_memory_manager: SessionManager
) -> None:
    app: Any = lambda *a: None  # noqa: E731
    with pytest.raises(ConfigError, match="at least one"):
        AutoSessionASGI(app, coatcheck_async_memory_manager, [])
    with pytest.raises(ConfigError, match="non-exempt"):
        AutoSessionASGI(
            app,
            coatcheck_async_memory_manager,
            ["a"],
            settings=WebSettings.build(exempt_paths=["/__coatcheck__"]),
        )
    with pytest.raises(ConfigError, match="once"):
        AutoSessionASGI(
            app,
            coatcheck_async_memory_manager,
            ["a"],
            cookie=development(),
            settings=WebSettings.build(),
        )
    with pytest.raises(TypeError, match="asynchronous"):
        AutoSessionASGI(app, coatcheck_memory_manager, ["a"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="synchronous"):
        AutoSessionWSGI(app, coatcheck_async_memory_manager, ["a"])  # type: ignore[arg-type]


# -- WSGI ------------------------------------------------------------------------------------


@pytest.fixture
def flask_door_app(
    coatcheck_testing_enabled: None, coatcheck_memory_manager: SessionManager
) -> Any:
    app = flask_app(coatcheck_memory_manager)
    app.wsgi_app = AutoSessionWSGI(
        app.wsgi_app, coatcheck_memory_manager, ["alice"], bind_host="localhost"
    )
    return app


def test_wsgi_door_with_flask(flask_door_app: Any) -> None:
    client = flask_door_app.test_client()  # Host localhost, REMOTE_ADDR 127.0.0.1
    response = client.post(DOOR, json={"user": "alice"})
    assert response.status_code == 200
    assert response.json == {"user": "alice"}
    assert response.headers["cache-control"] == "no-store"
    token = client.get_cookie("__Host-session").value
    assert token not in response.get_data(as_text=True)
    assert client.get("/me").json["user"] == "alice"


def test_wsgi_door_refusals(flask_door_app: Any) -> None:
    client = flask_door_app.test_client()
    assert client.post(DOOR, json={"user": "eve"}).status_code == 403
    remote = client.post(
        DOOR, json={"user": "alice"}, environ_overrides={"REMOTE_ADDR": "203.0.113.9"}
    )
    assert remote.status_code == 403
    assert (
        client.post(DOOR, json={"user": "alice"}, base_url="http://app.example").status_code == 403
    )
    assert client.get(DOOR).status_code == 405
    assert client.get_cookie("__Host-session") is None
    assert client.get("/me").json["user"] is None


@pytest.fixture
def loopback_server(
    coatcheck_testing_enabled: None, coatcheck_memory_manager: SessionManager
) -> Iterator[str]:
    """A real WSGI server on a loopback socket, development cookies (plain http)."""
    settings = WebSettings.build(cookie=development())
    app = flask_app(coatcheck_memory_manager, settings)
    app.wsgi_app = AutoSessionWSGI(
        app.wsgi_app, coatcheck_memory_manager, ["alice"], settings=settings, bind_host="127.0.0.1"
    )

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_real_loopback_server(loopback_server: str) -> None:
    request = urllib.request.Request(
        loopback_server + DOOR,
        data=json.dumps({"user": "alice"}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 200
        set_cookie = response.headers["set-cookie"]
    cookie = set_cookie.split(";", 1)[0]
    me = urllib.request.Request(loopback_server + "/me", headers={"cookie": cookie})
    with urllib.request.urlopen(me) as response:
        assert json.load(response)["user"] == "alice"


def test_log_in_a_plain_cookiejar_client_over_a_real_socket(
    loopback_server: str, coatcheck_memory_manager: SessionManager
) -> None:
    """Any client that keeps its cookies in an ``http.cookiejar.CookieJar`` (urllib here,
    requests likewise) can be logged in with ``log_in(..., base_url=...)``."""
    client = SimpleNamespace(cookies=CookieJar())
    log_in(
        client, coatcheck_memory_manager, "alice", cookie=development(), base_url=loopback_server
    )
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(client.cookies))
    with opener.open(loopback_server + "/me") as response:
        assert json.load(response)["user"] == "alice"
