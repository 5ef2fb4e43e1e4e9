"""Refresh paths the other tests leave out: the provider's key set down (before and after the
refresh token is spent: with rotation, a spent refresh token whose answer is dropped ends the
session at the next refresh), and a refusal that is not ``invalid_grant`` (a 502, the session
kept)."""

from __future__ import annotations

from pathlib import Path

from .apps import asgi_site
from .provider_harness import OidcProvider


def test_a_key_set_down_after_its_ttl_does_not_stop_the_refresh(
    oidc_provider: OidcProvider, tmp_path: Path
) -> None:
    """The keys are kept one second here; when the refresh comes they are stale and the key
    set answers 503: the last keys fetched check the new ID token."""
    store = f"sqlite:///{tmp_path}/sessions.db"
    with asgi_site(oidc_provider, store, metadata_ttl=1.0) as site:
        browser, before = site.logged_in()
        browser.wait_until_expired(float(before["expires_at"]))
        site.provider.counters(reset=True)
        with site.provider.configured(jwks_outage=True):
            during = browser.get("/")
        assert during.status_code == 200, during.text
        assert during.json()["token"] != before["token"]
        browser.wait_until_expired(float(during.json()["expires_at"]))
        after = browser.me()
        assert after["user"] == "alice"
        assert after["token"] != during.json()["token"]
        counted = site.provider.counters()
        assert counted.grant("refresh_token") == 2
        assert counted.refresh_replays == 0


def test_a_new_key_unreachable_after_the_refresh_keeps_the_new_tokens(
    oidc_provider: OidcProvider, tmp_path: Path
) -> None:
    """The provider rotated its keys: the refreshed ID token names a key the app has not
    seen, and the key set cannot be fetched. The refresh token is spent already, so the new
    access and refresh tokens are kept (the unchecked ID token is not); the next refresh
    works and the user stays logged in."""
    store = f"sqlite:///{tmp_path}/sessions.db"
    with asgi_site(oidc_provider, store, jwks_refetch_interval=0.1) as site:
        browser, before = site.logged_in()
        (record,) = site.user_sessions("alice")
        id_token = record.data["coatcheck.oidc"]["id_token"]
        site.provider.rotate_key()
        browser.wait_until_expired(float(before["expires_at"]))
        site.provider.counters(reset=True)
        with site.provider.configured(refresh_id_token_tamper="sig-rotated", jwks_outage=True):
            during = browser.get("/")
        assert during.status_code == 200, during.text
        assert during.json()["token"] != before["token"]
        (record,) = site.user_sessions("alice")
        assert record.data["coatcheck.oidc"]["id_token"] == id_token, "the checked one stays"
        browser.wait_until_expired(float(during.json()["expires_at"]))
        assert browser.me()["user"] == "alice"
        counted = site.provider.counters()
        assert counted.grant("refresh_token") == 2
        assert counted.refresh_replays == 0


def test_a_rotated_key_is_fetched_and_trusted(oidc_provider: OidcProvider, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/sessions.db"
    with asgi_site(oidc_provider, store, jwks_refetch_interval=0.1) as site:
        browser, before = site.logged_in()
        site.provider.rotate_key()
        browser.wait_until_expired(float(before["expires_at"]))
        with site.provider.configured(refresh_id_token_tamper="sig-rotated"):
            during = browser.get("/")
        assert during.status_code == 200, during.text
        (record,) = site.user_sessions("alice")
        assert record.data["coatcheck.oidc"]["id_token"].count(".") == 2
        assert browser.me()["user"] == "alice"


def test_oidcc_refresh_refused_as_invalid_client_is_a_502_and_keeps_the_session(
    oidc_provider: OidcProvider, tmp_path: Path
) -> None:
    """The app is redeployed with a wrong client secret: the provider refuses the refresh
    (invalid_client) without spending the refresh token; the user stays logged in, and once
    the secret is right again the refresh works."""
    store = f"sqlite:///{tmp_path}/sessions.db"
    with asgi_site(oidc_provider, store) as site:
        browser, before = site.logged_in()
    cookie = str(browser.session_cookie())
    with asgi_site(oidc_provider, store, client_secret="not-the-secret") as wrong:
        visitor = wrong.browser()
        visitor.client.cookies.set("session", cookie)
        visitor.wait_until_expired(float(before["expires_at"]))
        refused = visitor.get("/")
        page = visitor.get("/page", html=True)
        assert refused.status_code == 502
        assert refused.json()["error"] == "provider_refused"
        assert "invalid_client" in refused.json()["message"]
        assert page.status_code == 502
        assert "still logged in" in page.text
        assert len(wrong.user_sessions("alice")) == 1
    with asgi_site(oidc_provider, store) as fixed:
        again = fixed.browser()
        again.client.cookies.set("session", cookie)
        after = again.me()
        assert after["user"] == "alice"
        assert after["token"] != before["token"]
