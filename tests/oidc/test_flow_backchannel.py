"""Back-channel logout through the app's endpoint: the provider's own logout token ends
exactly the local sessions of that provider session, and nothing else; tokens the
conformance suite's rp-backchannel modules send (wrong issuer, audience, event, algorithm,
a nonce, a replay) are refused with 400 and end nothing."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from coatcheck.oidc import BACKCHANNEL_LOGOUT_EVENT

from .apps import Browser, Site, asgi_site
from .provider_harness import OidcProvider

FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture
def site(oidc_provider: OidcProvider, tmp_path: Path) -> Iterator[Site]:
    with asgi_site(oidc_provider, f"sqlite:///{tmp_path}/sessions.db") as site:
        yield site


@pytest.fixture
def four(site: Site) -> dict[str, Browser]:
    """Two users with two browsers each (four provider sessions, four local ones)."""
    browsers = {}
    for name in ("alice-1", "alice-2", "bob-1", "bob-2"):
        browsers[name] = site.browser()
        browsers[name].log_in(name.split("-")[0])
    return browsers


def alive(site: Site) -> dict[str, int]:
    return {user: len(site.user_sessions(user)) for user in ("alice", "bob")}


def claims(site: Site, **changes: Any) -> dict[str, Any]:
    """A valid logout token's claims; a change to None drops the claim."""
    base: dict[str, Any] = {
        "iss": site.provider.issuer,
        "aud": site.provider.client_id,
        "iat": int(time.time()),
        "jti": secrets.token_urlsafe(16),
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def post_token(site: Site, token: str, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{site.url}/oidc/backchannel-logout",
        content=f"logout_token={token}",
        headers={**FORM, **headers},
    )


def test_oidcc_client_test_rp_backchannel_rpinitlogout(
    site: Site, four: dict[str, Browser]
) -> None:
    """alice logs out at the provider in her first browser (as from another app): the
    provider's logout token ends that browser's session here, and only that one; that
    browser's next page is the "session ended" page."""
    end_session = site.provider.discovery()["end_session_endpoint"]
    site.provider.logout(four["alice-1"].client, end_session)
    assert alive(site) == {"alice": 1, "bob": 2}
    assert four["alice-2"].me()["user"] == "alice"
    assert four["bob-1"].me()["user"] == "bob"
    ended = four["alice-1"].get("/page", html=True)
    assert ended.status_code == 303
    assert ended.headers["location"].startswith("/oidc/ended?next=/page")
    assert four["alice-1"].me()["user"] is None


def test_a_logout_token_with_sub_only_ends_every_session_of_that_user(
    site: Site, four: dict[str, Browser]
) -> None:
    token = site.provider.sign(claims(site, sub="alice"), typ="logout+jwt")
    answer = post_token(site, token)
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    assert alive(site) == {"alice": 0, "bob": 2}
    api = four["alice-2"].get("/")
    assert api.status_code == 401
    assert api.json()["reason"] == "backchannel_logout"


def test_a_logout_token_with_a_sid_ends_that_session_only(
    site: Site, four: dict[str, Browser]
) -> None:
    sid = four["bob-2"].me()["sid"]
    token = site.provider.sign(claims(site, sid=sid, sub="bob"), typ="logout+jwt")
    assert post_token(site, token).status_code == 200
    assert alive(site) == {"alice": 2, "bob": 1}
    assert four["bob-1"].me()["user"] == "bob"


def test_an_unknown_session_is_a_success(site: Site, four: dict[str, Browser]) -> None:
    token = site.provider.sign(claims(site, sid="no-such-session"), typ="logout+jwt")
    assert post_token(site, token).status_code == 200
    assert alive(site) == {"alice": 2, "bob": 2}


REFUSED = [
    (
        "oidcc-client-test-rp-backchannel-rpinitlogout-wrong-iss",
        {"iss": "https://other.example"},
        {},
    ),
    ("oidcc-client-test-rp-backchannel-rpinitlogout-wrong-aud", {"aud": "another-client"}, {}),
    ("oidcc-client-test-rp-backchannel-rpinitlogout-with-nonce", {"nonce": "n-0S6_WzA2Mj"}, {}),
    ("oidcc-client-test-rp-backchannel-rpinitlogout-no-event", {"events": None}, {}),
    (
        "oidcc-client-test-rp-backchannel-rpinitlogout-wrong-event",
        {"events": {"http://schemas.openid.net/event/other": {}}},
        {},
    ),
    ("oidcc-client-test-rp-backchannel-rpinitlogout-alg-none", {}, {"alg": "none"}),
    ("oidcc-client-test-rp-backchannel-rpinitlogout-wrong-alg", {}, {"key": "client-secret"}),
    ("forged-signature", {}, {"key": "forged"}),
    ("no-sid-no-sub", {"sid": None, "sub": None}, {}),
    ("expired", {"iat": int(time.time()) - 3600, "exp": int(time.time()) - 3000}, {}),
]


@pytest.mark.parametrize(("module", "changes", "signing"), REFUSED, ids=[r[0] for r in REFUSED])
def test_logout_tokens_the_conformance_suite_sends_are_refused(
    site: Site,
    four: dict[str, Browser],
    module: str,
    changes: dict[str, Any],
    signing: dict[str, Any],
) -> None:
    sid = four["alice-1"].me()["sid"]
    base = claims(site, sid=sid, sub="alice")
    base.update(changes)
    signed = {k: v for k, v in base.items() if v is not None}
    key = signing.pop("key", "provider")
    token = site.provider.sign(signed, key=key, typ="logout+jwt", **signing)
    answer = post_token(site, token)
    assert answer.status_code == 400, module
    assert answer.json()["error"] == "invalid_request"
    assert answer.json()["error_description"]
    assert answer.headers["cache-control"] == "no-store"
    assert alive(site) == {"alice": 2, "bob": 2}


def test_a_replayed_logout_token_is_refused(site: Site, four: dict[str, Browser]) -> None:
    sid = four["alice-1"].me()["sid"]
    token = site.provider.sign(claims(site, sid=sid), typ="logout+jwt")
    assert post_token(site, token).status_code == 200
    replayed = post_token(site, token)
    assert replayed.status_code == 400
    assert "used already" in replayed.json()["error_description"]


def test_no_cookie_and_no_csrf_are_involved(site: Site, four: dict[str, Browser]) -> None:
    sid = four["alice-1"].me()["sid"]
    token = site.provider.sign(claims(site, sid=sid), typ="logout+jwt")
    answer = post_token(
        site, token, origin="https://elsewhere.example", **{"sec-fetch-site": "cross-site"}
    )
    assert answer.status_code == 200
    assert "set-cookie" not in answer.headers
    assert alive(site) == {"alice": 1, "bob": 2}


def test_bad_requests_get_clear_answers(site: Site) -> None:
    endpoint = f"{site.url}/oidc/backchannel-logout"
    assert httpx.get(endpoint).status_code == 405
    not_a_form = httpx.post(endpoint, json={"logout_token": "x"})
    assert not_a_form.status_code == 400
    assert not_a_form.json()["error"] == "invalid_request"
    missing = httpx.post(endpoint, content="other=1", headers=FORM)
    assert missing.status_code == 400
    assert "logout_token" in missing.json()["error_description"]
    junk = post_token(site, "not.a.jwt")
    assert junk.status_code == 400


def test_provider_keys_unreachable_is_a_retryable_refusal(
    oidc_provider: OidcProvider, tmp_path: Path
) -> None:
    """The app has not fetched the provider's metadata and keys yet and the provider is down:
    400 temporarily_unavailable with Retry-After (the back-channel spec's answer when the RP
    could not log out); the jti is not spent, so the same token works once it is back."""
    with asgi_site(oidc_provider, f"sqlite:///{tmp_path}/sessions.db") as site:
        token = site.provider.sign(claims(site, sub="carol"), typ="logout+jwt")
        with site.provider.configured(outage=True):
            down = post_token(site, token)
        assert down.status_code == 400
        assert down.json()["error"] == "temporarily_unavailable"
        assert down.headers["retry-after"]
        assert post_token(site, token).status_code == 200
