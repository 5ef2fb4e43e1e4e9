"""The people's pages of ``coatcheck serve`` over HTTP (httpx against the ASGI app, on SQLite):
login, throttling, CSRF, logout, the sessions page, API tokens, the expired page, sign-up and
the test door."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from coatcheck import FakeClock
from coatcheck.service.context import ServiceContext
from coatcheck.service.pages import pages_app
from coatcheck.service.settings import load_service_settings
from coatcheck.testing.guard import TestingNotAllowed

PASSWORDS = {"alice": "alice-password-1", "bob": "bob-password-1"}
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
    "like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
HTML = {"accept": "text/html,application/xhtml+xml"}
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
COOKIE = "session"


class Browser:
    """A browser-like httpx client (HTML Accept, a cookie jar, a user agent) that keeps every
    page it was shown, so a test can look for secrets in all of them."""

    def __init__(self, service: Service, *, agent: str, peer: str = "127.0.0.1") -> None:
        self.service = service
        transport = httpx.ASGITransport(app=service.app, client=(peer, 50123))
        self.client = httpx.AsyncClient(
            transport=transport,
            base_url="http://127.0.0.1",
            headers={**HTML, "user-agent": agent},
        )
        self.pages: list[tuple[str, str]] = []
        self.cookies_seen: set[str] = set()

    def request(self, method: str, path: str, **options: Any) -> httpx.Response:
        response: httpx.Response = self.service.run(self.client.request(method, path, **options))
        if response.headers.get("content-type", "").startswith("text/html"):
            self.pages.append((path, response.text))
        if COOKIE in self.client.cookies:
            self.cookies_seen.add(self.client.cookies[COOKIE])
        self.service.browsers.append(self)
        return response

    def get(self, path: str, **options: Any) -> httpx.Response:
        return self.request("GET", path, **options)

    def post(self, path: str, data: Mapping[str, str] | None = None, **opt: Any) -> httpx.Response:
        return self.request("POST", path, data=data, **opt)

    def csrf(self, path: str = "/login") -> str:
        found = CSRF_FIELD.search(self.get(path).text)
        assert found, f"no CSRF field on {path}"
        return found.group(1)

    def submit(self, path: str, fields: Mapping[str, str], page: str) -> httpx.Response:
        """Post a form the way a browser does: with the token from the page that shows it."""
        return self.post(path, {**fields, "csrf_token": self.csrf(page)})

    def login(self, user: str = "alice", password: str | None = None) -> httpx.Response:
        fields = {"username": user, "password": password or PASSWORDS[user]}
        return self.submit("/login", fields, "/login")

    @property
    def cookie(self) -> str | None:
        return self.client.cookies.get(COOKIE)


class Service:
    def __init__(self, ctx: ServiceContext, runner: asyncio.Runner, clock: FakeClock) -> None:
        self.ctx = ctx
        self.runner = runner
        self.clock = clock
        self.app = pages_app(ctx)
        self.browsers: list[Browser] = []

    def run(self, coroutine: Any) -> Any:
        return self.runner.run(coroutine)

    def browser(self, agent: str = FIREFOX, **options: Any) -> Browser:
        return Browser(self, agent=agent, **options)


def make_service(
    tmp_path: Path, runner: asyncio.Runner, clock: FakeClock, **overrides: object
) -> Service:
    settings = load_service_settings(
        None,
        {},
        {"store_url": f"sqlite:///{tmp_path}/service.db", "data_dir": tmp_path, **overrides},
    )
    ctx = ServiceContext.build(settings, clock=clock)
    for name, password in PASSWORDS.items():
        runner.run(ctx.users.add(name, password))
    return Service(ctx, runner, clock)


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as runner:
        yield runner


@pytest.fixture
def build(tmp_path: Path, runner: asyncio.Runner, clock: FakeClock) -> Iterator[Any]:
    made: list[Service] = []

    def build(**overrides: object) -> Service:
        folder = tmp_path / str(len(made))
        folder.mkdir()
        made.append(make_service(folder, runner, clock, **overrides))
        return made[-1]

    yield build
    for service in made:
        for browser in service.browsers:
            runner.run(browser.client.aclose())
        runner.run(service.ctx.close())


@pytest.fixture
def service(build: Any) -> Service:
    made: Service = build()
    return made


# -- login --------------------------------------------------------------------------------


def test_login_rotates_the_session_and_goes_to_the_sessions_page(service: Service) -> None:
    browser = service.browser()
    browser.get("/login")
    anonymous = browser.cookie
    assert anonymous is not None, "the login form's CSRF token lives in an anonymous session"
    response = browser.login()
    assert response.status_code == 303
    assert response.headers["location"] == "/account/sessions"
    assert browser.cookie not in (None, anonymous)
    page = browser.get("/account/sessions")
    assert page.status_code == 200
    assert '<strong id="user">alice</strong>' in page.text
    assert "This device" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "script-src" not in page.headers["content-security-policy"]
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert '<html lang="en">' in page.text


def test_login_goes_to_a_safe_next_page_only(service: Service) -> None:
    browser = service.browser()
    fields = {"username": "alice", "password": PASSWORDS["alice"], "next": "/account/tokens"}
    assert browser.submit("/login", fields, "/login").headers["location"] == "/account/tokens"
    other = service.browser()
    fields["next"] = "//evil.example/"
    assert other.submit("/login", fields, "/login").headers["location"] == "/account/sessions"


def test_a_protected_page_sends_the_browser_to_log_in_and_back(service: Service) -> None:
    browser = service.browser()
    response = browser.get("/account/tokens")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=/account/tokens")
    form = browser.get(response.headers["location"])
    assert 'name="next" value="/account/tokens"' in form.text
    assert "Please log in to continue." in form.text
    assert browser.get("/").headers["location"] == "/login"
    browser.login()
    assert browser.get("/").headers["location"] == "/account/sessions"


def test_an_api_client_gets_401_json_from_a_protected_page(service: Service) -> None:
    browser = service.browser()
    response = browser.get("/account/sessions", headers={"accept": "application/json"})
    assert response.status_code == 401
    assert response.json()["error"] == "login_required"


def test_wrong_password_and_unknown_user(service: Service) -> None:
    browser = service.browser()
    for user, password in (("alice", "wrong"), ("nobody", "whatever"), ("bad name!", "x")):
        response = browser.login(user, password)
        assert response.status_code == 401
        assert "Wrong username or password." in response.text
    assert browser.get("/account/sessions").status_code == 303


def test_credentials_in_the_query_string_are_not_read(service: Service) -> None:
    browser = service.browser()
    token = browser.csrf()
    query = {"username": "alice", "password": PASSWORDS["alice"]}
    response = browser.post("/login", {"csrf_token": token}, params=query)
    assert response.status_code == 401
    assert browser.get("/account/sessions").status_code == 303


def assert_wait(refused: httpx.Response, window: int) -> None:
    """The lock lasts until the end of the throttle's window: the page says how long, in
    whole minutes, and ``Retry-After`` in seconds, and they agree."""
    seconds = int(refused.headers["retry-after"])
    assert 1 <= seconds <= window
    found = re.search(r"Too many attempts\. Please try again in (\d+) minutes?\.", refused.text)
    assert found, "the page says how long to wait"
    assert int(found.group(1)) == max(1, -(-seconds // 60))


def test_failed_logins_are_throttled_per_account(service: Service) -> None:
    browser = service.browser()
    for _ in range(5):
        assert browser.login("alice", "wrong").status_code == 401
    refused = browser.login("alice")  # the right password, too late
    assert refused.status_code == 429
    assert_wait(refused, 300)
    assert service.browser().login("bob").status_code == 303, "other accounts are not blocked"
    service.clock.advance(301)
    assert browser.login("alice").status_code == 303


def test_failed_logins_are_throttled_per_ip(build: Any) -> None:
    service = build(login_limit_ip="3/10m")
    browser = service.browser()
    for name in ("carol", "dave", "erin"):
        assert browser.login(name, "guess").status_code == 401
    refused = service.browser().login("alice")
    assert refused.status_code == 429
    assert_wait(refused, 600)
    elsewhere = service.browser(peer="127.0.0.2")
    assert elsewhere.login("alice").status_code == 303


def test_login_needs_the_forms_csrf_token(service: Service) -> None:
    browser = service.browser()
    fields = {"username": "alice", "password": PASSWORDS["alice"]}
    assert browser.post("/login", fields).status_code == 403, "no session, no token"
    browser.get("/login")
    refused = browser.post("/login", {**fields, "csrf_token": "forged"})
    assert refused.status_code == 403
    assert browser.get("/account/sessions").status_code == 303


def test_cross_site_and_tokenless_posts_are_refused(service: Service) -> None:
    browser = service.browser()
    browser.login()
    token = browser.csrf("/account/sessions")
    evil = {"origin": "http://evil.example", "sec-fetch-site": "cross-site"}
    assert browser.post("/logout", {"csrf_token": token}, headers=evil).status_code == 403
    assert browser.post("/logout", {}).status_code == 403
    assert browser.post("/logout", {"csrf_token": "forged"}).status_code == 403
    assert browser.get("/account/sessions").status_code == 200, "still logged in"


# -- logout -------------------------------------------------------------------------------


def test_logout_ends_the_session_server_side(service: Service) -> None:
    browser = service.browser()
    browser.login()
    old = browser.cookie
    assert old is not None
    response = browser.post("/logout", {"csrf_token": browser.csrf("/account/sessions")})
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert "You have logged out." in browser.get("/login").text
    assert browser.get("/account/sessions").headers["location"].startswith("/login?")
    replay = service.browser()
    replay.client.cookies.set(COOKIE, old)
    assert replay.get("/account/sessions").headers["location"].startswith("/expired")
    events = service.run(service.ctx.events.after(0))
    assert len(events) == 1, "the logout is announced on the revocation stream"


# -- sessions page ------------------------------------------------------------------------


def session_ids(page: str) -> list[str]:
    return re.findall(r'name="id" value="([0-9a-f]+)"', page)


def test_sessions_page_lists_devices_and_marks_this_one(service: Service) -> None:
    laptop, phone = service.browser(FIREFOX), service.browser(IPHONE)
    laptop.login()
    phone.login()
    service.run(service.ctx.tokens.create("alice", "a script"))
    page = laptop.get("/account/sessions").text
    assert "Firefox 128 on Linux" in page
    assert "Safari 17 on iOS 17" in page
    assert "2 active sessions" in page, "the API token is not a session here"
    assert page.count("This device") == 1
    assert page.index("Firefox 128 on Linux") < page.index("This device") < page.index("Safari")
    assert "127.0.0.1" in page
    assert "just now" in page


def test_ending_another_session_sends_it_to_the_expired_page(service: Service) -> None:
    laptop, phone = service.browser(FIREFOX), service.browser(IPHONE)
    laptop.login()
    phone.login()
    page = laptop.get("/account/sessions").text
    mine = re.search(r'id="session-([0-9a-f]+)" class="session current"', page)
    assert mine
    other = next(i for i in session_ids(page) if i != mine.group(1))
    ended = laptop.submit("/account/sessions/end", {"id": other}, "/account/sessions")
    assert ended.status_code == 303
    assert "The session has ended." in laptop.get("/account/sessions").text
    moved = phone.get("/account/sessions")
    assert moved.status_code == 303
    assert moved.headers["location"] == "/expired?next=%2Faccount%2Fsessions"
    expired = phone.get(moved.headers["location"])
    assert "Your session has expired" in expired.text
    assert 'href="/login"' in expired.text
    again = laptop.submit("/account/sessions/end", {"id": other}, "/account/sessions")
    assert again.status_code == 303
    assert "That session had already ended." in laptop.get("/account/sessions").text


def test_a_user_cannot_end_someone_elses_session(service: Service) -> None:
    alice, bob = service.browser(), service.browser()
    alice.login("alice")
    bob.login("bob")
    bobs = session_ids(bob.get("/account/sessions").text)[0]
    for forged in (bobs, "not-an-id", "", "f" * 16):
        alice.submit("/account/sessions/end", {"id": forged}, "/account/sessions")
        assert "That session had already ended." in alice.get("/account/sessions").text
    assert bob.get("/account/sessions").status_code == 200


def test_ending_this_session_logs_out(service: Service) -> None:
    browser = service.browser()
    browser.login()
    page = browser.get("/account/sessions").text
    mine = session_ids(page)[0]
    response = browser.submit("/account/sessions/end", {"id": mine}, "/account/sessions")
    assert response.headers["location"] == "/login"
    assert browser.get("/account/sessions").headers["location"].startswith("/login?")


def test_end_all_others_right_after_login_needs_no_password(service: Service) -> None:
    browsers = [service.browser() for _ in range(3)]
    for browser in browsers:
        browser.login()
    first = browsers[0]
    page = first.get("/account/sessions").text
    assert 'name="password"' not in page
    before = first.cookie
    response = first.submit("/account/sessions/end-others", {}, "/account/sessions")
    assert response.status_code == 303
    assert first.cookie != before, "this device got a fresh token"
    assert "2 other sessions ended." in first.get("/account/sessions").text
    for other in browsers[1:]:
        assert other.get("/account/sessions").headers["location"].startswith("/expired")
    assert "1 active session" in first.get("/account/sessions").text


def test_end_all_others_after_a_while_asks_for_the_password(service: Service) -> None:
    first, second = service.browser(), service.browser()
    first.login()
    second.login()
    service.clock.advance(service.ctx.settings.reauth_after + 1)
    page = first.get("/account/sessions").text
    assert '<label for="password">Your password</label>' in page
    refused = first.submit("/account/sessions/end-others", {}, "/account/sessions")
    assert refused.status_code == 401
    assert "nothing was ended" in refused.text
    wrong = first.submit("/account/sessions/end-others", {"password": "wrong"}, "/account/sessions")
    assert wrong.status_code == 401
    assert second.get("/account/sessions").status_code == 200
    fields = {"password": PASSWORDS["alice"]}
    done = first.submit("/account/sessions/end-others", fields, "/account/sessions")
    assert done.status_code == 303
    assert second.get("/account/sessions").headers["location"].startswith("/expired")
    page = first.get("/account/sessions").text
    assert "1 other session ended." in page
    assert 'name="password"' not in page, "re-authenticated: the login counts as fresh"
    (record,) = service.run(service.ctx.sessions.list_user("alice"))
    assert record.authenticated_at == service.clock()


def test_reauthentication_is_throttled(service: Service) -> None:
    browser = service.browser()
    browser.login()
    service.clock.advance(service.ctx.settings.reauth_after + 1)
    for _ in range(5):
        response = browser.submit(
            "/account/sessions/end-others", {"password": "wrong"}, "/account/sessions"
        )
        assert response.status_code == 401
    fields = {"password": PASSWORDS["alice"]}
    throttled = browser.submit("/account/sessions/end-others", fields, "/account/sessions")
    assert throttled.status_code == 429
    assert "Too many attempts" in throttled.text


# -- the expired page ---------------------------------------------------------------------


def test_an_idle_expired_session_lands_on_the_expired_page(service: Service) -> None:
    browser = service.browser()
    browser.login()
    service.clock.advance(service.ctx.settings.library.policy.idle_timeout + 1)
    response = browser.get("/account/tokens")
    assert response.headers["location"] == "/expired?next=%2Faccount%2Ftokens"
    page = browser.get(response.headers["location"])
    assert page.status_code == 200
    assert 'href="/login?next=%2Faccount%2Ftokens"' in page.text
    form = browser.get("/login?next=/account/tokens&reason=session_expired")
    assert "Your session has expired. Please log in again." in form.text


# -- API tokens ---------------------------------------------------------------------------


def test_create_list_and_revoke_an_api_token(service: Service) -> None:
    browser = service.browser()
    browser.login()
    assert "You have no API tokens." in browser.get("/account/tokens").text
    fields = {"name": "backup script", "scopes": "read, write:repo", "expires_days": "30"}
    created = browser.submit("/account/tokens", fields, "/account/tokens")
    assert created.status_code == 201
    assert created.headers["cache-control"] == "no-store"
    assert created.headers["referrer-policy"] == "no-referrer"
    token = re.search(r'id="new-token" value="(cc_[A-Za-z0-9_-]+)"', created.text)
    assert token, "the token is shown once, on the response page"
    info = service.run(service.ctx.tokens.verify(token.group(1), scope="write:repo"))
    assert info is not None
    assert info.name == "backup script"
    assert info.scopes == ("read", "write:repo")
    assert info.expires_at == pytest.approx(service.clock() + 30 * 86400)
    listing = browser.get("/account/tokens").text
    assert "backup script" in listing
    assert "in 30 days" in listing
    assert token.group(1) not in listing
    revoked = browser.submit("/account/tokens/revoke", {"id": info.id}, "/account/tokens")
    assert revoked.status_code == 303
    assert "The token is revoked" in browser.get("/account/tokens").text
    assert service.run(service.ctx.tokens.verify(token.group(1))) is None
    again = browser.submit("/account/tokens/revoke", {"id": info.id}, "/account/tokens")
    assert again.status_code == 303
    assert "already been revoked" in browser.get("/account/tokens").text


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": ""}, "name"),
        ({"name": "x", "scopes": "BAD SCOPE!"}, "scope"),
        ({"name": "x", "expires_days": "0"}, "whole number of days"),
        ({"name": "x", "expires_days": "soon"}, "whole number of days"),
        ({"name": "x", "expires_days": "99999"}, "whole number of days"),
    ],
)
def test_bad_token_forms_are_refused_clearly(
    service: Service, fields: dict[str, str], message: str
) -> None:
    browser = service.browser()
    browser.login()
    response = browser.submit("/account/tokens", fields, "/account/tokens")
    assert response.status_code == 400
    assert message in re.search(r'id="error">([^<]*)<', response.text).group(1)  # type: ignore[union-attr]
    assert service.run(service.ctx.tokens.list_user("alice")) == []


def test_a_user_cannot_revoke_someone_elses_token(service: Service) -> None:
    token, info = service.run(service.ctx.tokens.create("bob", "bob's"))
    browser = service.browser()
    browser.login()
    browser.submit("/account/tokens/revoke", {"id": info.id}, "/account/tokens")
    assert "already been revoked" in browser.get("/account/tokens").text
    assert service.run(service.ctx.tokens.verify(token)) is not None


def test_an_api_token_does_not_sign_in_on_the_pages(service: Service) -> None:
    token, _ = service.run(service.ctx.tokens.create("alice", "script", scopes=["read"]))
    script = service.browser()
    bearer = {"authorization": f"Bearer {token}", "accept": "application/json"}
    assert script.get("/account/tokens", headers=bearer).status_code == 401
    minted = script.post("/account/tokens", {"name": "more"}, headers=bearer)
    assert minted.status_code == 401
    ended = script.post("/account/sessions/end-others", {}, headers=bearer)
    assert ended.status_code == 401
    assert [i.name for i in service.run(service.ctx.tokens.list_user("alice"))] == ["script"]


def test_no_secret_appears_in_any_page_but_the_token_page(service: Service) -> None:
    laptop, phone = service.browser(), service.browser(IPHONE)
    laptop.login()
    phone.login()
    fields = {"name": "ci", "scopes": "read"}
    created = laptop.submit("/account/tokens", fields, "/account/tokens")
    api_token = re.search(r'value="(cc_[^"]+)"', created.text)
    assert api_token
    for path in ("/account/sessions", "/account/tokens", "/login", "/expired"):
        laptop.get(path)
        phone.get(path)
    laptop.submit("/account/sessions/end-others", {}, "/account/sessions")
    laptop.get("/account/sessions")
    secrets = laptop.cookies_seen | phone.cookies_seen | {api_token.group(1)}
    assert len(secrets) >= 4
    for browser in (laptop, phone):
        for path, text in browser.pages:
            shown = [s for s in secrets if s in text]
            if text == created.text:
                assert shown == [api_token.group(1)]
            else:
                assert shown == [], f"a secret in the page of {path}"


# -- sign-up ------------------------------------------------------------------------------


def test_signup_is_off_by_default(service: Service) -> None:
    browser = service.browser()
    assert browser.get("/signup").status_code == 404
    assert browser.post("/signup", {"username": "carol"}).status_code in (403, 404)
    assert 'href="/signup"' not in browser.get("/login").text


def test_signup_when_switched_on(build: Any) -> None:
    service = build(signup=True)
    browser = service.browser()
    assert 'href="/signup"' in browser.get("/login").text
    fields = {"username": "carol", "password": "carol-password", "confirm": "carol-password"}
    response = browser.submit("/signup", fields, "/signup")
    assert response.status_code == 303
    assert "Welcome!" in browser.get("/account/sessions").text
    assert service.run(service.ctx.users.authenticate("carol", "carol-password")) is not None
    other = service.browser()
    assert other.submit("/signup", fields, "/signup").status_code == 409
    bad = [
        ({**fields, "username": "dave", "confirm": "different"}, "differ"),
        ({"username": "dave", "password": "short", "confirm": "short"}, "at least 8"),
        ({**fields, "username": "no spaces"}, "not a valid user name"),
    ]
    for form, message in bad:
        refused = other.submit("/signup", form, "/signup")
        assert refused.status_code == 400
        assert message in refused.text
    assert other.post("/signup", fields).status_code == 403, "no CSRF token"


# -- the test door ------------------------------------------------------------------------


def test_the_test_door_does_not_exist_without_the_flag(service: Service) -> None:
    assert service.browser().get("/autosession?user=alice").status_code == 404


def test_the_test_door_logs_a_test_user_in(build: Any) -> None:
    service = build(testing=True, test_users="alice,bob")
    browser = service.browser()
    response = browser.get("/autosession?user=bob")
    assert response.status_code == 303
    assert response.headers["location"] == "/account/sessions"
    assert '<strong id="user">bob</strong>' in browser.get("/account/sessions").text
    assert browser.cookie is not None
    assert browser.cookie not in response.text


@pytest.mark.parametrize(
    ("path", "headers", "peer"),
    [
        ("/autosession?user=mallory", {}, "127.0.0.1"),
        ("/autosession", {}, "127.0.0.1"),
        ("/autosession?user=alice", {"x-forwarded-for": "203.0.113.9"}, "127.0.0.1"),
        ("/autosession?user=alice", {"forwarded": "for=203.0.113.9"}, "127.0.0.1"),
        ("/autosession?user=alice", {"sec-fetch-site": "cross-site"}, "127.0.0.1"),
        ("/autosession?user=alice", {}, "192.0.2.10"),
    ],
)
def test_the_test_door_refuses(build: Any, path: str, headers: dict[str, str], peer: str) -> None:
    service = build(testing=True)
    browser = service.browser(peer=peer)
    assert browser.get(path, headers=headers).status_code == 403
    assert browser.get("/account/sessions").status_code == 303


def test_the_test_door_refuses_to_exist_in_production(
    build: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = build(testing=True)
    monkeypatch.setenv("APP_ENV", "production")
    with pytest.raises(TestingNotAllowed):
        pages_app(service.ctx)


# -- errors -------------------------------------------------------------------------------


def test_unknown_pages_and_methods(service: Service) -> None:
    browser = service.browser()
    page = browser.get("/nowhere")
    assert page.status_code == 404
    assert "Page not found" in page.text
    problem = browser.get("/nowhere", headers={"accept": "application/json"})
    assert problem.status_code == 404
    assert problem.headers["content-type"] == "application/problem+json"
    assert problem.json()["type"] == "urn:coatcheck:problem:not-found"
    assert browser.request("PUT", "/login").status_code == 405


def test_junk_form_bodies_get_clear_answers(service: Service) -> None:
    browser = service.browser()
    token = browser.csrf()
    junk = browser.post(
        "/login",
        content=b"\xff\xfe" * 100,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert junk.status_code == 403
    as_json = browser.post("/login", json={"username": "alice", "csrf_token": token})
    assert as_json.status_code == 403
    many = {f"f{i}": "x" for i in range(100)}
    assert browser.post("/login", {**many, "csrf_token": token}).status_code == 400
