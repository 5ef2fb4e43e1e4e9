"""The same user-visible behaviour from the Flask, Django and FastAPI examples."""

from __future__ import annotations

import json

import pytest
from example_sites import COOKIE, Site

JSON = {"accept": "application/json"}
HTML = {"accept": "text/html"}


def as_api(site: Site, token: str) -> int:
    """Status of GET /me for an API client presenting ``token``."""
    client = site.client()
    return client.get("/me", headers={**JSON, "cookie": f"{COOKIE}={token}"}).status_code


def test_login_issues_a_new_token_and_the_pre_login_one_is_dead(site: Site) -> None:
    browser = site.client()
    browser.get("/login")
    pre_login = browser.cookies[COOKIE]
    site.login(browser)
    logged_in = browser.cookies[COOKIE]
    assert logged_in != pre_login
    assert browser.get("/me", headers=JSON).json()["user"] == "alice"
    assert as_api(site, pre_login) == 401
    assert as_api(site, logged_in) == 200


def test_the_session_mode_is_the_one_configured(site: Site) -> None:
    browser = site.client()
    site.login(browser)
    assert browser.cookies[COOKIE].startswith("cs1." if site.sealed else "cc2_")


def test_wrong_password_changes_nothing(site: Site) -> None:
    browser = site.client()
    page = browser.get("/login")
    before = browser.cookies[COOKIE]
    response = browser.post(
        "/login",
        data={"username": "alice", "password": "nope", "csrf_token": site.csrf_from(page.text)},
    )
    assert response.status_code == 401
    assert browser.cookies[COOKIE] == before
    assert browser.get("/me", headers=JSON).status_code == 401


def test_logout_kills_the_session_for_good(site: Site) -> None:
    browser = site.client()
    site.login(browser)
    token = browser.cookies[COOKIE]
    response = browser.post("/logout", data={"csrf_token": site.csrf(browser)})
    assert response.status_code == 303
    assert "clear-site-data" not in response.headers, "off by default: it reaches the whole domain"
    assert as_api(site, token) == 401, "replaying the old cookie gets no session"


def test_idle_expiry_is_reported_as_expired(site: Site) -> None:
    browser = site.client()
    site.login(browser)
    site.clock.advance(29 * 60)
    assert browser.get("/me", headers=JSON).status_code == 200
    site.clock.advance(31 * 60)
    response = browser.get("/me", headers=JSON)
    assert response.status_code == 401
    assert response.json()["error"] == "session_expired"
    redirect = site.client().get("/me", headers=HTML)
    assert redirect.status_code == 303
    assert redirect.headers["location"].startswith("/login")


def test_flash_is_shown_once(site: Site) -> None:
    browser = site.client()
    site.login(browser)
    saved = browser.post("/note", data={"note": "hello", "csrf_token": site.csrf(browser)})
    assert saved.status_code == 303
    first = browser.get("/note", headers=HTML).text
    assert "saved" in first and "hello" in first
    assert "saved" not in browser.get("/note", headers=HTML).text


def test_cross_origin_post_is_refused(site: Site) -> None:
    browser = site.client()
    site.login(browser)
    token = site.csrf(browser)
    forged = browser.post(
        "/note",
        data={"note": "forged", "csrf_token": token},
        headers={"origin": "https://evil.example", "sec-fetch-site": "cross-site"},
    )
    assert forged.status_code == 403
    no_token = browser.post("/note", data={"note": "forged"})
    assert no_token.status_code == 403
    assert "forged" not in browser.get("/note", headers=HTML).text


@pytest.mark.parametrize(
    "target", ["//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:x"]
)
def test_next_cannot_redirect_off_site(site: Site, target: str) -> None:
    browser = site.client()
    location = site.login(browser, next_path=target).headers["location"]
    assert location.startswith("/") and not location.startswith(("//", "/\\"))


def test_opted_out_route_sends_no_cookie(site: Site) -> None:
    response = site.client().get("/static/hello.txt")
    assert response.status_code == 200
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize(
    "value",
    [b"", b"x" * 10_000, b"\xff\xfe\x00binary", b"cc1_" + b"!" * 48, b"cc1_" + b"A" * 48],
    ids=["empty", "huge", "binary", "wrong-alphabet", "unknown"],
)
def test_malformed_cookies_get_a_normal_anonymous_answer(site: Site, value: bytes) -> None:
    cookie = {"cookie": COOKIE.encode() + b"=" + value}
    assert site.raw_get("/", cookie)[0] == 200
    status, body = site.raw_get("/me", {**cookie, "accept": b"application/json"})
    assert status == 401
    assert json.loads(body)["error"] in ("login_required", "session_expired")
    assert site.raw_get("/login", cookie)[0] == 200
