"""Logging in through the real provider, end to end: the app's login path, the provider's
form, the callback, a fresh local session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from coatcheck.oidc.record import OIDC_KEY, PENDING_KEY

from .apps import Site, asgi_site
from .provider_harness import OidcProvider


@pytest.fixture
def site(oidc_provider: OidcProvider, tmp_path: Path) -> Iterator[Site]:
    with asgi_site(oidc_provider, f"sqlite:///{tmp_path}/sessions.db") as site:
        yield site


def test_login_lands_on_the_page_asked_for_with_a_fresh_session(site: Site) -> None:
    browser = site.browser()
    authorization = browser.start_login("/page?tab=2")
    pre_login = browser.session_cookie()
    assert pre_login is not None, "the login started in an anonymous session"
    query = parse_qs(urlsplit(authorization).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["redirect_uri"] == [site.provider.app.redirect_uri]
    back = site.provider.login(browser.client, authorization, "alice")
    answer = browser.client.get(back)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/page?tab=2"
    after = browser.session_cookie()
    assert after is not None and after != pre_login, "login rotates the session"
    me = browser.me()
    assert me["user"] == "alice"
    assert me["sid"] and me["token"]
    # The pre-login session is gone, not promoted: its cookie names nothing any more.
    assert site.sessions.load(pre_login).is_new
    (record,) = site.user_sessions("alice")
    assert not any(key.startswith(PENDING_KEY) for key in record.data)
    assert set(record.data) == {OIDC_KEY}, "nothing of the anonymous session was carried"
    tokens = record.data[OIDC_KEY]
    for secret in ("access_token", "refresh_token", "id_token"):
        assert tokens[secret] not in after
        assert tokens[secret] not in answer.text
        assert tokens[secret] not in answer.headers.get("location", "")


def test_an_offsite_next_is_replaced_by_the_home_page(site: Site) -> None:
    browser = site.browser()
    answer = browser.log_in("alice", target="//evil.example/steal")
    assert answer.headers["location"] == "/"


def test_a_callback_with_a_state_of_another_browser_is_refused(site: Site) -> None:
    victim, attacker = site.browser(), site.browser()
    victim.start_login()
    back = site.provider.login(attacker.client, attacker.start_login(), "mallory")
    planted = victim.client.get(back, headers={"accept": "text/html"})
    assert planted.status_code == 400
    assert "does not belong to a login started in this browser" in planted.text
    assert victim.me()["user"] is None


def test_a_callback_used_twice_is_refused_the_second_time(site: Site) -> None:
    browser = site.browser()
    back = site.provider.login(browser.client, browser.start_login(), "alice")
    assert browser.client.get(back).status_code == 303
    again = browser.client.get(back, headers={"accept": "application/json"})
    assert again.status_code == 400
    assert again.json()["error"] == "login_state_mismatch"


def test_a_callback_from_another_issuer_is_refused(site: Site) -> None:
    """RFC 9207: the provider advertises the ``iss`` parameter; another value is a mix-up."""
    browser = site.browser()
    back = site.provider.login(browser.client, browser.start_login(), "alice")
    parts = urlsplit(back)
    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
    params["iss"] = "https://other-issuer.example"
    forged = browser.client.get(f"{site.url}{parts.path}?{urlencode(params)}")
    assert forged.status_code == 400
    assert forged.json()["error"] == "invalid_login"
    assert browser.me()["user"] is None


def test_an_error_from_the_provider_is_shown_with_a_way_back(site: Site) -> None:
    browser = site.browser()
    state = parse_qs(urlsplit(browser.start_login("/page")).query)["state"][0]
    refused = browser.get(f"/oidc/callback?error=access_denied&state={state}", html=True)
    assert refused.status_code == 403
    assert "did not log you in (access_denied)" in refused.text
    assert 'href="/oidc/login?next=/page"' in refused.text


def test_two_users_log_in_apart(site: Site) -> None:
    alice, bob = site.browser(), site.browser()
    alice.log_in("alice")
    bob.log_in("bob")
    assert alice.me()["user"] == "alice"
    assert bob.me()["user"] == "bob"
    assert alice.me()["sid"] != bob.me()["sid"]


def test_the_login_path_takes_get_only(site: Site) -> None:
    browser = site.browser()
    answer = browser.client.post(browser.url("/oidc/login"), headers={"accept": "application/json"})
    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET"
