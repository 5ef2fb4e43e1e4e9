"""When the provider says the session is over, the local one ends too: a browser lands on the
"session ended" page, whose link logs in again and returns to the page it was on; an API
client gets 401 JSON with the reason. Without a refresh token, a page load goes through
``prompt=none`` instead."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from coatcheck.core.policy import WritePlan
from coatcheck.core.records import Patch, encode_value
from coatcheck.oidc.record import OIDC_KEY

from .apps import Browser, Site, asgi_site, path_of
from .provider_harness import AppUrls, OidcProvider, start_provider


@pytest.fixture
def site(oidc_provider: OidcProvider, tmp_path: Path) -> Iterator[Site]:
    with asgi_site(oidc_provider, f"sqlite:///{tmp_path}/sessions.db") as site:
        yield site


def assert_ended_page_logs_in_again(browser: Browser, answer: object, page: str) -> None:
    """``answer`` sends the browser to the ended page, whose link leads back to ``page``
    through a new login."""
    from httpx import Response

    assert isinstance(answer, Response)
    assert answer.status_code == 303
    assert path_of(answer.headers["location"]).startswith("/oidc/ended?")
    ended = browser.follow(answer)
    assert ended.status_code == 200
    assert "Your session has ended" in ended.text
    assert "no-store" in ended.headers["cache-control"]
    link = f'href="/oidc/login?next={quote(page, safe="/")}">Log in again</a>'
    assert link in ended.text
    href = link.split('"')[1]
    authorization = browser.get(href, html=True)
    back = browser.site.provider.login(browser.client, authorization.headers["location"], "alice")
    returned = browser.client.get(back)
    assert returned.status_code == 303
    assert returned.headers["location"] == page
    assert browser.me()["user"] == "alice"


def test_provider_session_killed_lands_on_the_ended_page(site: Site) -> None:
    browser, before = site.logged_in()
    browser.wait_until_expired(float(before["expires_at"]))
    assert site.provider.end_sessions() >= 1
    answer = browser.get("/page?tab=2", html=True)
    assert site.user_sessions("alice") == [], "the local session ended"
    assert_ended_page_logs_in_again(browser, answer, "/page?tab=2")


def test_an_api_client_gets_401_with_the_reason(site: Site) -> None:
    browser, before = site.logged_in()
    browser.wait_until_expired(float(before["expires_at"]))
    site.provider.end_sessions()
    answer = browser.get("/")
    assert answer.status_code == 401
    body = answer.json()
    assert body["error"] == "session_ended"
    assert body["reason"] == "invalid_grant"
    assert body["login_url"] == "/oidc/login?next=/"
    assert browser.me()["user"] is None


def test_natural_provider_session_expiry_lands_on_the_ended_page(
    oidc_provider: OidcProvider, tmp_path: Path
) -> None:
    """The provider's session times out on its own (no back-channel message): the refresh
    token, bound to it, is refused, and that ends the local session."""
    app = AppUrls(port=oidc_provider.app.port)
    with (
        start_provider(session_ttl=6, app=app) as short,
        asgi_site(short, f"sqlite:///{tmp_path}/sessions.db") as site,
    ):
        started = time.time()
        browser, _ = site.logged_in()
        time.sleep(max(0.0, started + 7 - time.time()))  # past the provider's session
        answer = browser.get("/page", html=True)
        assert_ended_page_logs_in_again(browser, answer, "/page")


def drop_refresh_token(site: Site, user: str) -> None:
    """As if the provider had issued no refresh token (written straight to the store)."""
    (record,) = site.user_sessions(user)
    oidc = {**record.data[OIDC_KEY], "refresh_token": None}
    plan = WritePlan(
        Patch({OIDC_KEY: encode_value(OIDC_KEY, oidc)}), record.last_seen_at, record.expires_at
    )
    site.sessions.store.update(record.key, plan)


def test_without_a_refresh_token_a_page_load_goes_through_prompt_none(site: Site) -> None:
    browser, before = site.logged_in()
    drop_refresh_token(site, "alice")
    browser.wait_until_expired(float(before["expires_at"]))
    answer = browser.get("/page", html=True)
    assert answer.status_code == 303
    authorization = parse_qs(urlsplit(answer.headers["location"]).query)
    assert authorization["prompt"] == ["none"]
    page = browser.follow(answer)
    assert page.status_code == 200
    assert "Hello alice" in page.text
    after = browser.me()
    assert after["user"] == "alice"
    assert after["token"] != before["token"]


def test_without_a_refresh_token_a_script_gets_401_with_a_login_url(site: Site) -> None:
    browser, before = site.logged_in()
    drop_refresh_token(site, "alice")
    browser.wait_until_expired(float(before["expires_at"]))
    answer = browser.get("/")
    assert answer.status_code == 401
    assert answer.json()["error"] == "reauthentication_required"
    assert answer.json()["login_url"] == "/oidc/login?next=/"
    fetch = browser.client.get(
        browser.url("/page"), headers={"accept": "text/html", "sec-fetch-mode": "cors"}
    )
    assert fetch.status_code == 401, "only a top-level page load is redirected"


def test_prompt_none_after_the_provider_session_ended_lands_on_the_ended_page(
    site: Site,
) -> None:
    browser, before = site.logged_in()
    drop_refresh_token(site, "alice")
    browser.wait_until_expired(float(before["expires_at"]))
    site.provider.end_sessions()
    answer = browser.get("/page", html=True)
    assert answer.status_code == 303
    back = browser.client.get(answer.headers["location"])  # the provider: login_required
    assert "error=login_required" in back.headers["location"]
    ended = browser.client.get(back.headers["location"], headers={"accept": "text/html"})
    assert site.user_sessions("alice") == []
    assert_ended_page_logs_in_again(browser, ended, "/page")


def test_the_ended_page_is_never_refreshed_or_redirected(site: Site) -> None:
    browser, before = site.logged_in()
    browser.wait_until_expired(float(before["expires_at"]))
    site.provider.end_sessions()
    for path in ("/oidc/ended?next=/", "/oidc/logged-out"):
        answer = browser.get(path, html=True)
        assert answer.status_code == 200, path
    assert site.user_sessions("alice") != [], "the exempt pages did not touch the session"
