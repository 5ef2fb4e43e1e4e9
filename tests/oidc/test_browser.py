"""The OpenID Connect flow in a real browser (Playwright driving Debian's Chromium), once,
end to end: the app's "Log in" link, the provider's login form, back on the page asked for,
then "Log out" through the provider's confirmation to the logged-out page. A screenshot of
each step goes to ``$COATCHECK_ARTIFACTS`` (else ``artifacts/screenshots/`` in the
repository), as for the service's pages."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import chromium

from .apps import Site, asgi_site
from .provider_harness import OidcProvider

ROOT = Path(__file__).resolve().parents[2]


def artifacts() -> Path:
    folder = Path(os.environ.get("COATCHECK_ARTIFACTS") or ROOT / "artifacts" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def site(oidc_provider: OidcProvider, tmp_path: Path) -> Iterator[Site]:
    with asgi_site(oidc_provider, f"sqlite:///{tmp_path}/sessions.db") as site:
        yield site


def test_login_button_to_the_provider_and_back_then_log_out(site: Site) -> None:
    shots = artifacts()
    with chromium() as browser:
        context = browser.new_context()
        # The provider's dev pages import a web font; this machine has no way out.
        context.route("https://fonts.googleapis.com/**", lambda route: route.abort())
        page = context.new_page()
        page.goto(f"{site.url}/page")
        assert "Not logged in." in page.inner_text("main")
        page.get_by_role("link", name="Log in").click()

        page.wait_for_url(f"{site.provider.issuer}/interaction/**")
        page.locator("input[name=login]").fill("alice")
        page.locator("input[name=password]").fill("anything")
        page.screenshot(path=str(shots / "oidc-provider-login.png"), full_page=True)
        page.get_by_role("button", name="Sign-in").click()

        page.wait_for_url(f"{site.url}/page")
        assert "Hello alice." in page.inner_text("main")
        page.screenshot(path=str(shots / "oidc-logged-in.png"), full_page=True)
        cookies = {c["name"]: c for c in context.cookies(site.url)}
        assert cookies["session"]["httpOnly"] is True
        (record,) = site.user_sessions("alice")
        for secret in ("access_token", "refresh_token", "id_token"):
            token = record.data["coatcheck.oidc"][secret]
            assert token not in page.content()
            assert all(token not in c["value"] for c in context.cookies())

        page.get_by_role("button", name="Log out").click()
        page.wait_for_url(f"{site.provider.issuer}/session/end**")
        assert site.user_sessions("alice") == [], "the local session ended first"
        page.screenshot(path=str(shots / "oidc-provider-logout.png"), full_page=True)
        page.locator("button[name=logout][value=yes]").click()

        page.wait_for_url(f"{site.url}/oidc/logged-out**")
        assert page.get_by_role("heading", level=1).inner_text() == "Logged out"
        assert "You have been logged out." in page.inner_text("main")
        page.screenshot(path=str(shots / "oidc-logged-out.png"), full_page=True)
