"""The provider's tokens never leave the server: through a whole login, refresh, RP-initiated
logout and back-channel logout, no access, refresh or ID token (nor the client secret) shows
up in a log line, a page, a cookie, a redirect (but ``id_token_hint`` on the way to the
provider's end-session endpoint, which the spec requires) or a ``repr``."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from coatcheck.oidc.record import OIDC_KEY

from .apps import HTML, Site, asgi_site
from .provider_harness import OidcProvider

SECRETS = ("access_token", "refresh_token", "id_token")


@pytest.fixture
def site(oidc_provider: OidcProvider, tmp_path: Path) -> Iterator[Site]:
    with asgi_site(oidc_provider, f"sqlite:///{tmp_path}/sessions.db") as site:
        yield site


class Recorder:
    """Every response a browser got, in order."""

    def __init__(self) -> None:
        self.responses: list[httpx.Response] = []

    def __call__(self, response: httpx.Response) -> None:
        response.read()
        self.responses.append(response)


def tokens_of(site: Site, user: str) -> set[str]:
    found: set[str] = set()
    for record in site.user_sessions(user):
        oidc: dict[str, Any] = record.data[OIDC_KEY]
        found |= {oidc[name] for name in SECRETS if isinstance(oidc.get(name), str)}
    return found


def test_no_token_in_logs_pages_urls_or_reprs(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    recorder = Recorder()
    browser = site.browser()
    browser.client.event_hooks["response"].append(recorder)
    browser.log_in("alice")
    before = browser.me()
    secrets = tokens_of(site, "alice")
    browser.wait_until_expired(float(before["expires_at"]))
    assert browser.me()["token"] != before["token"]
    (record,) = site.user_sessions("alice")
    secrets |= tokens_of(site, "alice")
    id_token = record.data[OIDC_KEY]["id_token"]
    assert len(secrets) >= 5, "two access tokens, two refresh tokens, an ID token at least"
    for shown in (repr(record), str(record), repr(site.settings)):
        assert not any(secret in shown for secret in secrets), shown[:200]
    assert site.settings.client_secret not in repr(site.settings)

    page = browser.get("/page", html=True)
    csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    out = browser.client.post(browser.url("/oidc/logout"), data={"csrf_token": csrf}, headers=HTML)
    end_session = out.headers["location"]
    assert parse_qs(urlsplit(end_session).query)["id_token_hint"] == [id_token]
    back = site.provider.logout(browser.client, end_session)
    assert browser.client.get(back, headers=HTML).status_code == 200

    for response in recorder.responses:
        for name, value in response.headers.multi_items():
            if response is out and name == "location":
                continue  # id_token_hint, to the provider's end-session endpoint only
            assert not any(secret in value for secret in secrets), (response.url, name)
        if not str(response.url).startswith(end_session.split("?", 1)[0]):
            assert not any(secret in str(response.url) for secret in secrets), response.url
        assert not any(secret in response.text for secret in secrets), response.url
    assert recorder.responses.count(out) == 1
    # The app's lines: its server thread's (the test's own client, in the main thread, plays
    # the browser and sees the redirect to the end-session endpoint).
    logged = [
        r.getMessage() + (r.exc_text or "")
        for r in caplog.records
        if r.threadName != threading.main_thread().name
    ]
    assert any("/token" in line for line in logged), "the app's provider calls were logged"
    for line in logged:
        assert not any(secret in line for secret in secrets), line
        assert site.settings.client_secret not in line


def test_a_refusal_that_keeps_the_session_is_logged_for_the_operators(
    oidc_provider: OidcProvider, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The 502 page says the operators were told in the logs: they are. The refresh token is
    not in the line."""
    store = f"sqlite:///{tmp_path}/sessions.db"
    with asgi_site(oidc_provider, store) as site:
        browser, before = site.logged_in()
        cookie = browser.session_cookie()
        secrets = tokens_of(site, "alice")
    with asgi_site(oidc_provider, store, client_secret="not-the-secret") as wrong:
        caplog.set_level(logging.WARNING, logger="coatcheck.oidc")
        stranger = wrong.browser()
        stranger.client.cookies.set("session", str(cookie))
        stranger.wait_until_expired(float(before["expires_at"]))
        refused = stranger.get("/")
    assert refused.status_code == 502
    assert refused.json()["error"] == "provider_refused"
    lines = [r.getMessage() for r in caplog.records if r.name == "coatcheck.oidc"]
    assert any("invalid_client" in line for line in lines), lines
    assert not any(secret in line for line in lines for secret in secrets)
