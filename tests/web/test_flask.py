"""The Flask adapter through Flask's own test client: cookies, laziness, guards, CSRF, failures,
Flask compatibility (flash, permanent, in-place changes, session_transaction), the example app."""

from __future__ import annotations

import base64
import importlib.util
import re
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import flask
import pytest
from flask import Flask, render_template_string, request, session
from flask.testing import FlaskClient
from harness import CountingStore
from werkzeug.test import TestResponse

from coatcheck import ConfigError, FakeClock, Policy, SessionManager
from coatcheck.config import ConfigWarning
from coatcheck.core.tokens import PREFIX, TOKEN_LENGTH, TokenCodec, new_token_key
from coatcheck.stores.memory import MemoryStore
from coatcheck.web.flask import (
    CoatCheck,
    current_session,
    flash,
    fresh_login_required,
    login,
    login_required,
    logout,
    logout_other_sessions,
    policy_from_config,
    settings_from_config,
)

HTTPS = "https://localhost"
HOST_COOKIE = re.compile(
    r"__Host-session=(cc2_[A-Za-z0-9_-]{48}); Path=/; Secure; HttpOnly; SameSite=Lax"
)
BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
API = {"Accept": "application/json"}
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "flask_app" / "app.py"


@pytest.fixture
def store() -> CountingStore:
    return CountingStore()


@pytest.fixture
def manager(store: CountingStore, clock: FakeClock) -> Iterator[SessionManager]:
    made = SessionManager(store, Policy(), clock=clock)  # type: ignore[arg-type]
    yield made
    made.close()


def build_app(manager: SessionManager | None = None, **config: Any) -> Flask:
    """A small app exercising every part of the adapter."""
    app = Flask(__name__)
    app.config.update(TESTING=True, **config)
    store_url = config.pop("store_url", None)
    if manager is not None:
        CoatCheck(app, manager=manager)
    else:
        CoatCheck(app, store_url=store_url)

    @app.get("/public")
    def public() -> str:
        return "public"

    @app.get("/whoami")
    def whoami() -> dict[str, Any]:
        cs = current_session()
        return {"user": cs.user_id, "new": cs.is_new, "expired": cs.expired_reason}

    @app.get("/put")
    def put() -> dict[str, Any]:
        for key, value in request.args.items():
            session[key] = value
        return dict(session)

    @app.get("/read")
    def read() -> dict[str, Any]:
        return dict(session)

    @app.get("/token")
    def token() -> str:
        return current_session().csrf_token()

    @app.post("/form")
    def form() -> str:
        session["posted"] = True
        return "ok"

    @app.get("/login/<user>")
    def do_login(user: str) -> str:
        login(user, carry=("keep",))
        return "in"

    @app.get("/logout")
    def do_logout() -> str:
        logout()
        return "out"

    @app.get("/private")
    @login_required
    def private() -> dict[str, Any]:
        return {"user": current_session().user_id}

    @app.get("/sensitive")
    @fresh_login_required(timedelta(minutes=5))
    def sensitive() -> str:
        return "sensitive"

    @app.get("/async-private")
    @login_required
    async def async_private() -> str:
        return "async ok"

    @app.get("/assets/<path:name>")
    def asset(name: str) -> str:
        return f"asset {name}"

    return app


def cookies(response: TestResponse) -> list[str]:
    return response.headers.getlist("Set-Cookie")


def login_redirect(response: TestResponse) -> tuple[str, str, str]:
    """(login path, next, reason) of a guard's 303."""
    assert response.status_code == 303
    url = urlsplit(response.headers["Location"])
    query = parse_qs(url.query)
    return url.path, query["next"][0], query["reason"][0]


def token_of(response: TestResponse) -> str:
    (header,) = cookies(response)
    match = HOST_COOKIE.match(header)
    assert match, header
    return match.group(1)


@pytest.fixture
def app(manager: SessionManager) -> Flask:
    return build_app(manager, COATCHECK_EXEMPT_PATHS=["/assets"])


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def raw(app: Flask) -> FlaskClient:
    """A client without a cookie jar: the test writes the Cookie header itself."""
    return app.test_client(use_cookies=False)


# --- cookies ---------------------------------------------------------------------------------


def test_secure_cookie_attributes_and_no_store(client: FlaskClient) -> None:
    response = client.get(f"{HTTPS}/put?a=1")
    assert response.status_code == 200
    (header,) = cookies(response)
    assert HOST_COOKIE.fullmatch(header), header
    assert response.headers["Cache-Control"] == "no-store"
    assert "Cookie" in response.headers["Vary"]


def test_development_cookie_only_for_plain_http_loopback(manager: SessionManager) -> None:
    app = build_app(manager, COATCHECK_LOOPBACK_DEVELOPMENT=True)
    client = app.test_client()
    (local,) = cookies(client.get("http://127.0.0.1/put?a=1"))
    assert re.fullmatch(r"session=cc2_[\w-]{48}; Path=/; HttpOnly; SameSite=Lax", local)
    (tls,) = cookies(client.get("https://127.0.0.1/put?a=1"))
    assert HOST_COOKIE.fullmatch(tls)
    (public,) = cookies(client.get("http://app.example/put?a=1"))
    assert HOST_COOKIE.fullmatch(public)


def test_development_only_cookie_refuses_other_hosts(manager: SessionManager) -> None:
    from coatcheck.cookies import development
    from coatcheck.web.settings import WebSettings

    app = Flask(__name__)
    app.config["TESTING"] = True
    CoatCheck(app, manager=manager, settings=WebSettings(cookie=development()))
    app.get("/")(lambda: "home")
    client = app.test_client()
    assert client.get("http://localhost/").status_code == 200
    refused = client.get("http://app.example/", headers=API)
    assert refused.status_code == 500
    assert refused.json["error"] == "insecure_cookie_mode"
    assert "127.0.0.1" in refused.json["message"]


def test_untouched_session_costs_no_store_call(client: FlaskClient, store: CountingStore) -> None:
    client.get(f"{HTTPS}/put?a=1")
    store.calls.clear()
    response = client.get(f"{HTTPS}/public")
    assert response.text == "public"
    assert store.calls == []
    assert cookies(response) == [] and "Vary" not in response.headers


def test_first_visit_reading_the_session_costs_no_store_call(
    client: FlaskClient, store: CountingStore
) -> None:
    response = client.get(f"{HTTPS}/whoami")
    assert response.json == {"user": None, "new": True, "expired": None}
    assert store.calls == [] and cookies(response) == []


def test_set_cookie_only_when_the_token_changes(client: FlaskClient, store: CountingStore) -> None:
    first = token_of(client.get(f"{HTTPS}/put?a=1"))
    second = client.get(f"{HTTPS}/put?b=2")
    assert cookies(second) == [] and "no-store" not in second.headers.get("Cache-Control", "")
    assert client.get(f"{HTTPS}/read").json == {"a": "1", "b": "2"}
    store.calls.clear()
    assert cookies(client.get(f"{HTTPS}/read")) == []
    assert store.calls == ["load"]  # a read inside the touch interval writes nothing
    rotated = client.get(f"{HTTPS}/login/alice")
    assert token_of(rotated) != first
    assert rotated.headers["Cache-Control"] == "no-store"


def test_logout_expires_cookie_and_leaves_other_cookies(
    client: FlaskClient, raw: FlaskClient
) -> None:
    """No ``Clear-Site-Data`` by default: it would clear the whole registrable domain."""
    old = token_of(client.get(f"{HTTPS}/login/alice"))
    response = client.get(f"{HTTPS}/logout")
    assert "Clear-Site-Data" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"
    (expired,) = cookies(response)
    assert expired.startswith("__Host-session=;") and "Max-Age=0" in expired
    replay = raw.get(f"{HTTPS}/whoami", headers={"Cookie": f"__Host-session={old}"})
    assert replay.json == {"user": None, "new": True, "expired": "unknown"}


def test_clear_site_data_at_logout_when_switched_on(manager: SessionManager) -> None:
    client = build_app(manager, COATCHECK_CLEAR_SITE_DATA=True).test_client()
    client.get(f"{HTTPS}/login/alice")
    response = client.get(f"{HTTPS}/logout")
    assert response.headers["Clear-Site-Data"] == '"cookies"'
    assert response.headers["Cache-Control"] == "no-store"
    (expired,) = cookies(response)
    assert expired.startswith("__Host-session=;") and "Max-Age=0" in expired
    assert client.get(f"{HTTPS}/whoami").json["user"] is None


def test_exempt_path_never_touches_session(client: FlaskClient, store: CountingStore) -> None:
    client.get(f"{HTTPS}/put?a=1")
    store.calls.clear()
    response = client.get(f"{HTTPS}/assets/app.css")
    assert response.text == "asset app.css"
    assert cookies(response) == [] and store.calls == []


def test_flask_static_files_are_exempt_by_default(tmp_path: Path) -> None:
    app = Flask(__name__, static_folder=str(tmp_path), static_url_path="/static")
    assert settings_from_config(app).exempt_paths == ("/static",)
    app.config["COATCHECK_EXEMPT_PATHS"] = []
    assert settings_from_config(app).exempt_paths == ()


# --- guards ----------------------------------------------------------------------------------


def test_guard_redirects_browsers_and_answers_api_clients(client: FlaskClient) -> None:
    browser = client.get(f"{HTTPS}/private?tab=2", headers=BROWSER)
    assert login_redirect(browser) == ("/login", "/private?tab=2", "login_required")
    api = client.get(f"{HTTPS}/private", headers=API)
    assert api.status_code == 401
    assert api.json["error"] == "login_required"
    assert api.headers["Content-Type"] == "application/json"
    client.get(f"{HTTPS}/login/alice")
    assert client.get(f"{HTTPS}/private", headers=API).json == {"user": "alice"}
    assert client.get(f"{HTTPS}/async-private").text == "async ok"


def test_guard_tells_expired_from_missing(client: FlaskClient, clock: FakeClock) -> None:
    client.get(f"{HTTPS}/login/alice")
    clock.advance(Policy().idle_timeout + 1)
    browser = client.get(f"{HTTPS}/private", headers=BROWSER)
    assert login_redirect(browser) == ("/login", "/private", "session_expired")
    (expired,) = cookies(browser)
    assert "Max-Age=0" in expired  # the dead cookie is cleared


def test_api_client_sees_session_expired(raw: FlaskClient, manager: SessionManager) -> None:
    token, _ = manager.create("alice")
    manager.clock.advance(Policy().absolute_lifetime)  # type: ignore[attr-defined]
    response = raw.get(f"{HTTPS}/private", headers={**API, "Cookie": f"__Host-session={token}"})
    assert response.status_code == 401
    assert response.json["error"] == "session_expired"


def test_fresh_login_required_asks_again_after_max_age(
    client: FlaskClient, clock: FakeClock
) -> None:
    client.get(f"{HTTPS}/login/alice")
    assert client.get(f"{HTTPS}/sensitive").text == "sensitive"
    clock.advance(5 * 60 + 1)
    api = client.get(f"{HTTPS}/sensitive", headers=API)
    assert (api.status_code, api.json["error"]) == (401, "reauthenticate")
    browser = client.get(f"{HTTPS}/sensitive", headers=BROWSER)
    assert login_redirect(browser) == ("/login", "/sensitive", "reauthenticate")
    client.get(f"{HTTPS}/login/alice")
    assert client.get(f"{HTTPS}/sensitive").status_code == 200


def test_fresh_login_required_rejects_nonsense_max_age() -> None:
    with pytest.raises(ConfigError):
        fresh_login_required(0)


# --- CSRF ------------------------------------------------------------------------------------


@pytest.fixture
def csrf(client: FlaskClient) -> str:
    return client.get(f"{HTTPS}/token").text


def test_cross_origin_post_is_refused(client: FlaskClient, csrf: str) -> None:
    response = client.post(
        f"{HTTPS}/form",
        data={"csrf_token": csrf},
        headers={**API, "Origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert response.json["error"] == "csrf_origin"
    site = client.post(
        f"{HTTPS}/form", headers={"X-CSRF-Token": csrf, "Sec-Fetch-Site": "cross-site"}
    )
    assert site.status_code == 403


def test_post_without_token_is_refused(client: FlaskClient, csrf: str) -> None:
    response = client.post(f"{HTTPS}/form", data={"note": "x"}, headers=BROWSER)
    assert response.status_code == 403
    assert "CSRF token" in response.text and "<h1>Forbidden</h1>" in response.text
    wrong = client.post(f"{HTTPS}/form", headers={"X-CSRF-Token": "nope"})
    assert wrong.status_code == 403
    assert client.get(f"{HTTPS}/read").json.get("posted") is None


def test_header_or_form_token_passes(client: FlaskClient, csrf: str) -> None:
    same_origin = {"Origin": HTTPS, "Sec-Fetch-Site": "same-origin"}
    assert client.post(f"{HTTPS}/form", headers={"X-CSRF-Token": csrf, **same_origin}).text == "ok"
    assert client.post(f"{HTTPS}/form", data={"csrf_token": csrf}).text == "ok"
    multipart = client.post(f"{HTTPS}/form", data={"csrf_token": csrf, "file": (b"x", "a.txt")})
    assert multipart.text == "ok"


def test_bearer_and_cookieless_requests_are_exempt(raw: FlaskClient) -> None:
    bearer = raw.post(f"{HTTPS}/form", headers={"Authorization": "Bearer cc_api_x"})
    assert bearer.text == "ok"
    assert raw.post(f"{HTTPS}/form").text == "ok"


def test_a_bearer_header_beside_the_cookie_is_checked(client: FlaskClient) -> None:
    """The session still comes from the cookie, so the bearer header exempts nothing."""
    client.get(f"{HTTPS}/put?a=1")
    bearer = {"Authorization": "Bearer cc_api_x"}
    assert client.post(f"{HTTPS}/form", headers=bearer).status_code == 403
    cross_site = {**bearer, "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    response = client.post(f"{HTTPS}/form", headers=cross_site)
    assert (response.status_code, response.json["error"]) == (403, "csrf_origin")


def test_template_helper_renders_a_working_token(app: Flask, client: FlaskClient) -> None:
    app.get("/page")(
        lambda: render_template_string(
            '<input type="hidden" name="csrf_token" value="{{ csrf_token() }}">'
        )
    )
    page = client.get(f"{HTTPS}/page").text
    token = re.search(r'value="([^"]+)"', page)
    assert token
    assert client.post(f"{HTTPS}/form", data={"csrf_token": token.group(1)}).text == "ok"


def test_login_destroys_the_anonymous_csrf_token(client: FlaskClient, csrf: str) -> None:
    client.get(f"{HTTPS}/login/alice")
    assert client.post(f"{HTTPS}/form", headers={"X-CSRF-Token": csrf}).status_code == 403


# --- failures --------------------------------------------------------------------------------


def test_store_down_is_a_clear_503() -> None:
    app = build_app(store_url="redis://127.0.0.1:1/0")
    raw = app.test_client(use_cookies=False)
    cookie = {"Cookie": f"__Host-session={TokenCodec(new_token_key()).new_token()[0]}"}
    assert raw.get(f"{HTTPS}/public", headers=cookie).text == "public"
    api = raw.get(f"{HTTPS}/whoami", headers={**cookie, **API})
    assert api.status_code == 503
    assert api.json["error"] == "session_store_unavailable"
    assert "unavailable" in api.json["message"]
    assert api.headers["Retry-After"] == "5"
    page = raw.get(f"{HTTPS}/whoami", headers={**cookie, **BROWSER})
    assert page.status_code == 503 and "Traceback" not in page.text
    assert "session store is unavailable" in page.text
    assert raw.get(f"{HTTPS}/login/alice").status_code == 503
    app.extensions["coatcheck"].manager.close()


def test_store_failing_at_save_replaces_the_response(
    app: Flask, client: FlaskClient, store: CountingStore
) -> None:
    @app.get("/then-down")
    def then_down() -> str:
        session["x"] = 1
        store.down = True
        return "the app thinks it saved"

    client.get(f"{HTTPS}/put?a=1")
    response = client.get(f"{HTTPS}/then-down", headers=API)
    assert response.status_code == 503
    assert response.json["error"] == "session_store_unavailable"
    assert "the app thinks" not in response.text


def test_session_ended_meanwhile_is_a_409(
    app: Flask, client: FlaskClient, manager: SessionManager
) -> None:
    @app.get("/revoked-meanwhile")
    def revoked_meanwhile() -> str:
        key = current_session().state.session.key
        assert key is not None
        manager.revoke_key(key)  # another request logs this session out
        session["x"] = 1
        return "saved?"

    client.get(f"{HTTPS}/put?a=1")
    response = client.get(f"{HTTPS}/revoked-meanwhile", headers=API)
    assert response.status_code == 409
    assert response.json["error"] == "session_ended"
    assert "Max-Age=0" in cookies(response)[0]


@pytest.mark.parametrize(
    "value",
    [
        "",
        "x" * 10_240,
        "\x80\x81\xfe\xff\x01\x7f",
        PREFIX + "!" * (TOKEN_LENGTH - len(PREFIX)),
        '"' + PREFIX + "A" * (TOKEN_LENGTH - len(PREFIX)) + '"',
    ],
    ids=["empty", "10KB", "binary", "wrong-alphabet", "quoted-unknown"],
)
def test_malformed_cookie_is_an_anonymous_200(
    raw: FlaskClient, store: CountingStore, value: str
) -> None:
    response = raw.get(f"{HTTPS}/whoami", headers={"Cookie": f"__Host-session={value}"})
    assert response.status_code == 200
    assert response.json == {"user": None, "new": True, "expired": "unknown"}
    assert set(store.calls) <= {"load"}  # junk never costs more than one lookup
    assert all("Max-Age=0" in c for c in cookies(response))


def test_conflicting_cookies_cannot_write(
    raw: FlaskClient, manager: SessionManager, app: Flask
) -> None:
    a, _ = manager.create("alice")
    b, _ = manager.create("mallory")
    both = {"Cookie": f"__Host-session={a}; __Host-session={b}", **API}
    assert raw.get(f"{HTTPS}/whoami", headers=both).json["user"] is None
    response = raw.get(f"{HTTPS}/put?x=1", headers=both)
    assert response.status_code == 400
    assert response.json["error"] == "conflicting_session_cookies"


# --- Flask compatibility ---------------------------------------------------------------------


def test_flask_flash_and_get_flashed_messages(app: Flask, client: FlaskClient) -> None:
    @app.get("/flash")
    def do_flash() -> str:
        flask.flash("hello", "info")
        flask.flash("again")
        return "flashed"

    @app.get("/show")
    def show() -> dict[str, Any]:
        return {"messages": [list(m) for m in flask.get_flashed_messages(with_categories=True)]}

    client.get(f"{HTTPS}/flash")
    assert client.get(f"{HTTPS}/show").json == {
        "messages": [["info", "hello"], ["message", "again"]]
    }
    assert client.get(f"{HTTPS}/show").json == {"messages": []}


def test_coatcheck_flash_shows_in_templates_next_to_flask_flash(
    app: Flask, client: FlaskClient
) -> None:
    @app.get("/both")
    def both() -> str:
        flask.flash("from flask", "info")
        flash("from coatcheck", "warning")
        return "ok"

    @app.get("/page")
    def page() -> str:
        return render_template_string(
            "{% for c, m in get_flashed_messages(with_categories=true) %}[{{ c }}:{{ m }}]"
            "{% endfor %}|{{ get_flashed_messages(category_filter=['warning'])|join(',') }}"
        )

    client.get(f"{HTTPS}/both")
    assert client.get(f"{HTTPS}/page").text == (
        "[info:from flask][warning:from coatcheck]|from coatcheck"
    )
    assert client.get(f"{HTTPS}/page").text == "|"


def test_in_place_changes_are_saved(app: Flask, client: FlaskClient) -> None:
    @app.get("/cart/<item>")
    def add(item: str) -> dict[str, Any]:
        session.setdefault("cart", []).append(item)
        session.setdefault("meta", {})["last"] = item
        return {"cart": session["cart"]}

    client.get(f"{HTTPS}/cart/apple")
    assert client.get(f"{HTTPS}/cart/pear").json == {"cart": ["apple", "pear"]}
    assert client.get(f"{HTTPS}/read").json == {
        "cart": ["apple", "pear"],
        "meta": {"last": "pear"},
    }


def test_dict_api_get_pop_clear_and_modified(app: Flask, client: FlaskClient) -> None:
    @app.get("/ops")
    def ops() -> dict[str, Any]:
        before = session.modified
        popped = session.pop("a", None)
        return {
            "before": before,
            "popped": popped,
            "after": session.modified,
            "missing": session.get("zzz", "default"),
        }

    @app.get("/clear")
    def clear() -> str:
        session.clear()
        return "cleared"

    client.get(f"{HTTPS}/put?a=1&b=2")
    assert client.get(f"{HTTPS}/ops").json == {
        "before": False,
        "popped": "1",
        "after": True,
        "missing": "default",
    }
    client.get(f"{HTTPS}/clear")
    assert client.get(f"{HTTPS}/read").json == {}


def test_clear_logs_a_user_out(app: Flask, client: FlaskClient) -> None:
    @app.get("/clear")
    def clear() -> str:
        session.clear()
        return "cleared"

    client.get(f"{HTTPS}/login/alice")
    response = client.get(f"{HTTPS}/clear")
    assert "Max-Age=0" in cookies(response)[0]
    assert "Clear-Site-Data" not in response.headers
    assert client.get(f"{HTTPS}/whoami").json["user"] is None


def test_logout_then_flash_starts_a_fresh_session(manager: SessionManager) -> None:
    """Even with ``COATCHECK_CLEAR_SITE_DATA`` no ``Clear-Site-Data``: it would delete the
    fresh session's new cookie."""
    app = build_app(manager, COATCHECK_CLEAR_SITE_DATA=True)
    client, raw = app.test_client(), app.test_client(use_cookies=False)

    @app.get("/bye")
    def bye() -> str:
        logout()
        flask.flash("logged out")
        return "bye"

    old = token_of(client.get(f"{HTTPS}/login/alice"))
    response = client.get(f"{HTTPS}/bye")
    assert token_of(response) != old  # a new anonymous session carries the flash
    assert "Clear-Site-Data" not in response.headers
    assert (
        raw.get(f"{HTTPS}/whoami", headers={"Cookie": f"__Host-session={old}"}).json["expired"]
        == "unknown"
    )
    assert client.get(f"{HTTPS}/read").json == {"_flashes": [["message", "logged out"]]}
    assert client.get(f"{HTTPS}/whoami").json["user"] is None


def test_permanent_gives_the_cookie_a_max_age(app: Flask, client: FlaskClient) -> None:
    @app.get("/remember")
    def remember() -> str:
        session.permanent = True
        return "remembered"

    @app.get("/forget")
    def forget() -> str:
        session.permanent = False
        return "forgotten"

    plain = client.get(f"{HTTPS}/login/alice")
    assert "Max-Age" not in cookies(plain)[0]
    remembered = client.get(f"{HTTPS}/remember")
    (header,) = cookies(remembered)
    assert f"Max-Age={int(Policy().absolute_lifetime)}" in header  # re-issued, new token
    assert token_of(plain) != header.split(";")[0].split("=", 1)[1]
    assert cookies(client.get(f"{HTTPS}/remember")) == []  # unchanged: nothing re-issued
    assert client.get(f"{HTTPS}/whoami").json["user"] == "alice"
    assert "Max-Age" not in cookies(client.get(f"{HTTPS}/forget"))[0]


def test_permanent_survives_login(app: Flask, client: FlaskClient) -> None:
    @app.get("/remember-then-login")
    def remember_then_login() -> str:
        session.permanent = True
        login("alice")
        return "in"

    (header,) = cookies(client.get(f"{HTTPS}/remember-then-login"))
    assert "Max-Age=" in header


def test_login_carries_only_named_keys(client: FlaskClient) -> None:
    client.get(f"{HTTPS}/put?keep=1&drop=2")
    client.get(f"{HTTPS}/login/alice")
    assert client.get(f"{HTTPS}/read").json == {"keep": "1"}


def test_session_transaction_for_tests(client: FlaskClient) -> None:
    with client.session_transaction(HTTPS) as prepared:
        prepared["theme"] = "dark"
    assert client.get(f"{HTTPS}/read").json == {"theme": "dark"}


def test_logout_other_sessions(app: Flask, manager: SessionManager) -> None:
    app.get("/others")(lambda: {"ended": logout_other_sessions()})
    phone, laptop = app.test_client(), app.test_client()
    phone.get(f"{HTTPS}/login/alice")
    laptop.get(f"{HTTPS}/login/alice")
    assert laptop.get(f"{HTTPS}/others").json == {"ended": 1}
    assert phone.get(f"{HTTPS}/whoami").json["user"] is None
    assert laptop.get(f"{HTTPS}/whoami").json["user"] == "alice"


def test_non_json_value_fails_at_the_line_that_sets_it(app: Flask, client: FlaskClient) -> None:
    from coatcheck import SessionDataError

    @app.get("/bad")
    def bad() -> str:
        try:
            session["when"] = object()
        except SessionDataError as exc:
            return f"refused: {exc}"
        return "stored"

    assert client.get(f"{HTTPS}/bad").text.startswith("refused: session value for key 'when'")


def test_writes_after_the_response_started_are_refused(app: Flask, client: FlaskClient) -> None:
    @app.get("/stream")
    def stream() -> Any:
        session["before"] = 1

        def body() -> Iterator[str]:
            yield "a"
            session["late"] = 1  # the headers (and the session's save) are already done
            yield "b"

        return flask.stream_with_context(body())

    response = client.get(f"{HTTPS}/stream")
    with pytest.raises(RuntimeError, match="already saved"):
        response.get_data()
    assert client.get(f"{HTTPS}/read").json == {"before": 1}


def test_concurrent_requests_changing_different_keys_both_win(
    app: Flask, client: FlaskClient
) -> None:
    """Request A loads the session, request B (same cookie) runs to completion in the middle
    of A, then A saves: both keys survive (patches, not whole-session overwrites)."""
    other = app.test_client(use_cookies=False)

    @app.get("/slow")
    def slow() -> dict[str, Any]:
        seen = dict(session)
        cookie = request.headers["Cookie"]
        inner = other.get(f"{HTTPS}/put?b=2", headers={"Cookie": cookie})
        assert inner.status_code == 200
        session["a"] = "1"
        return seen

    client.get(f"{HTTPS}/put?start=0")
    assert client.get(f"{HTTPS}/slow").json == {"start": "0"}
    assert client.get(f"{HTTPS}/read").json == {"start": "0", "a": "1", "b": "2"}


# --- configuration ---------------------------------------------------------------------------


def test_config_keys_build_settings_and_policy() -> None:
    app = Flask(__name__)
    app.config.update(
        COATCHECK_COOKIE_NAME="__Secure-shop",
        COATCHECK_COOKIE_PATH="/shop",
        COATCHECK_COOKIE_SAMESITE="strict",
        COATCHECK_COOKIE_PERSISTENT="true",
        COATCHECK_EXEMPT_PATHS="/shop/static, /health",
        COATCHECK_TRUSTED_PROXIES=["10.0.0.0/8"],
        COATCHECK_TRUSTED_ORIGINS="https://admin.example",
        COATCHECK_LOGIN_URL="/shop/login",
        COATCHECK_IDLE_TIMEOUT=timedelta(minutes=10),
        COATCHECK_ABSOLUTE_LIFETIME="3600",
        COATCHECK_MAX_SESSIONS_PER_USER=2,
    )
    settings = settings_from_config(app)
    assert settings.cookie.set_cookie("t") == (
        "__Secure-shop=t; Path=/shop; Secure; HttpOnly; SameSite=Strict"
    )
    assert settings.cookie.persistent
    assert settings.exempt_paths == ("/shop/static", "/health")
    assert settings.trusted_origins == frozenset({"https://admin.example"})
    assert settings.login_url == "/shop/login"
    policy = policy_from_config(app)
    assert (policy.idle_timeout, policy.absolute_lifetime) == (600, 3600)
    assert policy.max_sessions_per_user == 2


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("COATCHECK_CSRF", "maybe", "COATCHECK_CSRF"),
        ("COATCHECK_COOKIE_SAMESITE", "sometimes", "COATCHECK_COOKIE_SAMESITE"),
        ("COATCHECK_IDLE_TIMEOUT", "soon", "COATCHECK_IDLE_TIMEOUT"),
        ("COATCHECK_EXEMPT_PATHS", 7, "COATCHECK_EXEMPT_PATHS"),
        ("COATCHECK_MAX_SESSIONS_PER_USER", 1.5, "COATCHECK_MAX_SESSIONS_PER_USER"),
        ("COATCHECK_LOGIN_URL", "https://evil.example/login", "login_url"),
        ("COATCHECK_COOKIE_NAME", "bad name", "cookie name"),
    ],
)
def test_bad_config_is_refused_by_name(key: str, value: Any, named: str) -> None:
    app = Flask(__name__)
    app.config[key] = value

    def read_config() -> None:
        settings_from_config(app)
        policy_from_config(app)

    with pytest.raises(ConfigError, match=named):
        read_config()


def test_default_store_is_sqlite_in_the_instance_folder(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.delenv("COATCHECK_STORE_URL", raising=False)
    app = Flask(__name__, instance_path=str(tmp_path / "instance"))
    ext = CoatCheck(app)
    assert ext.manager.store.url == f"sqlite:///{tmp_path / 'instance' / 'coatcheck.db'}"
    ext.manager.close()


def test_manager_and_store_url_are_exclusive(manager: SessionManager) -> None:
    with pytest.raises(ConfigError):
        CoatCheck(manager=manager, store_url="memory://")


# --- the example app -------------------------------------------------------------------------


@pytest.fixture
def example(monkeypatch: Any) -> Iterator[Callable[..., Flask]]:
    monkeypatch.setenv("COATCHECK_STORE_URL", "memory://")
    spec = importlib.util.spec_from_file_location("coatcheck_flask_example", EXAMPLE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    made: list[Flask] = [module.app]

    def create(**kwargs: Any) -> Flask:
        made.append(module.create_app(**kwargs))
        return made[-1]

    yield create
    for app in made:
        app.extensions["coatcheck"].manager.close()
    sys.modules.pop(spec.name, None)


def form_token(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def test_example_login_me_note_logout(example: Callable[..., Flask]) -> None:
    client = example().test_client()
    base = "http://127.0.0.1"
    assert client.get(f"{base}/").status_code == 200
    me_first = client.get(f"{base}/me", headers=BROWSER)
    assert login_redirect(me_first) == ("/login", "/me", "login_required")
    assert client.get(f"{base}/me", headers=API).json["error"] == "login_required"
    page = client.get(f"{base}/login?next=/note", headers=BROWSER)
    assert 'name="next" value="/note"' in page.text
    token = form_token(page.text)
    wrong = client.post(
        f"{base}/login", data={"username": "alice", "password": "nope", "csrf_token": token}
    )
    assert wrong.status_code == 401 and "Wrong username or password" in wrong.text
    ok = client.post(
        f"{base}/login",
        data={
            "username": "alice",
            "password": "alice-password",
            "csrf_token": token,
            "next": "//evil.example/",
        },
    )
    assert (ok.status_code, ok.headers["Location"]) == (303, "/me")
    assert re.match(r"session=cc2_[\w-]{48}; Path=/; HttpOnly; SameSite=Lax", cookies(ok)[0])
    assert client.get(f"{base}/me", headers=API).json["user"] == "alice"
    me = client.get(f"{base}/me", headers=BROWSER)
    assert "alice" in me.text and 'action="/logout"' in me.text
    note = client.get(f"{base}/note").text
    saved = client.post(f"{base}/note", data={"note": "hi", "csrf_token": form_token(note)})
    assert saved.status_code == 303
    after = client.get(f"{base}/note").text
    assert "saved" in after and "hi" in after
    assert "saved" not in client.get(f"{base}/note").text
    out = client.post(f"{base}/logout", data={"csrf_token": form_token(after)})
    assert (out.status_code, out.headers["Location"]) == (303, "/")
    assert "Max-Age=0" in cookies(out)[0] and "Clear-Site-Data" not in out.headers
    assert client.get(f"{base}/me", headers=API).status_code == 401


def test_example_scripts_static_and_counter(example: Callable[..., Flask]) -> None:
    client = example().test_client()
    base = "http://127.0.0.1"
    assert client.get(f"{base}/counter").json == {"count": 1}
    assert client.get(f"{base}/counter").json == {"count": 2}
    static = client.get(f"{base}/static/hello.txt")
    assert static.status_code == 200 and cookies(static) == []
    token = client.get(f"{base}/csrf").json["csrf_token"]
    assert client.post(f"{base}/keys/k1").status_code == 403
    done = client.post(f"{base}/keys/k1", headers={"X-CSRF-Token": token})
    assert done.json == {"set": "k1"}
    assert client.post(f"{base}/keys/_csrf", headers={"X-CSRF-Token": token}).status_code == 422
    assert client.get(f"{base}/keys").json == {"keys": ["count", "k1"]}


def test_example_uses_secure_cookies_off_loopback(example: Callable[..., Flask]) -> None:
    client = example().test_client()
    (header,) = cookies(client.get("https://app.example/counter"))
    assert HOST_COOKIE.match(header)


def test_example_session_expiry_with_injected_clock(example: Callable[..., Flask]) -> None:
    clock = FakeClock()
    app = example(manager=SessionManager(MemoryStore(), clock=clock))
    client = app.test_client()
    page = client.get("http://127.0.0.1/login").text
    client.post(
        "http://127.0.0.1/login",
        data={"username": "alice", "password": "alice-password", "csrf_token": form_token(page)},
    )
    clock.advance(Policy().idle_timeout + 1)
    expired = client.get("http://127.0.0.1/me", headers=API)
    assert (expired.status_code, expired.json["error"]) == (401, "session_expired")
    page = client.get("http://127.0.0.1/login?reason=session_expired").text
    assert "Your session has expired" in page


def test_the_token_key_comes_from_the_app_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """COATCHECK_TOKEN_KEY in app.config reaches the manager, like every COATCHECK_* key."""
    monkeypatch.delenv("COATCHECK_TOKEN_KEY", raising=False)
    key = new_token_key()
    app = build_app(
        COATCHECK_STORE_URL="memory://",
        COATCHECK_TOKEN_KEY=base64.urlsafe_b64encode(key).decode(),
    )
    manager = app.extensions["coatcheck"].manager
    try:
        assert manager.token_codec().same_key(TokenCodec(key))
    finally:
        manager.close()


def test_the_deployment_names_fall_back_to_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The store and the keys may live in the environment, the rest in app.config: the one
    reader takes the deployment's names from the environment when the config lacks them."""
    key = new_token_key()
    monkeypatch.setenv("COATCHECK_STORE_URL", "memory://")
    monkeypatch.setenv("COATCHECK_TOKEN_KEY", base64.urlsafe_b64encode(key).decode())
    monkeypatch.setenv("COATCHECK_IDLE_TIMEOUT", "1m")  # not a deployment name: app.config's
    app = build_app(COATCHECK_IDLE_TIMEOUT="10m")
    manager = app.extensions["coatcheck"].manager
    try:
        assert manager.store.url == "memory://"
        assert manager.token_codec().same_key(TokenCodec(key))
        assert manager.policy.idle_timeout == 600
    finally:
        manager.close()


def test_the_log_key_comes_from_the_app_config() -> None:
    """Two apps with one COATCHECK_LOG_KEY log the same id for the same session."""
    apps = [
        build_app(COATCHECK_STORE_URL="memory://", COATCHECK_LOG_KEY="shared") for _ in range(2)
    ]
    managers = [app.extensions["coatcheck"].manager for app in apps]
    try:
        key = managers[0].token_codec().parse(managers[0].create("alice")[0])
        assert managers[0].events.session_id(key) == managers[1].events.session_id(key)
    finally:
        for made in managers:
            made.close()


def test_an_unknown_config_name_is_warned_about() -> None:
    with pytest.warns(ConfigWarning, match="did you mean COATCHECK_IDLE_TIMEOUT"):
        app = build_app(COATCHECK_STORE_URL="memory://", COATCHECK_IDLE_TIMOUT="5m")
    app.extensions["coatcheck"].manager.close()


def test_the_public_import_path_is_the_package() -> None:
    """Split by job inside, one import path outside: every name the module used to offer."""
    import coatcheck.web.flask as package

    for name in package.__all__:
        assert getattr(package, name) is not None, name
    assert package.FlaskSession.__module__ == "coatcheck.web.flask.session"
    assert {"CoatCheck", "login_required", "policy_from_config", "error_response"} <= set(
        package.__all__
    )
