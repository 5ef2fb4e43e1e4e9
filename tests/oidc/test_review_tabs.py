"""Several tabs of one browser at once: logins started in the same session at the same moment
each keep their own pending entry (one session key per ``state``, so two requests' saves do not
overwrite each other), and each tab comes back to its page."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from .apps import Site, asgi_site
from .provider_harness import OidcProvider
from .test_flow_ended import drop_refresh_token

TABS = ["/page?tab=1", "/page?tab=2", "/page?tab=3"]


@pytest.fixture
def site(oidc_provider: OidcProvider, tmp_path: Path) -> Iterator[Site]:
    with asgi_site(oidc_provider, f"sqlite:///{tmp_path}/sessions.db") as site:
        yield site


def test_tabs_reopened_at_once_all_come_back_through_prompt_none(site: Site) -> None:
    """No refresh token, the access token expired, three tabs reloaded at the same moment:
    each goes through ``prompt=none`` and lands on its own page, none on an error page."""
    browser, before = site.logged_in()
    drop_refresh_token(site, "alice")
    browser.wait_until_expired(float(before["expires_at"]))
    with ThreadPoolExecutor(len(TABS)) as pool:
        starts = list(pool.map(lambda tab: browser.get(tab, html=True), TABS))
    states = {parse_qs(urlsplit(s.headers["location"]).query)["state"][0] for s in starts}
    assert len(states) == len(TABS)
    for tab, start in zip(TABS, starts, strict=True):
        back = browser.client.get(start.headers["location"])  # the provider, prompt=none
        landed = browser.client.get(back.headers["location"], headers={"accept": "text/html"})
        assert landed.status_code == 303, landed.text
        assert landed.headers["location"] == tab
    assert browser.get("/page", html=True).status_code == 200
    assert browser.me()["user"] == "alice"
