"""The WSGI face once end to end (the generated synchronous flow and provider, a threaded
WSGI server): login, silent refresh of concurrent requests under the lease (renewed by a
helper thread), RP-initiated logout with the provider's back-channel call, and the ended
page after the provider's session was killed."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .apps import Site, wsgi_site
from .provider_harness import OidcProvider


@pytest.fixture
def site(oidc_provider: OidcProvider, tmp_path: Path) -> Iterator[Site]:
    with wsgi_site(oidc_provider, f"sqlite:///{tmp_path}/sessions.db", refresh_lease=1.0) as site:
        yield site


def test_login_refresh_and_logout_through_wsgi(site: Site) -> None:
    browser = site.browser()
    answer = browser.log_in("alice", target="/somewhere")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/somewhere"
    before = browser.me()
    assert before["user"] == "alice"

    browser.wait_until_expired(float(before["expires_at"]))
    site.provider.counters(reset=True)
    with site.provider.configured(token_delay_ms=2000), ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda _: browser.get("/"), range(3)))
    assert {a.status_code for a in answers} == {200}
    assert len({a.json()["token"] for a in answers} - {before["token"]}) == 1
    assert site.provider.counters().grant("refresh_token") == 1

    token = browser.csrf()
    out = browser.client.post(
        browser.url("/oidc/logout"), data={"csrf_token": token}, headers={"accept": "text/html"}
    )
    assert out.status_code == 303
    assert site.user_sessions("alice") == []
    back = site.provider.logout(browser.client, out.headers["location"])
    page = browser.client.get(back, headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "You have been logged out." in page.text


def test_a_killed_provider_session_ends_the_wsgi_session(site: Site) -> None:
    browser = site.browser()
    browser.log_in("bob")
    before = browser.me()
    browser.wait_until_expired(float(before["expires_at"]))
    site.provider.end_sessions()
    ended = browser.get("/", html=True)
    assert ended.status_code == 303
    assert ended.headers["location"] == "/oidc/ended?next=/"
    assert "Log in again" in browser.follow(ended).text
    assert site.user_sessions("bob") == []
