"""The Django integration: ``SESSION_ENGINE = "coatcheck.django"`` against Django's own session
contract, and the example project through Django's test ``Client`` (login rotation, logout,
expiry by an injected clock, CSRF, store failures, malformed cookies, messages, guards)."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import django
import pytest
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.sessions.backends.base import CreateError, UpdateError
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import engines
from django.test import AsyncClient, Client, RequestFactory, override_settings
from django.urls import include, path
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_protect
from harness import CountingStore

from coatcheck import (
    ConfigError,
    FakeClock,
    Policy,
    SessionDataError,
    SessionManager,
    Verdict,
)
from coatcheck.core.tokens import PREFIX, TOKEN_LENGTH, TokenCodec, new_token_key
from coatcheck.django import SessionStore
from coatcheck.django.adapt import request_info
from coatcheck.django.apps import check_settings
from coatcheck.django.conf import get_manager, set_manager, store_url
from coatcheck.django.decorators import cacheable, fresh_login_required, login_required
from coatcheck.django.middleware import SessionMiddleware
from coatcheck.web import caching, csrf

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "django_project"
SETTINGS_MODULE = "demosite.settings"
LOCAL = {"HTTP_HOST": "127.0.0.1"}  # plain http on loopback: the development cookie
DEV_COOKIE = "session"
HOST_COOKIE = "__Host-session"
BROWSER = {"HTTP_ACCEPT": "text/html,application/xhtml+xml,*/*;q=0.8"}
API = {"HTTP_ACCEPT": "application/json"}
DAY = 24 * 3600
REMEMBER = Policy(remember_absolute_lifetime=30 * DAY, remember_idle_timeout=7 * DAY)
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


# -- set-up: the example project's settings, once per test session ----------------------------


@pytest.fixture(scope="session")
def django_project() -> None:
    if str(EXAMPLE) not in sys.path:
        sys.path.insert(0, str(EXAMPLE))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
    if os.environ["DJANGO_SETTINGS_MODULE"] != SETTINGS_MODULE:
        pytest.fail(f"Django is configured for {os.environ['DJANGO_SETTINGS_MODULE']}")
    django.setup()


@pytest.fixture
def store(django_project: None) -> CountingStore:
    return CountingStore()


@pytest.fixture
def install(store: CountingStore, clock: FakeClock) -> Iterator[Any]:
    """Installs the process-wide manager on a fresh store and the test's clock."""

    def install(policy: Policy) -> SessionManager:
        manager = SessionManager(store, policy, clock=clock)  # type: ignore[arg-type]
        set_manager(manager)
        return manager

    yield install
    set_manager(None)


@pytest.fixture
def sessions(install: Any) -> SessionManager:
    return install(Policy())


@pytest.fixture
def client(sessions: SessionManager) -> Client:
    return Client(**LOCAL)


# -- helpers ------------------------------------------------------------------------------------


def form_token(client: Client, url: str = "/login") -> str:
    response = client.get(url, **BROWSER)
    match = CSRF_FIELD.search(response.content.decode())
    assert match, response.content
    return match.group(1)


def log_in(client: Client, next_url: str = "/me") -> HttpResponse:
    token = form_token(client)
    return client.post(
        "/login",
        {"username": "alice", "password": "alice-password", "csrf_token": token, "next": next_url},
    )


def cookie(client: Client, name: str = DEV_COOKIE) -> str:
    return client.cookies[name].value


def me_json(client: Client) -> HttpResponse:
    return client.get("/me", **API)


# -- Django's session contract (SessionTestsMixin's behaviours) ---------------------------------


def test_new_session_is_untouched_and_empty(sessions: SessionManager) -> None:
    s = SessionStore()
    assert s.modified is False
    assert s.accessed is False
    assert s.session_key is None
    assert s.get("cat") is None
    assert s.accessed is True
    assert s.is_empty()


def test_mapping_operations(sessions: SessionManager) -> None:
    s = SessionStore()
    s["some key"] = 1
    assert s.modified is True
    assert s.pop("some key") == 1
    assert s.pop("some key", "default") == "default"
    assert s.pop("nothing", default=None) is None
    with pytest.raises(KeyError):
        s.pop("some key")
    assert s.setdefault("foo", "bar") == "bar"
    assert s.setdefault("foo", "baz") == "bar"
    s.update({"update key": 1})
    assert s.get("update key") == 1
    assert s.has_key("update key") and "update key" in s
    assert list(s.keys()) == ["foo", "update key"]
    assert list(s.values()) == ["bar", 1]
    assert list(s.items()) == [("foo", "bar"), ("update key", 1)]
    del s["foo"]
    assert "foo" not in s


def test_clear(sessions: SessionManager) -> None:
    s = SessionStore()
    s["x"] = 1
    s.save()
    s = SessionStore(s.session_key)
    assert list(s.items()) == [("x", 1)]
    s.modified = s.accessed = False
    s.clear()
    assert list(s.items()) == []
    assert s.accessed is True and s.modified is True
    s.save()
    assert list(SessionStore(s.session_key).items()) == []


def test_save_stores_even_an_empty_session_under_a_coatcheck_token(
    sessions: SessionManager,
) -> None:
    s = SessionStore()
    s.save()
    key = s.session_key
    assert key is not None and key.startswith(PREFIX) and len(key) == TOKEN_LENGTH
    assert s.exists(key) is True
    s["cat"] = "dog"
    s.save()
    again = SessionStore(key)
    assert again["cat"] == "dog"
    assert again.user_id is None and again.expired_reason is None


def test_save_must_create_refuses_a_stored_session(sessions: SessionManager) -> None:
    s = SessionStore()
    s.save(must_create=True)
    with pytest.raises(CreateError):
        s.save(must_create=True)


def test_create_gives_a_new_stored_key(sessions: SessionManager) -> None:
    s = SessionStore()
    s["a"] = 1
    s.create()
    first = s.session_key
    assert first is not None and s.exists(first)
    s.create()
    assert s.session_key != first
    assert SessionStore(s.session_key)["a"] == 1


def test_delete(sessions: SessionManager) -> None:
    s = SessionStore()
    s.save()
    key = s.session_key
    assert key is not None
    s.delete(key)
    assert s.exists(key) is False
    s.delete("1")  # not a token: nothing to do, no error
    s["x"] = 1
    with pytest.raises(UpdateError):  # the session is gone: saving must not resurrect it
        s.save()


def test_flush_ends_the_stored_session(sessions: SessionManager) -> None:
    s = SessionStore()
    s["foo"] = "bar"
    s.save()
    prev_key = s.session_key
    assert prev_key is not None
    s.flush()
    assert s.exists(prev_key) is False
    assert s.session_key is None
    assert s.modified is True and s.accessed is True
    assert list(s.items()) == []
    s["new"] = 1
    s.save()
    assert s.session_key not in (None, prev_key)


def test_cycle_key_rotates_and_keeps_data(sessions: SessionManager) -> None:
    s = SessionStore()
    s["a"], s["b"] = "c", "d"
    s.save()
    prev_key = s.session_key
    assert prev_key is not None
    prev_data = list(s.items())
    s.cycle_key()
    assert s.exists(prev_key) is False
    assert s.session_key not in (None, prev_key)
    assert list(s.items()) == prev_data
    assert list(SessionStore(s.session_key).items()) == prev_data


def test_cycle_key_without_a_session_cache(sessions: SessionManager) -> None:
    s = SessionStore()
    s["a"], s["b"] = "c", "d"
    s.save()
    prev_data = list(s.items())
    s = SessionStore(s.session_key)
    assert not hasattr(s, "_session_cache")
    s.cycle_key()
    assert sorted(s.items()) == sorted(prev_data)


def test_cycle_key_of_an_anonymous_session_drops_its_csrf_token(sessions: SessionManager) -> None:
    s = SessionStore()
    s["cart"] = [1, 2]
    token = s.csrf_token()
    s.save()
    s.cycle_key()  # what django.contrib.auth.login does: a login is in progress
    assert s.get(csrf.SESSION_KEY) is None
    assert s["cart"] == [1, 2]
    assert s.csrf_token() != token


def test_login_carry_limits_what_moves_to_the_new_session(sessions: SessionManager) -> None:
    s = SessionStore()
    s["cart"], s["tracking"] = [1], "x"
    s.save()
    with override_settings(COATCHECK_LOGIN_CARRY=["cart"]):
        s = SessionStore(s.session_key)
        s.cycle_key()
    assert dict(s.items()) == {"cart": [1]}


# Django itself accepts any key of 8 characters or more ("12345678").
@pytest.mark.parametrize("key", ["", "1234567", "12345678", "cc1_" + "!" * 48, "x" * 5000])
def test_keys_coatcheck_did_not_issue_are_refused(sessions: SessionManager, key: str) -> None:
    s = SessionStore()
    s._session_key = key
    assert s.session_key is None
    s = SessionStore(key)
    s.save()
    assert s.session_key != key
    assert s.get("cat") is None
    assert sessions.store.calls == ["insert"]  # type: ignore[attr-defined]


def test_session_key_is_read_only(sessions: SessionManager) -> None:
    s = SessionStore()
    with pytest.raises(AttributeError):
        s.session_key = TokenCodec(new_token_key()).new_token()[0]  # type: ignore[misc]


def test_unknown_well_formed_key_is_anonymous_with_a_reason(sessions: SessionManager) -> None:
    s = SessionStore(TokenCodec(new_token_key()).new_token()[0])
    assert s.get("x") is None
    assert s.session_key is None
    assert s.expired_reason == "unknown"


def test_values_must_be_json_and_encode_is_json(sessions: SessionManager) -> None:
    s = SessionStore()
    with pytest.raises(SessionDataError, match="when"):
        s["when"] = datetime.now()
    assert s.decode(s.encode({"a": [1, "b"]})) == {"a": [1, "b"]}


def test_concurrent_requests_changing_different_keys_both_win(sessions: SessionManager) -> None:
    s = SessionStore()
    s["shared"] = 0
    s.save()
    first, second = SessionStore(s.session_key), SessionStore(s.session_key)
    assert first["shared"] == second["shared"] == 0  # both loaded before either saved
    first["a"] = 1
    second["b"] = 2
    del second["shared"]
    first.save()
    second.save()
    assert dict(SessionStore(s.session_key).items()) == {"a": 1, "b": 2}


def test_expiry_follows_the_policy(sessions: SessionManager, clock: FakeClock) -> None:
    policy = sessions.policy
    s = SessionStore()
    assert s.get_expiry_age() == policy.idle_timeout
    assert s.get_session_cookie_age() == policy.absolute_lifetime
    s["x"] = 1
    s.save()
    clock.advance(600)
    s = SessionStore(s.session_key)
    assert s.get_expiry_age() == policy.idle_timeout  # measured from now: a request slides it
    assert s.get_expiry_date().timestamp() == clock() + policy.idle_timeout
    assert s.get_expiry_age(expiry=60) == 60
    record = s.core.record
    near_the_end = record.created_at + policy.absolute_lifetime - 100
    assert s.get_expiry_age(modification=datetime.fromtimestamp(near_the_end, tz=UTC)) == 100
    clock.advance(policy.idle_timeout)
    gone = SessionStore(s.session_key)
    assert gone.get("x") is None
    assert gone.expired_reason == "expired_idle"


def test_absolute_lifetime_ends_an_active_session(
    sessions: SessionManager, clock: FakeClock
) -> None:
    s = SessionStore()
    s.save()
    key = s.session_key
    for _ in range(int(sessions.policy.absolute_lifetime // 1200) - 1):
        clock.advance(1200)
        s = SessionStore(key)
        s["tick"] = clock()
        s.save()
    clock.advance(1200)
    assert SessionStore(key).expired_reason == "expired_absolute"


def test_set_expiry_shortens_never_extends(sessions: SessionManager, clock: FakeClock) -> None:
    s = SessionStore()
    s.set_expiry(120)
    s.save()
    key = s.session_key
    assert s.get_expiry_age() == 120
    s.set_expiry(10**9)
    assert s.get_expiry_age() == sessions.policy.idle_timeout
    s.set_expiry(120)
    s.save()
    clock.advance(121)
    late = SessionStore(key)
    assert late.get("_session_expiry") is None and late.expired_reason == "expired_idle"
    assert not late.exists(key or "")

    s = SessionStore()
    s.set_expiry(datetime.fromtimestamp(clock() + 90, tz=UTC))
    s.save()
    clock.advance(89)
    assert SessionStore(s.session_key).expired_reason is None
    clock.advance(2)
    assert SessionStore(s.session_key).expired_reason == "expired_absolute"


def test_set_expiry_zero_means_a_browser_session_cookie(sessions: SessionManager) -> None:
    s = SessionStore()
    assert s.get_expire_at_browser_close() is settings.SESSION_EXPIRE_AT_BROWSER_CLOSE
    s.set_expiry(0)
    assert s.get_expire_at_browser_close() is True
    s.set_expiry(None)
    assert "_session_expiry" not in s


def test_clear_expired_purges_the_store(
    sessions: SessionManager, store: CountingStore, clock: FakeClock
) -> None:
    s = SessionStore()
    s.save()
    key = sessions.token_codec().parse(s.session_key)
    clock.advance(sessions.policy.idle_timeout + 1)
    SessionStore.clear_expired()
    assert store.calls[-1] == "purge_expired"
    assert store.inner.load(key) is None


def test_a_saved_auth_user_makes_the_session_that_users(sessions: SessionManager) -> None:
    s = SessionStore()
    s["_auth_user_id"] = "alice"
    s.save()
    first = s.session_key
    assert s.user_id == "alice" and s.authenticated_at is not None
    assert [r.user_id for r in sessions.list_user("alice")] == ["alice"]
    # The same session handed to another user without flush(): nothing of alice's moves on.
    s = SessionStore(first)
    s["_auth_user_id"] = "bob"
    s["secret"] = "bob's"
    s.save()
    assert not s.exists(first or "")
    assert s.user_id == "bob"
    assert dict(SessionStore(s.session_key).items()) == {"_auth_user_id": "bob"}


def test_the_async_api(sessions: SessionManager) -> None:
    async def scenario() -> tuple[Any, Any, list[Any]]:
        s = SessionStore()
        await s.aset("a", 1)
        await s.asave()
        before = s.session_key
        await s.acycle_key()
        after = SessionStore(s.session_key)
        return before, await after.aget("a"), [await s.aexists(before), await s.aget_expiry_age()]

    before, value, (old_alive, age) = asyncio.run(scenario())
    assert before is not None and value == 1
    assert old_alive is False and age == sessions.policy.idle_timeout


# -- the example project over HTTP ------------------------------------------------------------


def test_public_routes_cost_no_store_call_and_set_no_cookie(
    client: Client, store: CountingStore
) -> None:
    log_in(client)
    store.calls.clear()
    for url in ("/", "/static/hello.txt"):
        response = client.get(url, **BROWSER)
        assert response.status_code == 200
        assert not response.cookies
        assert "Cookie" not in response.get("Vary", "")
    assert store.calls == []


def test_logged_in_responses_are_not_stored_unless_the_view_opts_out(client: Client) -> None:
    log_in(client)
    with override_settings(ROOT_URLCONF=__name__):
        assert not Client(**LOCAL).get("/test/cache").has_header("Cache-Control"), "anonymous"
        for url, sent in (
            ("/test/cache", "no-store"),
            ("/test/cache?cc=public, max-age=60", "no-store"),
            ("/test/cache?cc=private", "private, no-store"),
            ("/test/cache?cc=no-store, private", "no-store, private"),
            ("/test/cacheable?cc=public, max-age=60", "public, max-age=60"),
            ("/test/cacheable-class?cc=public, max-age=60", "public, max-age=60"),
        ):
            assert client.get(url)["Cache-Control"] == sent, url
        assert not client.get("/test/cacheable").has_header("Cache-Control")


def test_a_remembered_session_gets_a_persistent_cookie(install: Any) -> None:
    """SESSION_EXPIRE_AT_BROWSER_CLOSE is True in the example; "remember me" wins over it."""
    install(Policy(remember_absolute_lifetime=30 * 86400))
    client = Client(**LOCAL)
    with override_settings(ROOT_URLCONF=__name__):
        plain = client.get("/test/login-as/alice")
        remembered = client.get("/test/login-as/alice?remember=1")
    assert plain.cookies[DEV_COOKIE]["max-age"] == ""
    assert remembered.cookies[DEV_COOKIE]["max-age"] == str(30 * 86400)


def test_cacheable_is_importable_beside_the_login_guards() -> None:
    # The views of this module mark themselves with coatcheck.django.decorators.cacheable.
    assert cacheable is caching.cacheable


def record_of(manager: SessionManager, client: Client) -> Any:
    """The stored record behind ``client``'s session cookie (None if it names none)."""
    return manager.inspect(cookie(client))[1]


def test_remember_me_through_djangos_login(install: Any, clock: FakeClock) -> None:
    """``auth.login()`` then ``request.session.set_remember(True)``: the policy's remember limits
    and a persistent cookie (SESSION_EXPIRE_AT_BROWSER_CLOSE is True in the example)."""
    sessions = install(REMEMBER)
    remembered, plain = Client(**LOCAL), Client(**LOCAL)
    with override_settings(ROOT_URLCONF=__name__):
        response = remembered.get("/test/django-login/alice?remember=1")
        assert response.json() == {"expiry_age": 7 * DAY}  # get_expiry_age() knows it already
        assert response.cookies[DEV_COOKIE]["max-age"] == str(30 * DAY)
        response = plain.get("/test/django-login/alice?remember=0")
        assert response.json() == {"expiry_age": sessions.policy.idle_timeout}
        assert response.cookies[DEV_COOKIE]["max-age"] == ""  # ends with the browser
    assert record_of(sessions, remembered).remember is True
    assert record_of(sessions, plain).remember is False
    clock.advance(DAY)  # far past the normal idle timeout, within the remembered one
    assert me_json(remembered).json()["user"] == "alice"
    assert me_json(plain).json()["error"] == "session_expired"


def test_remember_me_on_a_re_login_and_off_again(install: Any) -> None:
    """Logging in again as the user already logged in is a login too (Django neither flushes
    nor cycles the session then): each one says afresh whether to remember."""
    sessions = install(REMEMBER)
    client = Client(**LOCAL)
    log_in(client)
    first = cookie(client)
    assert record_of(sessions, client).remember is False
    with override_settings(ROOT_URLCONF=__name__):
        assert client.get("/test/django-login/alice?remember=1").status_code == 200
        assert record_of(sessions, client).remember is True
        assert sessions.inspect(first)[0] is not Verdict.VALID  # a new token
        client.get("/test/django-login/alice")  # a login that does not ask to be remembered
    assert record_of(sessions, client).remember is False
    assert [r.remember for r in sessions.list_user("alice")] == [False]


def test_remember_me_outside_a_login_or_with_remember_off_is_an_error(install: Any) -> None:
    install(REMEMBER)
    client = Client(**LOCAL)
    log_in(client)
    with override_settings(ROOT_URLCONF=__name__):
        with pytest.raises(RuntimeError, match=r"after django\.contrib\.auth\.login\(\)"):
            client.get("/test/remember-without-login")
        install(Policy())
        with pytest.raises(ConfigError, match="COATCHECK_REMEMBER_ABSOLUTE_LIFETIME"):
            Client(**LOCAL).get("/test/django-login/alice?remember=1")


def test_a_re_login_refreshes_authenticated_at(client: Client, clock: FakeClock) -> None:
    """The way past ``fresh_login_required``: typing the password again."""
    log_in(client)
    before = cookie(client)
    clock.advance(301)
    with override_settings(ROOT_URLCONF=__name__):
        assert client.get("/test/sensitive", **API).json()["error"] == "reauthenticate"
    assert log_in(client).status_code == 303
    assert cookie(client) != before
    with override_settings(ROOT_URLCONF=__name__):
        assert client.get("/test/sensitive", **API).status_code == 200


def test_logout_session_ends_only_the_users_own_sessions(
    sessions: SessionManager,
) -> None:
    here, there, other_browser = Client(**LOCAL), Client(**LOCAL), Client(**LOCAL)
    for browser in (here, there, other_browser):
        log_in(browser)
    there_id = record_of(sessions, there).public_id
    bobs_token, bobs = sessions.create("bob")
    with override_settings(ROOT_URLCONF=__name__):
        # Another user's session, junk and a session never issued: nothing ends.
        for value in (bobs.public_id, "junk", "0" * len(bobs.public_id)):
            assert here.get(f"/test/end/{value}").json() == {"ended": False}, value
        assert sessions.inspect(bobs_token)[0] is Verdict.VALID
        # Nobody logged in: nothing to end, not even by a valid id.
        assert Client(**LOCAL).get(f"/test/end/{there_id}").json() == {"ended": False}
        # One of alice's other sessions.
        assert here.get(f"/test/end/{there_id}").json() == {"ended": True}
        assert here.get(f"/test/end/{there_id}").json() == {"ended": False}  # once
    assert me_json(there).json()["error"] == "login_required"
    assert me_json(here).json()["user"] == "alice"
    assert me_json(other_browser).json()["user"] == "alice"
    assert len(sessions.list_user("alice")) == 2


def test_logout_session_of_the_current_session_is_a_logout(sessions: SessionManager) -> None:
    client = Client(**LOCAL)
    log_in(client)
    own = record_of(sessions, client).public_id
    with override_settings(ROOT_URLCONF=__name__):
        response = client.get(f"/test/end/{own}")
    assert response.json() == {"ended": True}
    assert response.cookies[DEV_COOKIE].value == ""
    assert "Clear-Site-Data" not in response
    assert sessions.list_user("alice") == []
    assert me_json(client).json()["error"] == "login_required"


def test_logout_session_needs_a_request(sessions: SessionManager) -> None:
    with pytest.raises(RuntimeError, match="revoke_session"):
        SessionStore().logout_session("0" * 16)


def test_responses_that_used_the_session_vary_on_cookie(client: Client) -> None:
    assert client.get("/counter")["Vary"] == "Cookie"
    with override_settings(ROOT_URLCONF=__name__):
        assert client.get("/test/theme?vary=Accept")["Vary"] == "Accept, Cookie"
        assert client.get("/test/theme?vary=cookie")["Vary"] == "cookie"


def test_vary_cookie_is_added_once_and_merged_with_the_views_own() -> None:
    from coatcheck.django import middleware

    plain = HttpResponse("x")
    middleware._vary_on_cookie(plain)
    assert plain["Vary"] == "Cookie" and plain.has_header("vary")
    assert plain.serialize_headers().count(b"Vary: Cookie") == 1
    varied = HttpResponse("x", headers={"Vary": "Accept"})
    middleware._vary_on_cookie(varied)
    assert varied["Vary"] == "Accept, Cookie"
    middleware._vary_on_cookie(varied)
    assert varied["Vary"] == "Accept, Cookie"


def test_login_rotates_the_token_and_kills_the_pre_login_one(
    client: Client, sessions: SessionManager
) -> None:
    token = form_token(client)
    anonymous = cookie(client)
    response = client.post(
        "/login",
        {"username": "alice", "password": "alice-password", "csrf_token": token},
    )
    assert response.status_code == 303 and response["Location"] == "/me"
    assert "no-store" in response["Cache-Control"]
    logged_in = cookie(client)
    assert logged_in != anonymous
    assert sessions.inspect(anonymous)[0] is Verdict.UNKNOWN
    assert me_json(client).json()["user"] == "alice"

    attacker = Client(**LOCAL)
    attacker.cookies[DEV_COOKIE] = anonymous
    response = me_json(attacker)
    assert response.status_code == 401
    assert response.json()["error"] == "login_required"


def test_login_sets_the_coatcheck_user(client: Client, sessions: SessionManager) -> None:
    log_in(client)
    (record,) = sessions.list_user("alice")
    assert record.user_id == "alice" and record.authenticated_at == sessions.clock()
    body = me_json(client).json()
    assert body["authenticated_at"] == sessions.clock()


def test_wrong_password_is_a_401_page_and_changes_nothing(
    client: Client, sessions: SessionManager
) -> None:
    token = form_token(client)
    before = cookie(client)
    response = client.post("/login", {"username": "alice", "password": "no", "csrf_token": token})
    assert response.status_code == 401
    assert "Wrong username or password" in response.content.decode()
    assert not response.cookies
    assert cookie(client) == before
    assert sessions.list_user("alice") == []


def test_login_without_the_forms_token_is_refused(client: Client) -> None:
    response = client.post("/login", {"username": "alice", "password": "alice-password"}, **API)
    assert response.status_code == 403
    assert response.json()["error"] == "csrf_token"


def test_credentials_in_the_query_string_do_not_log_in(client: Client) -> None:
    token = form_token(client)
    response = client.post(
        "/login?username=alice&password=alice-password", {"csrf_token": token}, **BROWSER
    )
    assert response.status_code == 401


@pytest.mark.parametrize(
    "target",
    ["//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"],
)
def test_next_cannot_redirect_off_site(client: Client, target: str) -> None:
    response = log_in(client, next_url=target)
    assert response.status_code == 303
    assert response["Location"] == "/me"


def test_next_keeps_a_same_site_path(client: Client) -> None:
    assert log_in(client, next_url="/note?x=1")["Location"] == "/note?x=1"


def test_protected_page_sends_browsers_to_login_and_api_clients_a_401(client: Client) -> None:
    response = client.get("/me", **BROWSER)
    assert response.status_code == 303
    location = urlsplit(response["Location"])
    assert location.path == "/login"
    assert parse_qs(location.query) == {"next": ["/me"], "reason": ["login_required"]}
    response = me_json(client)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == "login_required"


def test_force_login_and_logout_of_the_test_client_work(sessions: SessionManager) -> None:
    from demosite.users import DemoBackend

    # Django's client sets SESSION_COOKIE_NAME: the secure cookie, used off loopback.
    client = Client()
    client.force_login(DemoBackend().get_user("alice"))
    assert me_json(client).json()["user"] == "alice"
    client.logout()
    assert me_json(client).status_code == 401


def test_logout_ends_the_session_and_leaves_other_cookies(
    client: Client, sessions: SessionManager
) -> None:
    """No ``Clear-Site-Data`` by default: it would clear the whole registrable domain."""
    log_in(client)
    old = cookie(client)
    token = client.get("/csrf").json()["csrf_token"]
    response = client.post("/logout", {"csrf_token": token})
    assert response.status_code == 303 and response["Location"] == "/"
    assert "Clear-Site-Data" not in response
    assert "no-store" in response["Cache-Control"]
    expired = response.cookies[DEV_COOKIE]
    assert expired.value == "" and str(expired["max-age"]) == "0"
    assert sessions.list_user("alice") == []

    replay = Client(**LOCAL)
    replay.cookies[DEV_COOKIE] = old
    assert me_json(replay).json()["error"] == "login_required"


def test_logout_clears_site_data_when_switched_on(client: Client, sessions: SessionManager) -> None:
    log_in(client)
    token = client.get("/csrf").json()["csrf_token"]
    with override_settings(COATCHECK_CLEAR_SITE_DATA=True):
        response = client.post("/logout", {"csrf_token": token})
    assert response.status_code == 303
    assert response["Clear-Site-Data"] == '"cookies"'
    assert "no-store" in response["Cache-Control"]
    expired = response.cookies[DEV_COOKIE]
    assert expired.value == "" and str(expired["max-age"]) == "0"
    assert sessions.list_user("alice") == []


def test_an_expired_session_is_told_apart(
    client: Client, sessions: SessionManager, clock: FakeClock
) -> None:
    log_in(client)
    clock.advance(sessions.policy.idle_timeout)
    response = me_json(client)
    assert response.status_code == 401
    assert response.json()["error"] == "session_expired"
    assert response.cookies[DEV_COOKIE].value == ""  # the dead cookie is expired once
    assert me_json(client).json()["error"] == "login_required"

    log_in(client)
    clock.advance(sessions.policy.idle_timeout)
    response = client.get("/me", **BROWSER)
    location = response["Location"]
    assert parse_qs(urlsplit(location).query)["reason"] == ["session_expired"]
    assert "Your session has expired" in client.get(location, **BROWSER).content.decode()


def test_read_only_requests_touch_at_most_once_per_interval(
    client: Client, sessions: SessionManager, store: CountingStore, clock: FakeClock
) -> None:
    log_in(client)
    store.calls.clear()
    me_json(client)
    me_json(client)
    assert store.writes() == []
    clock.advance(sessions.policy.touch_interval)
    response = me_json(client)
    assert store.writes() == ["update"]
    assert not response.cookies  # sliding the deadline does not need a new cookie
    clock.advance(sessions.policy.idle_timeout - 1)
    assert me_json(client).status_code == 200  # alive: the touch slid the idle deadline


def test_set_expiry_is_enforced_and_slid_by_reads_through_the_middleware(
    client: Client, sessions: SessionManager, store: CountingStore, clock: FakeClock
) -> None:
    with override_settings(ROOT_URLCONF=__name__):
        assert client.get("/test/expire-in/120").json() == {"theme": "dark"}
        store.calls.clear()
        clock.advance(sessions.policy.touch_interval - 1)
        assert client.get("/test/theme").json() == {"theme": "dark"}
        assert store.writes() == []  # inside the touch interval: nothing written
        clock.advance(1)
        response = client.get("/test/theme")
        assert response.json() == {"theme": "dark"} and not response.cookies
        assert store.writes() == ["update"]  # past it: the read slid the deadline
        clock.advance(119)  # 179 s after set_expiry(120), 119 s after the slide
        assert client.get("/test/theme").json() == {"theme": "dark"}
        clock.advance(121)
        token = cookie(client)
        response = client.get("/test/theme")
        assert response.json() == {"theme": None}  # idle longer than set_expiry(120)
        assert response.cookies[DEV_COOKIE].value == ""
        assert sessions.inspect(token)[0] is Verdict.UNKNOWN  # ended in the store too


def test_a_change_made_on_the_core_session_is_saved(client: Client) -> None:
    client.get("/counter")
    with override_settings(ROOT_URLCONF=__name__):
        assert client.get("/test/core-write").status_code == 200
        assert client.get("/test/theme").json() == {"theme": "from core"}


def test_a_store_the_view_made_itself_is_left_to_the_view(
    client: Client, sessions: SessionManager
) -> None:
    with override_settings(ROOT_URLCONF=__name__):
        response = client.get("/test/own-store")
    assert response.status_code == 200 and not response.cookies
    assert SessionStore(response.json()["key"])["theme"] == "own"


def test_ip_binding_refuses_the_cookie_from_another_address(install: Any) -> None:
    install(Policy(bind_ip=True))
    client = Client(**LOCAL)
    log_in(client)
    elsewhere = Client(REMOTE_ADDR="192.0.2.7", **LOCAL)
    elsewhere.cookies[DEV_COOKIE] = cookie(client)
    assert me_json(elsewhere).status_code == 401
    assert me_json(client).json()["user"] == "alice"  # the session itself lives on


def test_cross_origin_post_is_refused(client: Client) -> None:
    log_in(client)
    token = client.get("/csrf").json()["csrf_token"]
    for headers in (
        {"HTTP_ORIGIN": "https://evil.example"},
        {"HTTP_SEC_FETCH_SITE": "cross-site"},
        {"HTTP_REFERER": "https://evil.example/page"},
    ):
        response = client.post("/note", {"note": "x", "csrf_token": token}, **headers, **API)
        assert response.status_code == 403, headers
        assert response.json()["error"] == "csrf_origin"


def test_a_bearer_header_beside_the_cookie_is_checked(client: Client) -> None:
    """The session still comes from the cookie, so the bearer header exempts nothing."""
    log_in(client)
    bearer = {"HTTP_AUTHORIZATION": "Bearer junk"}
    response = client.post("/logout", **bearer, **API)
    assert (response.status_code, response.json()["error"]) == (403, "csrf_token")
    response = client.post("/logout", HTTP_SEC_FETCH_SITE="cross-site", **bearer, **API)
    assert (response.status_code, response.json()["error"]) == (403, "csrf_origin")
    assert me_json(client).status_code == 200


def test_missing_or_wrong_token_is_refused(client: Client) -> None:
    log_in(client)
    for data in ({"note": "x"}, {"note": "x", "csrf_token": "forged"}):
        response = client.post("/note", data, **BROWSER)
        assert response.status_code == 403
        assert "CSRF token" in response.content.decode()
        assert "Traceback" not in response.content.decode()


def test_token_in_form_field_or_header_is_accepted(client: Client) -> None:
    log_in(client)
    token = form_token(client, "/note")
    same_origin = {"HTTP_ORIGIN": "http://127.0.0.1", "HTTP_SEC_FETCH_SITE": "same-origin"}
    assert (
        client.post("/note", {"note": "a", "csrf_token": token}, **same_origin).status_code == 303
    )
    assert client.post("/note", {"note": "b", "csrfmiddlewaretoken": token}).status_code == 303
    response = client.post("/keys/colour", HTTP_X_CSRF_TOKEN=token)
    assert response.status_code == 200 and response.json() == {"set": "colour"}
    assert client.post("/keys/shape", HTTP_X_CSRFTOKEN=token).status_code == 200  # Django's name
    assert client.get("/keys").json() == {"keys": ["colour", "note", "shape"]}


def test_a_post_without_a_session_cookie_is_origin_checked(client: Client) -> None:
    """No session to ride on, so no token to check, but a cross-site page must not post a
    login form either (login CSRF): the origin check runs before the view."""
    form = {"username": "alice", "password": "alice-password"}
    for headers in (
        {"HTTP_ORIGIN": "https://evil.example"},
        {"HTTP_SEC_FETCH_SITE": "cross-site"},
        {"HTTP_REFERER": "https://evil.example/login"},
    ):
        response = Client(**LOCAL).post("/login", form, **headers, **API)
        assert (response.status_code, response.json()["error"]) == (403, "csrf_origin"), headers
    # From this site, the view's own check still wants the form's token.
    response = Client(**LOCAL).post("/login", form, HTTP_ORIGIN="http://127.0.0.1", **API)
    assert (response.status_code, response.json()["error"]) == (403, "csrf_token")
    # A request authenticated by a bearer header alone is no browser's: not origin-checked.
    bearer = {"HTTP_AUTHORIZATION": "Bearer junk", "HTTP_SEC_FETCH_SITE": "cross-site"}
    response = Client(**LOCAL).post("/login", form, **bearer, **API)
    assert response.json()["error"] == "csrf_token"


def test_csrf_protect_views_accept_what_coatcheck_checked(sessions: SessionManager) -> None:
    """Views that run Django's own CSRF check (``csrf_protect``, the admin) accept a request
    coatcheck's middleware checked (origin and token), without Django's CSRF cookie."""
    client = Client(enforce_csrf_checks=True, **LOCAL)
    log_in(client)
    token = client.get("/csrf").json()["csrf_token"]
    with override_settings(ROOT_URLCONF=__name__):
        ok = client.post("/test/protected", {"csrfmiddlewaretoken": token}, **API)
        assert (ok.status_code, ok.json()) == (200, {"ok": True})
        assert client.post("/test/protected", HTTP_X_CSRF_TOKEN=token, **API).status_code == 200
        assert settings.CSRF_COOKIE_NAME not in client.cookies
        missing = client.post("/test/protected", **API)
        assert (missing.status_code, missing.json()["error"]) == (403, "csrf_token")
        forged = client.post("/test/protected", {"csrf_token": "forged"}, **API)
        assert (forged.status_code, forged.json()["error"]) == (403, "csrf_token")
        cross = client.post(
            "/test/protected", {"csrf_token": token}, HTTP_ORIGIN="https://evil.example", **API
        )
        assert (cross.status_code, cross.json()["error"]) == (403, "csrf_origin")


def test_csrf_protect_still_guards_what_coatcheck_did_not_check(
    sessions: SessionManager,
) -> None:
    """Only requests coatcheck checked skip Django's check: on a CSRF-exempt path, or without a
    session cookie, Django's own check runs in a ``csrf_protect`` view and refuses a request
    that lacks Django's CSRF cookie, whatever coatcheck token it carries."""
    client = Client(enforce_csrf_checks=True, **LOCAL)
    log_in(client)
    token = client.get("/csrf").json()["csrf_token"]
    django_refusal = "CSRF verification failed"
    with override_settings(ROOT_URLCONF=__name__, COATCHECK_CSRF_EXEMPT_PATHS=["/test/"]):
        response = client.post("/test/protected", {"csrfmiddlewaretoken": token}, **API)
        assert response.status_code == 403
        assert django_refusal in response.content.decode()
    with override_settings(ROOT_URLCONF=__name__):
        response = Client(enforce_csrf_checks=True, **LOCAL).post(
            "/test/protected", {"csrfmiddlewaretoken": token}, HTTP_ORIGIN="http://127.0.0.1"
        )
        assert response.status_code == 403
        assert django_refusal in response.content.decode()


def test_messages_flash_once(client: Client) -> None:
    token = form_token(client, "/note")
    response = client.post("/note", {"note": "hello", "csrf_token": token})
    assert response.status_code == 303 and response["Location"] == "/note"
    page = client.get("/note", **BROWSER).content.decode()
    assert '<li class="info">saved</li>' in page and "hello" in page
    assert "saved" not in client.get("/note", **BROWSER).content.decode()


def test_counter(client: Client) -> None:
    assert [client.get("/counter").json()["count"] for _ in range(3)] == [1, 2, 3]


@pytest.mark.parametrize(
    "value",
    ["", "x" * 10_000, "\x00\xff\xfe binary", "cc1_" + "*" * 48, "cc1_" + "A" * 47, '"quoted"'],
)
def test_malformed_cookies_are_anonymous_never_a_500(client: Client, value: str) -> None:
    header = f"{DEV_COOKIE}={value}"
    for url, headers in (("/", BROWSER), ("/me", API), ("/counter", API), ("/login", BROWSER)):
        response = client.get(url, HTTP_COOKIE=header, **headers)
        assert response.status_code in (200, 401), (url, response.status_code)
    response = client.get("/me", HTTP_COOKIE=header, **API)
    assert response.json()["error"] == "login_required"


def test_a_tossed_cookie_beside_the_real_one_is_ignored(client: Client) -> None:
    log_in(client)
    real = cookie(client)
    junk = TokenCodec(new_token_key()).new_token()[0]
    for pair in (
        f"{DEV_COOKIE}={junk}; {DEV_COOKIE}={real}",
        f"{DEV_COOKIE}={real}; {DEV_COOKIE}={junk}",
    ):
        assert client.get("/me", HTTP_COOKIE=pair, **API).json()["user"] == "alice"


def test_two_live_sessions_in_one_request_may_not_write(client: Client) -> None:
    log_in(client)
    mine = cookie(client)
    other = Client(**LOCAL)
    other.get("/counter")
    theirs = cookie(other)
    response = client.get("/counter", HTTP_COOKIE=f"{DEV_COOKIE}={mine}; {DEV_COOKIE}={theirs}")
    assert response.status_code == 400
    assert response.json()["error"] == "conflicting_session_cookies"


def test_a_login_over_the_session_limit_is_refused_cleanly(install: Any) -> None:
    install(Policy(max_sessions_per_user=1, on_limit="refuse"))
    first, second = Client(**LOCAL), Client(**LOCAL)
    assert log_in(first).status_code == 303
    token = form_token(second)
    response = second.post(
        "/login",
        {"username": "alice", "password": "alice-password", "csrf_token": token},
        **API,
    )
    assert response.status_code == 409
    assert response.json()["error"] == "session_limit_reached"
    assert me_json(first).json()["user"] == "alice"


def test_oversized_session_data_is_a_clear_error(install: Any) -> None:
    install(Policy(max_data_bytes=500))
    client = Client(**LOCAL)
    token = form_token(client, "/note")
    response = client.post("/note", {"note": "x" * 900, "csrf_token": token}, **API)
    assert response.status_code == 500
    assert response.json()["error"] == "session_too_large"
    assert "max_data_bytes" in response.json()["message"]


# -- cookies ----------------------------------------------------------------------------------


def test_request_info_has_the_scheme_django_vouches_for(sessions: SessionManager) -> None:
    factory = RequestFactory()
    assert request_info(factory.get("/", secure=True)).scheme == "https"
    assert request_info(factory.get("/", HTTP_X_FORWARDED_PROTO="https")).scheme == "http"
    with override_settings(SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https")):
        assert request_info(factory.get("/", HTTP_X_FORWARDED_PROTO="https")).scheme == "https"
        assert request_info(
            factory.get("/", secure=True, HTTP_X_FORWARDED_PROTO="http")
        ).scheme == ("http")


def test_secure_cookie_off_loopback(sessions: SessionManager) -> None:
    client = Client()  # Host: testserver
    response = client.get("/login", secure=True)
    morsel = response.cookies[HOST_COOKIE]
    header = morsel.OutputString()
    assert morsel.value.startswith(PREFIX)
    for part in ("Path=/", "Secure", "HttpOnly", "SameSite=Lax"):
        assert part in header
    assert "Domain" not in header and "Max-Age" not in header  # a browser-session cookie
    assert "no-store" in response["Cache-Control"]


def test_no_set_cookie_when_the_token_does_not_change(client: Client) -> None:
    client.get("/counter")
    assert not client.get("/counter").cookies


def test_persistent_cookie_lasts_the_absolute_lifetime(sessions: SessionManager) -> None:
    with override_settings(SESSION_EXPIRE_AT_BROWSER_CLOSE=False):
        response = Client(**LOCAL).get("/counter")
    assert int(response.cookies[DEV_COOKIE]["max-age"]) == int(sessions.policy.absolute_lifetime)


def test_development_cookies_are_refused_off_loopback(sessions: SessionManager) -> None:
    with override_settings(SESSION_COOKIE_SECURE=False, SESSION_COOKIE_NAME="session"):
        response = Client().get("/counter", **API)  # Host: testserver
        assert response.status_code == 500
        assert response.json()["error"] == "insecure_cookie_mode"
        assert Client(**LOCAL).get("/counter").status_code == 200


def test_the_engine_also_works_under_djangos_own_middleware(
    sessions: SessionManager, store: CountingStore, clock: FakeClock
) -> None:
    from demosite.users import DemoBackend

    stock = [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
    ]
    with override_settings(MIDDLEWARE=stock):
        client = Client()
        assert [client.get("/counter").json()["count"] for _ in range(2)] == [1, 2]
        client.force_login(DemoBackend().get_user("alice"))
        assert me_json(client).json()["user"] == "alice"
        store.calls.clear()
        clock.advance(sessions.policy.touch_interval)
        me_json(client)  # read-only, but past the touch interval: Django's middleware saves
        assert store.writes() == ["update"]


# -- store failures ---------------------------------------------------------------------------


def test_store_down_while_loading_is_a_503(client: Client, store: CountingStore) -> None:
    log_in(client)
    store.down = True
    response = me_json(client)
    assert response.status_code == 503
    assert response.json()["error"] == "session_store_unavailable"
    assert response["Retry-After"] == "5"
    page = client.get("/me", **BROWSER)
    assert page.status_code == 503
    assert "session store is unavailable" in page.content.decode()
    assert "Traceback" not in page.content.decode()


def test_store_down_while_saving_is_a_503(client: Client, store: CountingStore) -> None:
    store.down = True
    response = client.get("/counter")  # no cookie: nothing to load, the insert fails
    assert response.status_code == 503
    assert not response.cookies


def test_store_down_in_csrf_check_is_a_503(client: Client, store: CountingStore) -> None:
    token = form_token(client, "/note")
    store.down = True
    response = client.post("/note", {"note": "x", "csrf_token": token}, **API)
    assert response.status_code == 503


def test_store_down_outside_a_view_is_still_a_503(client: Client, store: CountingStore) -> None:
    log_in(client)
    store.down = True
    quiet = Client(raise_request_exception=False, **LOCAL)
    quiet.cookies = client.cookies
    with override_settings(ROOT_URLCONF=__name__):
        # The view only queues a message; MessageMiddleware loads the session afterwards.
        response = quiet.get("/test/message-only", **API)
    assert response.status_code == 503
    assert response.json()["error"] == "session_store_unavailable"


def test_a_session_ended_during_the_request_is_not_resurrected(
    client: Client, sessions: SessionManager
) -> None:
    log_in(client)
    with override_settings(ROOT_URLCONF=__name__):
        response = client.get("/test/ended-meanwhile", **API)
    assert response.status_code == 409
    assert response.json()["error"] == "session_ended"
    assert response.cookies[DEV_COOKIE].value == ""
    assert sessions.list_user("alice") == []


def test_a_message_set_after_logout_is_kept_in_a_fresh_session(
    client: Client, sessions: SessionManager
) -> None:
    log_in(client)
    old = client.cookies[DEV_COOKIE].value
    with override_settings(ROOT_URLCONF=__name__, COATCHECK_CLEAR_SITE_DATA=True):
        response = client.get("/test/logout-then-message", **API)
        new = response.cookies[DEV_COOKIE].value
        assert new and new != old, "a fresh anonymous session carries the message"
        assert "clear-site-data" not in response.headers
        assert client.get("/test/messages", **API).json() == {"messages": ["bye"]}
    assert sessions.list_user("alice") == []


# -- guards -----------------------------------------------------------------------------------


def test_fresh_login_required(client: Client, clock: FakeClock) -> None:
    log_in(client)
    with override_settings(ROOT_URLCONF=__name__):
        assert client.get("/test/sensitive", **API).status_code == 200
        clock.advance(301)
        response = client.get("/test/sensitive", **API)
        assert response.status_code == 401
        assert response.json()["error"] == "reauthenticate"
        response = client.get("/test/sensitive", **BROWSER)
        assert parse_qs(urlsplit(response["Location"]).query) == {
            "next": ["/test/sensitive"],
            "reason": ["reauthenticate"],
        }


def test_async_view_guard_and_async_client(sessions: SessionManager) -> None:
    async def scenario() -> list[int]:
        from demosite.users import DemoBackend

        anonymous, user = AsyncClient(), AsyncClient()
        await user.aforce_login(DemoBackend().get_user("alice"))
        with override_settings(ROOT_URLCONF=__name__):
            return [
                (await anonymous.get("/test/async", **API)).status_code,
                (await user.get("/test/async", **API)).status_code,
            ]

    assert asyncio.run(scenario()) == [401, 200]


# -- templates, commands, checks, configuration -----------------------------------------------


def test_template_helpers_render_the_sessions_token(sessions: SessionManager) -> None:
    request = RequestFactory().get("/", HTTP_HOST="127.0.0.1")
    SessionMiddleware(lambda r: HttpResponse()).process_request(request)
    template = engines["django"].from_string(
        "{% load coatcheck %}{% csrf_input %}|{% csrf_token %}|{{ csrf_token }}"
    )
    ours, django_tag, variable = template.render({}, request).split("|")
    token = request.session.csrf_token()
    assert ours == f'<input type="hidden" name="csrf_token" value="{token}">'
    assert django_tag == f'<input type="hidden" name="csrfmiddlewaretoken" value="{token}">'
    assert variable == token


def test_clearsessions_command(sessions: SessionManager, clock: FakeClock) -> None:
    from io import StringIO

    s = SessionStore()
    s.save()
    clock.advance(sessions.policy.idle_timeout + 1)
    out = StringIO()
    call_command("clearsessions", stdout=out)
    assert out.getvalue().strip() == "1 expired session(s) deleted"


def test_system_checks(sessions: SessionManager) -> None:
    assert check_settings() == []
    middleware = [
        "django.contrib.sessions.middleware.SessionMiddleware" if "Session" in m else m
        for m in settings.MIDDLEWARE
    ]
    with override_settings(MIDDLEWARE=middleware):
        assert [m.id for m in check_settings()] == ["coatcheck.W001"]
    with override_settings(SESSION_COOKIE_HTTPONLY=False):
        (error,) = check_settings()
        assert error.id == "coatcheck.E001" and "HttpOnly" in error.msg
        assert error.level == checks.ERROR


def test_one_manager_per_process_and_the_default_store(
    sessions: SessionManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert get_manager() is get_manager() is sessions
    monkeypatch.delenv("COATCHECK_STORE_URL", raising=False)
    with override_settings(COATCHECK_STORE_URL=None):
        assert store_url() == f"sqlite:///{settings.BASE_DIR}/sessions.db"


def test_coatcheck_middleware_needs_the_coatcheck_engine(django_project: None) -> None:
    with (
        override_settings(SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies"),
        pytest.raises(ImproperlyConfigured, match=r"coatcheck\.django"),
    ):
        SessionMiddleware(lambda r: HttpResponse())


# -- a few test-only views (ROOT_URLCONF=__name__) --------------------------------------------


def _message_only(request: HttpRequest) -> HttpResponse:
    messages.info(request, "queued")
    return HttpResponse("ok")


def _ended_meanwhile(request: HttpRequest) -> HttpResponse:
    """Another request (another tab's logout) ends the session while this one works on it."""
    get_manager().revoke(request.session.session_key or "")
    request.session["late"] = True
    return HttpResponse("ok")


def _logout_then_message(request: HttpRequest) -> HttpResponse:
    from django.contrib.auth import logout

    logout(request)
    messages.info(request, "bye")
    return HttpResponse("ok")


def _show_messages(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"messages": [str(m) for m in messages.get_messages(request)]})


def _sensitive(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


async def _async_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


def _expire_in(request: HttpRequest, seconds: int) -> JsonResponse:
    request.session["theme"] = "dark"
    request.session.set_expiry(seconds)
    return JsonResponse({"theme": request.session["theme"]})


def _theme(request: HttpRequest) -> JsonResponse:
    response = JsonResponse({"theme": request.session.get("theme")})
    if "vary" in request.GET:
        response["Vary"] = request.GET["vary"]
    return response


def _cache(request: HttpRequest) -> JsonResponse:
    """Reads the session; sends the ``cc`` parameter as its own Cache-Control."""
    response = JsonResponse({"user": request.session.user_id})
    if "cc" in request.GET:
        response["Cache-Control"] = request.GET["cc"]
    return response


@cacheable
def _cacheable(request: HttpRequest) -> JsonResponse:
    return _cache(request)


@method_decorator(cacheable, name="dispatch")
class _CacheableView(View):
    def get(self, request: HttpRequest) -> JsonResponse:
        return _cache(request)


def _login_as(request: HttpRequest, user: str) -> HttpResponse:
    """A login through the manager itself, bypassing ``django.contrib.auth``."""
    assert isinstance(request.session, SessionStore)
    remember = request.GET.get("remember") == "1"
    request.session.manager.login(request.session.core, user, remember=remember)
    return HttpResponse("ok")


def _django_login(request: HttpRequest, user: str) -> JsonResponse:
    """Logs ``user`` in the Django way; ``?remember=1`` or ``0`` calls ``set_remember``."""
    from demosite.users import DemoBackend

    auth_login(request, DemoBackend().get_user(user), backend="demosite.users.DemoBackend")
    if "remember" in request.GET:
        assert isinstance(request.session, SessionStore)
        request.session.set_remember(request.GET["remember"] == "1")
    return JsonResponse({"expiry_age": request.session.get_expiry_age()})


def _remember_without_login(request: HttpRequest) -> HttpResponse:
    assert isinstance(request.session, SessionStore)
    request.session.set_remember(True)
    return HttpResponse("ok")


def _end(request: HttpRequest, public_id: str) -> JsonResponse:
    assert isinstance(request.session, SessionStore)
    return JsonResponse({"ended": request.session.logout_session(public_id)})


@csrf_protect
def _protected(request: HttpRequest) -> JsonResponse:
    """A third-party view that runs Django's own CSRF check."""
    return JsonResponse({"ok": True})


def _core_write(request: HttpRequest) -> HttpResponse:
    """Writes past Django's ``modified`` flag, on the coatcheck session itself."""
    assert isinstance(request.session, SessionStore)
    request.session.core["theme"] = "from core"
    return HttpResponse("ok")


def _own_store(request: HttpRequest) -> JsonResponse:
    request.session["theme"] = "dark"
    own = SessionStore()
    own["theme"] = "own"
    own.save()
    request.session = own
    return JsonResponse({"key": own.session_key})


test_views = [
    path("own-store", _own_store),
    path("expire-in/<int:seconds>", _expire_in),
    path("theme", _theme),
    path("cache", _cache),
    path("login-as/<str:user>", _login_as),
    path("django-login/<str:user>", _django_login),
    path("remember-without-login", _remember_without_login),
    path("end/<str:public_id>", _end),
    path("protected", _protected),
    path("cacheable", _cacheable),
    path("cacheable-class", _CacheableView.as_view()),
    path("core-write", _core_write),
    path("message-only", _message_only),
    path("ended-meanwhile", _ended_meanwhile),
    path("logout-then-message", _logout_then_message),
    path("messages", _show_messages),
    path("sensitive", fresh_login_required(300)(_sensitive)),
    path("async", login_required(_async_view)),
]
urlpatterns = [path("test/", include(test_views))]
