"""Issue 10's trials against the three example apps: a bearer header on a cookie request, and
what caches may keep."""

from __future__ import annotations

import pytest
from example_sites import Site
from example_trials import CROSS_SITE, HTML, JSON, assert_no_store, made_up, send, set_cookies

# -- a bearer header on a cookie request ------------------------------------------------------


def test_a_bearer_header_does_not_switch_off_csrf_for_a_cookie_request(site: Site) -> None:
    browser = site.client()
    site.login(browser)
    bearer = {"authorization": "Bearer junk"}
    forged = browser.post("/logout", headers={**bearer, **CROSS_SITE})
    assert forged.status_code == 403
    no_token = browser.post("/logout", headers=bearer)
    assert no_token.status_code == 403
    assert browser.get("/me", headers=JSON).status_code == 200, "still logged in"


# -- what caches may keep ---------------------------------------------------------------------


@pytest.mark.parametrize(("path", "headers"), [("/keys", JSON), ("/me", HTML), ("/me", JSON)])
def test_a_response_that_clears_a_stale_cookie_is_not_stored(
    site: Site, path: str, headers: dict[str, str]
) -> None:
    response = send(site, "GET", path, [made_up(site)], headers=headers)
    (cleared,) = set_cookies(response)
    assert "Max-Age=0" in cleared
    assert_no_store(response)


def test_logout_is_not_stored(site: Site) -> None:
    browser = site.client()
    site.login(browser)
    response = browser.post("/logout", data={"csrf_token": site.csrf(browser)})
    assert response.status_code == 303
    assert_no_store(response)


@pytest.mark.parametrize(
    ("path", "headers"), [("/me", HTML), ("/me", JSON), ("/note", HTML), ("/keys", JSON)]
)
def test_responses_to_a_logged_in_user_are_not_stored(
    site: Site, path: str, headers: dict[str, str]
) -> None:
    browser = site.client()
    site.login(browser)
    response = browser.get(path, headers=headers)
    assert response.status_code == 200
    assert_no_store(response)


def test_a_page_that_never_reads_the_session_stays_cacheable(site: Site) -> None:
    browser = site.client()
    site.login(browser)
    response = browser.get("/", headers=HTML)
    assert response.status_code == 200
    assert "no-store" not in response.headers.get("cache-control", "")
