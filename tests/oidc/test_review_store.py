"""The session store failing in the middle of an OIDC flow: a clear 503, the session kept,
nothing half-written; back to normal once the store is (a private PostgreSQL server that the
tests stop and start, so the data outlives the outage)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from fixtures_postgres import PostgresInstance

from coatcheck.oidc.record import LEASE_KEY, OIDC_KEY, PENDING_KEY

from .apps import HTML, Site, asgi_site
from .provider_harness import OidcProvider

pytestmark = pytest.mark.fault


@pytest.fixture
def database(postgres_instance: Callable[[], PostgresInstance]) -> PostgresInstance:
    return postgres_instance()


@pytest.fixture
def site(oidc_provider: OidcProvider, database: PostgresInstance) -> Iterator[Site]:
    with asgi_site(oidc_provider, database.url(timeout=1)) as site:
        yield site


def test_the_login_is_one_write_that_holds_the_tokens(site: Site) -> None:
    """The new session is written once, tokens included: no moment exists where a store
    failure could leave a logged-in session without its tokens."""
    browser = site.browser()
    browser.log_in("alice")
    (record,) = site.user_sessions("alice")
    assert record.version == 1
    assert set(record.data) == {OIDC_KEY}
    assert record.data[OIDC_KEY]["refresh_token"]


def test_store_down_at_the_callback_is_a_503_and_logs_no_one_in(
    site: Site, database: PostgresInstance
) -> None:
    browser = site.browser()
    back = site.provider.login(browser.client, browser.start_login("/page"), "alice")
    database.stop()
    try:
        down = browser.client.get(back, headers=HTML)
    finally:
        database.start()
    assert down.status_code == 503
    assert "set-cookie" not in down.headers
    assert site.user_sessions("alice") == []
    pending = site.sessions.load(browser.session_cookie())
    assert any(key.startswith(PENDING_KEY) for key in pending), "the pre-login session stays"
    assert browser.log_in("alice", target="/page").headers["location"] == "/page"
    assert browser.me()["user"] == "alice"


def test_store_down_at_a_refresh_is_a_503_and_the_session_stays(
    site: Site, database: PostgresInstance
) -> None:
    browser, before = site.logged_in()
    browser.wait_until_expired(float(before["expires_at"]))
    site.provider.counters(reset=True)
    database.stop()
    try:
        down = browser.get("/")
        page = browser.get("/page", html=True)
    finally:
        database.start()
    assert down.status_code == 503
    assert down.json()["error"] == "session_store_unavailable"
    assert page.status_code == 503
    assert site.provider.counters().grant("refresh_token") == 0, "nothing spent while down"
    after = browser.me()
    assert after["user"] == "alice"
    assert after["token"] != before["token"]
    counted = site.provider.counters()
    assert counted.grant("refresh_token") == 1
    assert counted.refresh_replays == 0


def test_a_login_over_another_users_session_ends_it_and_keeps_the_tokens(site: Site) -> None:
    browser = site.browser()
    browser.log_in("alice")
    alice_cookie = browser.session_cookie()
    for cookie in list(browser.client.cookies.jar):  # forget the provider's session
        if cookie.name != "session":
            browser.client.cookies.delete(cookie.name)
    browser.log_in("bob")
    assert browser.me()["user"] == "bob"
    assert site.user_sessions("alice") == []
    assert site.sessions.load(alice_cookie).is_new
    (record,) = site.user_sessions("bob")
    assert set(record.data) == {OIDC_KEY}
    assert record.data[OIDC_KEY]["sub"] == "bob"


def test_store_down_when_the_refreshed_tokens_are_written_keeps_them(
    site: Site, database: PostgresInstance
) -> None:
    """The provider has rotated the refresh token and answered, and the store is down: the
    new tokens exist nowhere else. The write is tried again (up to ``refresh_wait``) instead
    of dropping them; once the store is back they are kept and the user stays logged in (the
    spent refresh token is never presented again)."""
    browser, before = site.logged_in()
    browser.wait_until_expired(float(before["expires_at"]))
    site.provider.counters(reset=True)
    with site.provider.configured(token_delay_ms=4000), ThreadPoolExecutor(1) as pool:
        pending = pool.submit(browser.get, "/")
        while not any(LEASE_KEY in r.data for r in site.user_sessions("alice")):
            time.sleep(0.02)  # the request holds the lease: its refresh is at the provider
        database.stop()
        try:
            while site.provider.counters().grant("refresh_token") == 0:
                time.sleep(0.05)  # the provider has answered: the new tokens are in flight
        finally:
            database.start()
        answer = pending.result()
    assert answer.status_code == 200, answer.text
    assert answer.json()["token"] != before["token"]
    browser.wait_until_expired(float(answer.json()["expires_at"]))
    assert browser.me()["user"] == "alice"
    counted = site.provider.counters()
    assert counted.grant("refresh_token") == 2
    assert counted.refresh_replays == 0
