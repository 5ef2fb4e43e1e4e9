"""RP-initiated logout, end to end: the local session is destroyed first, then the browser
goes to the provider's end_session_endpoint and comes back with the state it took there
(named after the conformance suite's oidcc-client-test-rp-init-logout modules)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from .apps import Browser, Site, asgi_site
from .provider_harness import AppUrls, OidcProvider, start_provider


@pytest.fixture
def site(oidc_provider: OidcProvider, tmp_path: Path) -> Iterator[Site]:
    with asgi_site(oidc_provider, f"sqlite:///{tmp_path}/sessions.db") as site:
        yield site


def log_out(browser: Browser) -> httpx.Response:
    """Press the page's "Log out" button (a form POST with the CSRF field)."""
    page = browser.get("/page", html=True)
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    return browser.client.post(
        browser.url("/oidc/logout"), data={"csrf_token": token}, headers={"accept": "text/html"}
    )


def provider_logout(site: Site, browser: Browser) -> str:
    """Log out at the app, then confirm at the provider; the URL it sends the browser back
    to (the app's logged-out page, with the state)."""
    answer = log_out(browser)
    assert answer.status_code == 303
    end_session = answer.headers["location"]
    assert site.user_sessions("alice") == [], "destroyed before the browser left"
    assert browser.me()["user"] is None
    params = parse_qs(urlsplit(end_session).query)
    assert end_session.startswith(site.provider.discovery()["end_session_endpoint"])
    assert params["post_logout_redirect_uri"] == [site.provider.app.post_logout_redirect_uri]
    assert params["id_token_hint"] and params["state"]
    back = site.provider.logout(browser.client, end_session)
    assert parse_qs(urlsplit(back).query)["state"] == params["state"]
    return back


def test_oidcc_client_test_rp_init_logout(site: Site) -> None:
    browser = site.browser()
    browser.log_in("alice")
    back = provider_logout(site, browser)
    page = browser.client.get(back, headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "You have been logged out." in page.text
    # The provider's session is gone too: logging in again asks for the password.
    again = browser.client.get(browser.start_login())
    assert again.status_code in (302, 303)
    assert "/interaction/" in again.headers["location"]


def test_oidcc_client_test_rp_init_logout_no_state(site: Site) -> None:
    """The provider comes back without the state: nothing to check, the page says logged
    out (it changes nothing)."""
    browser = site.browser()
    browser.log_in("alice")
    back = provider_logout(site, browser)
    page = browser.client.get(back.split("?", 1)[0], headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "You have been logged out." in page.text


def test_oidcc_client_test_rp_init_logout_other_state(site: Site) -> None:
    browser = site.browser()
    browser.log_in("alice")
    back = provider_logout(site, browser)
    other = f"{back.split('?', 1)[0]}?{urlencode({'state': 'not-the-state-sent'})}"
    page = browser.client.get(other, headers={"accept": "application/json"})
    assert page.status_code == 400
    assert page.json()["error"] == "logout_state_mismatch"


def test_the_logout_state_is_good_once(site: Site) -> None:
    browser = site.browser()
    browser.log_in("alice")
    back = provider_logout(site, browser)
    assert browser.client.get(back).status_code == 200
    assert browser.client.get(back).status_code == 400


def test_a_provider_without_end_session_goes_straight_to_the_logged_out_page(
    oidc_provider: OidcProvider, tmp_path: Path
) -> None:
    app = AppUrls(port=oidc_provider.app.port)
    with (
        start_provider(rp_initiated_logout=False, app=app) as plain,
        asgi_site(plain, f"sqlite:///{tmp_path}/sessions.db") as site,
    ):
        browser = site.browser()
        browser.log_in("alice")
        answer = log_out(browser)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/oidc/logged-out"
        assert site.user_sessions("alice") == []
        assert "You have been logged out." in browser.follow(answer).text


def test_logout_needs_the_csrf_token(site: Site) -> None:
    browser = site.browser()
    browser.log_in("alice")
    refused = browser.client.post(browser.url("/oidc/logout"), headers={"accept": "text/html"})
    assert refused.status_code == 403
    assert browser.me()["user"] == "alice"


def test_logout_is_a_post(site: Site) -> None:
    browser = site.browser()
    browser.log_in("alice")
    answer = browser.get("/oidc/logout")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"
    assert browser.me()["user"] == "alice"


def test_logout_while_the_provider_is_down_still_logs_out_here(
    oidc_provider: OidcProvider, tmp_path: Path
) -> None:
    """The provider's metadata (kept half a second here) cannot be fetched: the local session
    is gone all the same, and the page says the provider's may not be."""
    with asgi_site(oidc_provider, f"sqlite:///{tmp_path}/s.db", metadata_ttl=0.5) as site:
        browser = site.browser()
        browser.log_in("alice")
        time.sleep(0.6)  # the cached metadata is stale: the logout must ask again
        with site.provider.configured(outage=True):
            answer = log_out(browser)
            page = browser.follow(answer)
        assert answer.headers["location"] == "/oidc/logged-out?provider=unreachable"
        assert site.user_sessions("alice") == []
        assert page.status_code == 200
        assert "could not be reached" in page.text
