"""Silent refresh against the real provider (5-s access tokens, rotating refresh tokens):
before the app sees a request whose access token is due, the token is renewed server-side,
for GET, POST and XHR alike, once per session however many requests need it."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .apps import Site, asgi_site
from .provider_harness import OidcProvider


@pytest.fixture
def site(oidc_provider: OidcProvider, tmp_path: Path) -> Iterator[Site]:
    with asgi_site(oidc_provider, f"sqlite:///{tmp_path}/sessions.db") as site:
        yield site


def test_oidcc_client_test_refresh_token_on_a_get(site: Site) -> None:
    browser, before = site.logged_in()
    counted = site.provider.counters(reset=True)
    browser.wait_until_expired(float(before["expires_at"]))
    after = browser.me()
    assert after["user"] == "alice"
    assert after["token"] != before["token"]
    assert float(after["expires_at"]) > float(before["expires_at"])
    counted = site.provider.counters()
    assert counted.grant("refresh_token") == 1
    assert counted.refresh_replays == 0


def test_a_post_is_refreshed_too_without_a_redirect(site: Site) -> None:
    browser, before = site.logged_in()
    token = browser.csrf()
    browser.wait_until_expired(float(before["expires_at"]))
    answer = browser.client.post(
        browser.url("/echo"), headers={"accept": "application/json", "x-csrf-token": token}
    )
    assert answer.status_code == 200
    assert answer.json()["user"] == "alice"
    assert answer.json()["token"] != before["token"]


def test_two_concurrent_requests_on_an_expired_token_refresh_once(site: Site) -> None:
    """Rotation is on: a second refresh with the same token would make the provider revoke
    the chain and log the user out. One refresh at the provider, both requests answered."""
    browser, before = site.logged_in()
    browser.wait_until_expired(float(before["expires_at"]))
    site.provider.counters(reset=True)
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: browser.get("/"), range(2)))
    assert [a.status_code for a in answers] == [200, 200]
    assert {a.json()["token"] for a in answers} != {before["token"]}
    assert len({a.json()["token"] for a in answers}) == 1
    counted = site.provider.counters()
    assert counted.grant("refresh_token") == 1
    assert counted.refresh_replays == 0
    assert counted.error("refresh_token", "invalid_grant") == 0
    assert browser.me()["user"] == "alice", "still logged in"


def test_many_tabs_at_once_still_refresh_once(site: Site) -> None:
    browser, before = site.logged_in()
    browser.wait_until_expired(float(before["expires_at"]))
    site.provider.counters(reset=True)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: browser.get("/"), range(8)))
    assert {a.status_code for a in answers} == {200}
    assert site.provider.counters().grant("refresh_token") == 1


def test_a_provider_slower_than_the_lease_still_refreshes_once(
    oidc_provider: OidcProvider, tmp_path: Path
) -> None:
    """The token endpoint answers after 3 s; the lease lasts 1 s and is renewed while the
    refresh is in flight, so the waiting request never takes it over."""
    with asgi_site(
        oidc_provider, f"sqlite:///{tmp_path}/sessions.db", refresh_lease=1.0
    ) as slow_site:
        browser, before = slow_site.logged_in()
        browser.wait_until_expired(float(before["expires_at"]))
        oidc_provider.counters(reset=True)
        with oidc_provider.configured(token_delay_ms=3000), ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(lambda _: browser.get("/"), range(3)))
        assert {a.status_code for a in answers} == {200}
        assert len({a.json()["token"] for a in answers}) == 1
        counted = oidc_provider.counters()
        assert counted.grant("refresh_token") == 1
        assert counted.refresh_replays == 0


def test_provider_down_gives_503_and_keeps_the_session(site: Site) -> None:
    browser, before = site.logged_in()
    browser.wait_until_expired(float(before["expires_at"]))
    with site.provider.configured(outage=True):
        down = browser.get("/")
        page = browser.get("/page", html=True)
    assert down.status_code == 503
    assert down.json()["error"] == "provider_unavailable"
    assert down.headers["retry-after"]
    assert "still logged in" in down.json()["message"]
    assert page.status_code == 503
    assert "cannot be reached" in page.text
    after = browser.me()
    assert after["user"] == "alice", "back once the provider is"
    assert after["token"] != before["token"]


@pytest.mark.parametrize(
    ("tamper", "module"),
    [
        ("iss", "oidcc-client-test-refresh-token-invalid-issuer"),
        ("sub", "oidcc-client-test-refresh-token-invalid-sub"),
        ("aud", "oidcc-client-test-refresh-token-invalid-aud"),
    ],
)
def test_oidcc_client_test_refresh_token_invalid_claims(
    site: Site, tamper: str, module: str
) -> None:
    """A refreshed ID token for another issuer, subject or audience is not trusted: the
    session ends (its refresh token was spent on an answer that cannot be used)."""
    browser, before = site.logged_in()
    browser.wait_until_expired(float(before["expires_at"]))
    with site.provider.configured(refresh_id_token_tamper=tamper):  # type: ignore[arg-type]
        answer = browser.get("/")
    assert answer.status_code == 401, module
    assert answer.json()["error"] == "session_ended"
    assert answer.json()["reason"] == "invalid_id_token"
    assert browser.me()["user"] is None
    assert site.user_sessions("alice") == []
