"""Tossed cookies against the three example apps: values of the session cookie's name planted
beside the real one (by a sibling subdomain, or for another path) never lock the user out."""

from __future__ import annotations

import pytest
from example_sites import COOKIE, Site
from example_trials import HTML, JSON, logged_in, planted, send, set_cookies


@pytest.mark.parametrize("kind", ["junk", "made-up"])
@pytest.mark.parametrize("count", [3, 7])
def test_planted_values_ahead_of_the_live_cookie_do_not_lock_the_user_out(
    site: Site, kind: str, count: int
) -> None:
    live = logged_in(site)
    response = send(site, "GET", "/me", [*planted(site, kind, count), live], headers=JSON)
    assert response.status_code == 200
    assert response.json()["user"] == "alice"
    assert not set_cookies(response), "nothing to set, and the real cookie is never expired"


def test_junk_never_counts_against_the_lookup_cap(site: Site) -> None:
    live = logged_in(site)
    values = [*planted(site, "junk", 20), *planted(site, "made-up", 7), live]
    response = send(site, "GET", "/me", values, headers=JSON)
    assert response.status_code == 200


def test_the_live_cookie_is_found_in_any_position(site: Site) -> None:
    live = logged_in(site)
    for position in range(4):
        values = planted(site, "made-up", 3)
        values.insert(position, live)
        assert send(site, "GET", "/me", values, headers=JSON).status_code == 200


@pytest.mark.parametrize("kind", ["junk", "made-up"])
def test_several_dead_values_are_never_expired(site: Site, kind: str) -> None:
    """Planted values and no live session: anonymous, and no Set-Cookie that would delete
    whichever cookie the browser files under our name, path and domain."""
    for path, headers in (("/me", JSON), ("/me", HTML), ("/keys", JSON)):
        response = send(site, "GET", path, planted(site, kind, 3), headers=headers)
        assert response.status_code in (303, 401, 200)
        assert not set_cookies(response)


@pytest.mark.parametrize("kind", ["junk", "made-up"])
def test_a_browser_with_planted_cookies_can_still_log_in(site: Site, kind: str) -> None:
    """The login form's CSRF token lives in a new anonymous session; the browser sends that
    cookie after the planted ones, and it is the one found."""
    tossed = planted(site, kind, 3)
    page = send(site, "GET", "/login", tossed)
    assert page.status_code == 200
    fresh = page.cookies[COOKIE]
    assert fresh and fresh not in tossed
    form = {
        "username": "alice",
        "password": "alice-password",
        "next": "/me",
        "csrf_token": site.csrf_from(page.text),
    }
    done = send(site, "POST", "/login", [*tossed, fresh], data=form)
    assert done.status_code == 303, done.text
    token = done.cookies[COOKIE]
    me = send(site, "GET", "/me", [*tossed, token], headers=JSON)
    assert me.status_code == 200
    assert me.json()["user"] == "alice"


def test_two_live_sessions_stay_ambiguous(site: Site) -> None:
    first, second = logged_in(site), logged_in(site)
    assert send(site, "GET", "/me", [first, second], headers=JSON).status_code == 401
    response = send(site, "GET", "/counter", [first, second], headers=JSON)
    assert response.status_code == 400
    assert response.json()["error"] == "conflicting_session_cookies"
    assert send(site, "GET", "/me", [first], headers=JSON).status_code == 200
    assert send(site, "GET", "/me", [second], headers=JSON).status_code == 200
