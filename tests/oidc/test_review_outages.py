"""A provider that cannot be reached never ends a session and never starts a redirect loop: at
discovery (login start, refresh), at the callback's code exchange, at a refresh. Each is a 503
page or JSON, and everything works again once the provider is back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .apps import HTML, Site, asgi_site
from .provider_harness import OidcProvider


@pytest.fixture
def site(oidc_provider: OidcProvider, tmp_path: Path) -> Iterator[Site]:
    """Metadata and keys kept half a second: every step below asks the provider again."""
    with asgi_site(oidc_provider, f"sqlite:///{tmp_path}/s.db", metadata_ttl=0.5) as site:
        yield site


def test_discovery_down_at_the_login_page_is_a_503_not_a_loop(site: Site) -> None:
    browser = site.browser()
    with site.provider.configured(outage=True):
        page = browser.follow(browser.get("/oidc/login?next=/page", html=True))
        api = browser.get("/oidc/login?next=/page")
    assert page.status_code == 503
    assert "cannot be reached" in page.text
    assert page.headers["retry-after"]
    assert api.status_code == 503
    assert api.json()["error"] == "provider_unavailable"
    assert browser.log_in("alice", target="/page").headers["location"] == "/page"


def test_the_provider_down_at_the_code_exchange_is_a_503_with_a_way_back(site: Site) -> None:
    browser = site.browser()
    back = site.provider.login(browser.client, browser.start_login("/page"), "alice")
    time.sleep(0.6)  # the cached metadata is stale: the callback asks the provider again
    with site.provider.configured(outage=True):
        down = browser.client.get(back, headers=HTML)
    assert down.status_code == 503
    assert 'href="/oidc/login?next=/page"' in down.text
    assert site.user_sessions("alice") == []
    assert browser.log_in("alice", target="/page").headers["location"] == "/page"
    assert browser.me()["user"] == "alice"


def test_discovery_down_at_a_refresh_keeps_the_session_and_spends_nothing(site: Site) -> None:
    browser, before = site.logged_in()
    browser.wait_until_expired(float(before["expires_at"]))
    site.provider.counters(reset=True)
    with site.provider.configured(outage=True):
        down = browser.get("/")
        page = browser.get("/page", html=True)
    assert down.status_code == 503
    assert down.json()["error"] == "provider_unavailable"
    assert page.status_code == 503 and not page.is_redirect
    counted = site.provider.counters()
    assert counted.grant("refresh_token") == 0
    assert counted.token_requests == 0, "nothing reached the token endpoint"
    after = browser.me()
    assert after["user"] == "alice"
    assert after["token"] != before["token"]
