"""OpenID Connect end to end through a framework adapter, against the real provider: the
tests the Flask and Django modules import, each running them on its own app through its
``site`` fixture (tests/web/test_flask_oidc.py, tests/web/test_django_oidc.py). Each test
logs in users of its own, so they share one app and one store.

The app under test serves, besides the relying party's paths, the routes of
``oidc.apps``: ``GET /`` (who is logged in, as JSON, with a digest of the access token in the
session, ``token``, and of the one the framework's helper gives the view, ``helper``),
``POST /echo``, ``GET /csrf``, ``GET /page`` (HTML with a log-out form) and ``GET /guarded``
(the framework's ``login_required``, then the same JSON as ``/``).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from oidc import test_flow_refresh
from oidc.apps import Browser, Site, path_of
from oidc.provider_harness import OidcProvider, start_provider
from oidc.test_flow_backchannel import FORM, claims, post_token
from oidc.test_flow_ended import assert_ended_page_logs_in_again

__all__ = [  # what the adapter modules import: the provider and every test
    "provider",
    "test_a_provider_outage_is_a_503_and_the_session_stays",
    "test_an_ended_provider_session_shows_the_ended_page",
    "test_backchannel_logout_ends_the_right_session",
    "test_rp_initiated_logout_round_trip",
    "test_the_guard_sends_a_browser_to_the_oidc_login_and_the_view_sees_the_token",
    "test_two_concurrent_requests_on_an_expired_token_refresh_once",
]


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    """The module's own provider (5-s access tokens, rotating refresh tokens)."""
    with start_provider() as provider:
        yield provider


def oidc_names(provider: OidcProvider) -> dict[str, Any]:
    """The relying party's ``COATCHECK_OIDC_*`` settings for ``provider``'s client, on the
    app's port: tokens refreshed a second before they expire."""
    return {
        "COATCHECK_OIDC_ISSUER": provider.issuer,
        "COATCHECK_OIDC_CLIENT_ID": provider.client_id,
        "COATCHECK_OIDC_CLIENT_SECRET": provider.client_secret,
        "COATCHECK_OIDC_BASE_URL": provider.app.base,
        "COATCHECK_OIDC_REFRESH_SKEW": "1s",
    }


def test_the_guard_sends_a_browser_to_the_oidc_login_and_the_view_sees_the_token(
    site: Site,
) -> None:
    """The login guard sends a browser to the OIDC login (an API client gets 401); after the
    provider, the view sees the user and a fresh access token, through the session and the
    framework's helper."""
    user = "grace"
    assert site.browser().get("/guarded").status_code == 401
    browser = site.browser()
    guarded = browser.get("/guarded?tab=2", html=True)
    assert guarded.status_code == 303
    location = guarded.headers["location"]
    assert location.startswith(site.settings.login_path + "?")
    assert parse_qs(urlsplit(location).query)["next"] == ["/guarded?tab=2"]
    authorization = browser.follow(guarded)  # the app's login path, then the provider's form
    assert authorization.status_code == 200
    back = site.provider.login(browser.client, str(authorization.url), user)
    returned = browser.client.get(back)
    assert returned.status_code == 303
    assert returned.headers["location"] == "/guarded?tab=2"
    cookie = browser.session_cookie()
    seen = browser.get("/guarded")
    assert seen.status_code == 200
    me = dict(seen.json())
    assert me["user"] == user
    assert me["token"] is not None
    assert me["helper"] == me["token"]
    assert me["sid"]
    assert cookie is not None and "." not in cookie, "the cookie holds a session token only"
    assert len(site.user_sessions(user)) == 1


def test_two_concurrent_requests_on_an_expired_token_refresh_once(site: Site) -> None:
    """Two requests on an expired access token (the token endpoint slowed down, so both are
    in flight together): one refresh grant at the provider, both answered with the new token,
    the user still logged in."""
    user = "bob"
    browser, before = site.logged_in(user)
    browser.wait_until_expired(float(before["expires_at"]))
    site.provider.counters(reset=True)
    with site.provider.configured(token_delay_ms=1000), ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: browser.get("/"), range(2)))
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    tokens = {a.json()["token"] for a in answers}
    assert len(tokens) == 1
    assert tokens != {before["token"]}
    assert {a.json()["helper"] for a in answers} == tokens
    counted = site.provider.counters()
    assert counted.grant("refresh_token") == 1
    assert counted.refresh_replays == 0
    assert counted.error("refresh_token", "invalid_grant") == 0
    after = browser.me()
    assert after["user"] == user
    assert after["token"] in tokens


def test_an_ended_provider_session_shows_the_ended_page(site: Site) -> None:
    """The provider's session is ended (no back-channel message): the next page, once the
    token is due, is the "session ended" page, whose link logs in again and comes back."""
    browser, before = site.logged_in("alice")
    alive = len(site.user_sessions("alice"))
    browser.wait_until_expired(float(before["expires_at"]))
    assert site.provider.end_sessions() >= 1
    answer = browser.get("/page?tab=3", html=True)
    assert len(site.user_sessions("alice")) == alive - 1, "the local session ended"
    assert_ended_page_logs_in_again(browser, answer, "/page?tab=3")


def test_rp_initiated_logout_round_trip(site: Site) -> None:
    """POST the logout (CSRF token required): the local session ends first, the provider
    confirms, its back-channel call arrives, and the browser lands on the logged-out page."""
    user = "dave"
    browser, _ = site.logged_in(user)
    refused = browser.client.post(
        browser.url(site.settings.logout_path), data={}, headers={"accept": "text/html"}
    )
    assert refused.status_code == 403, "no CSRF token: refused"
    assert len(site.user_sessions(user)) == 1
    page = browser.get("/page", html=True)
    assert 'action="/oidc/logout"' in page.text
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    out = browser.client.post(
        browser.url(site.settings.logout_path),
        data={"csrf_token": token},
        headers={"accept": "text/html"},
    )
    assert out.status_code == 303
    assert out.headers["location"].startswith(site.provider.issuer)
    assert site.user_sessions(user) == []
    back = site.provider.logout(browser.client, out.headers["location"])
    assert path_of(back).startswith(site.settings.logged_out_path + "?")
    landed = browser.client.get(back, headers={"accept": "text/html"})
    assert landed.status_code == 200
    assert "You have been logged out." in landed.text
    assert browser.me()["user"] is None


def test_backchannel_logout_ends_the_right_session(site: Site) -> None:
    """Two browsers of one user (two provider sessions): a forged logout token is refused
    with 400 and ends nothing; the provider's token for one ``sid`` ends that session only,
    with no cookie and no CSRF check involved; that browser's next page is the ended page."""
    user = "erin"
    first, second = Browser(site), Browser(site)
    first.log_in(user)
    second.log_in(user)
    sid = first.me()["sid"]
    assert sid != second.me()["sid"]
    forged = site.provider.sign(claims(site, sid=sid), key="forged", typ="logout+jwt")
    refused = post_token(site, forged)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_request"
    assert len(site.user_sessions(user)) == 2
    token = site.provider.sign(claims(site, sid=sid), typ="logout+jwt")
    done = post_token(
        site, token, origin="https://elsewhere.example", **{"sec-fetch-site": "cross-site"}
    )
    assert done.status_code == 200
    assert done.headers["cache-control"] == "no-store"
    assert "set-cookie" not in done.headers
    assert len(site.user_sessions(user)) == 1
    assert second.me()["user"] == user
    ended = first.get("/page", html=True)
    assert ended.status_code == 303
    assert ended.headers["location"].startswith(site.settings.ended_path + "?next=/page")
    assert first.me()["user"] is None
    endpoint = site.url + site.settings.backchannel_logout_path
    assert httpx.get(endpoint).status_code == 405
    assert httpx.post(endpoint, content="other=1", headers=FORM).status_code == 400


def test_a_provider_outage_is_a_503_and_the_session_stays(site: Site) -> None:
    """The token is due and the provider answers 503 to everything: a clear 503 (JSON for a
    script, a page for a browser), the session kept, working again once the provider is back
    (the ASGI stack's own test, on this app)."""
    test_flow_refresh.test_provider_down_gives_503_and_keeps_the_session(site)
