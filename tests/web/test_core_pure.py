"""The web layer's pure parts: cookies, client IP, CSRF decisions, guards, open redirects."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coatcheck import ConfigError
from coatcheck.cookies import (
    CookieSettings,
    CookieTooLarge,
    cookie_values,
    development,
    host_is_loopback,
)
from coatcheck.web import csrf
from coatcheck.web.errors import WebError
from coatcheck.web.guards import Redirect, require_login, safe_next
from coatcheck.web.request import RequestInfo, client_ip, parse_networks
from coatcheck.web.settings import WebSettings


def req(method: str = "GET", path: str = "/", **headers: str) -> RequestInfo:
    hdrs = {"host": "app.example", **{k.replace("_", "-"): v for k, v in headers.items()}}
    return RequestInfo(method, path, "https", hdrs, peer="203.0.113.5")


# --- cookies ---------------------------------------------------------------------------


def test_default_cookie_is_host_prefixed_secure_httponly_lax() -> None:
    header = CookieSettings().set_cookie("tok")
    assert header == "__Host-session=tok; Path=/; Secure; HttpOnly; SameSite=Lax"
    assert "Domain" not in header and "Max-Age" not in header


def test_persistent_cookie_gets_max_age_and_expiry_clears() -> None:
    cookie = CookieSettings(persistent=True)
    assert "Max-Age=3600" in cookie.set_cookie("t", 3600)
    gone = cookie.expire_cookie()
    assert gone.startswith("__Host-session=;") and "Max-Age=0" in gone


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "__Host-x", "path": "/shop"},
        {"name": "__Host-x", "domain": "example.com"},
        {"name": "bad name"},
        {"http_only": False},
        {"name": "s", "secure": False},
        {"name": "__Secure-s", "secure": False, "loopback_only": True},
        {"name": "s", "same_site": "None", "secure": False, "loopback_only": True},
        {"path": "no-slash"},
    ],
)
def test_unsafe_cookie_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        CookieSettings(**kwargs)  # type: ignore[arg-type]


def test_apps_sharing_a_domain_can_scope_by_name_and_path() -> None:
    shop = CookieSettings(name="__Secure-shop", path="/shop")
    assert shop.set_cookie("t").startswith("__Secure-shop=t; Path=/shop;")


def test_development_mode_drops_secure_and_prefix_only() -> None:
    dev = development()
    assert dev.name == "session" and not dev.secure and dev.loopback_only
    assert dev.set_cookie("t") == "session=t; Path=/; HttpOnly; SameSite=Lax"


def test_oversized_cookie_is_an_error_not_a_dropped_cookie() -> None:
    with pytest.raises(CookieTooLarge, match="server mode"):
        CookieSettings().set_cookie("x" * 4100)


def test_cookie_header_parsing_keeps_duplicates_and_ignores_junk() -> None:
    header = 'a=1; __Host-session=one; junk; =x; __Host-session="two"; b=\x00'
    assert cookie_values(header, "__Host-session") == ["one", "two"]
    assert cookie_values(None, "x") == [] and cookie_values("", "x") == []


@given(st.text())
def test_cookie_parsing_never_raises(header: str) -> None:
    cookie_values(header, "__Host-session")


def _every_pair(header: str, name: str) -> list[str]:
    """The plain reading cookie_values must equal: every pair, stripped, compared by name."""
    found = []
    for pair in header.split(";"):
        key, sep, value = pair.strip().partition("=")
        if sep and key.strip() == name:
            value = value.strip()
            found.append(value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value)
    return found


@given(
    st.lists(
        st.one_of(
            st.text(alphabet=' \t=;"\u2003sxion_-', max_size=12),
            st.sampled_from(["session", " session ", "xsession", "session_x", "session=v"]),
        ),
        max_size=8,
    ).map("".join)
)
def test_cookie_parsing_skips_other_cookies_without_changing_the_result(header: str) -> None:
    assert cookie_values(header, "session") == _every_pair(header, "session")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.1:8000", True),
        ("localhost:5000", True),
        ("[::1]:8000", True),
        ("::1", True),
        ("example.com", False),
        ("127.0.0.1.evil.com", False),
        ("localhost.evil.com:80", False),
        (None, False),
    ],
)
def test_loopback_hosts(host: str | None, loopback: bool) -> None:
    assert host_is_loopback(host) is loopback


# --- client IP ---------------------------------------------------------------------------


def test_forwarded_headers_ignored_from_untrusted_peers() -> None:
    request = RequestInfo("GET", "/", "https", {"x-forwarded-for": "1.2.3.4"}, peer="198.51.100.9")
    assert client_ip(request) == "198.51.100.9"
    assert client_ip(request, parse_networks(["10.0.0.0/8"])) == "198.51.100.9"


def test_trusted_proxy_chain_is_walked_from_the_right() -> None:
    proxies = parse_networks(["10.0.0.0/8"])
    request = RequestInfo(
        "GET", "/", "https", {"x-forwarded-for": "6.6.6.6, 198.51.100.7, 10.0.0.2"}, peer="10.0.0.1"
    )
    assert client_ip(request, proxies) == "198.51.100.7", "a client-supplied left hop is ignored"
    forwarded = RequestInfo(
        "GET", "/", "https", {"forwarded": 'for="[2001:db8::1]:4711";proto=https'}, peer="10.0.0.1"
    )
    assert client_ip(forwarded, proxies) == "2001:db8::1"


def test_bad_trusted_proxy_config_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not-an-ip"):
        parse_networks(["not-an-ip"])


# --- CSRF --------------------------------------------------------------------------------


SETTINGS = WebSettings.build(trusted_origins=["https://admin.example"])


@pytest.mark.parametrize(
    ("headers", "ok"),
    [
        ({"sec_fetch_site": "same-origin"}, True),
        ({"sec_fetch_site": "cross-site", "origin": "https://evil.example"}, False),
        ({"sec_fetch_site": "cross-site"}, False),
        ({"sec_fetch_site": "same-site", "origin": "https://admin.example"}, True),
        ({"origin": "https://app.example"}, True),
        ({"origin": "https://evil.example"}, False),
        ({"origin": "null"}, False),
        ({"referer": "https://app.example/form"}, True),
        ({"referer": "https://evil.example/app.example"}, False),
        ({}, True),
    ],
)
def test_origin_checks(headers: dict[str, str], ok: bool) -> None:
    assert (csrf.origin_problem(req("POST", **headers), SETTINGS) is None) is ok


def test_which_requests_need_csrf_checks() -> None:
    assert csrf.needs_check(req("POST"), SETTINGS, has_cookie=True)
    assert not csrf.needs_check(req("GET"), SETTINGS, has_cookie=True)
    assert not csrf.needs_check(req("POST"), SETTINGS, has_cookie=False)
    assert csrf.needs_origin_check(req("POST"), SETTINGS, False), "login forms are checked too"
    bearer = req("POST", authorization="Bearer x")
    assert not csrf.needs_origin_check(bearer, SETTINGS, False), "a bearer request alone"
    assert csrf.needs_check(bearer, SETTINGS, has_cookie=True), "the cookie still rides along"
    assert csrf.needs_origin_check(bearer, SETTINGS, True)
    hooks = WebSettings.build(csrf_exempt_paths=["/hooks"])
    assert not csrf.needs_check(req("POST", "/hooks/github"), hooks, has_cookie=True)


def test_form_field_extraction() -> None:
    assert csrf.form_field("application/x-www-form-urlencoded", b"a=1&csrf_token=t%2B1") == "t+1"
    body = (
        b'--XyZ\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\ntok\r\n'
        b'--XyZ\r\nContent-Disposition: form-data; name="f"; filename="csrf_token"\r\n\r\nx\r\n'
        b"--XyZ--\r\n"
    )
    assert csrf.form_field("multipart/form-data; boundary=XyZ", body) == "tok"
    assert csrf.form_field("multipart/form-data", body) is None
    assert csrf.form_field("application/json", b'{"csrf_token": "x"}') is None
    assert csrf.token_matches("abc", "abc") and not csrf.token_matches("abc", "abd")
    assert not csrf.token_matches(None, "x") and not csrf.token_matches("x", None)


@given(
    st.binary(max_size=500),
    st.sampled_from(["multipart/form-data; boundary=a", "application/x-www-form-urlencoded"]),
)
def test_form_parsing_never_raises(body: bytes, content_type: str) -> None:
    csrf.form_field(content_type, body)


# --- guards and redirects ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/me", "/me"),
        ("/a?b=c", "/a?b=c"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/", "/"),
        ("javascript:alert(1)", "/"),
        ("/ok\r\nSet-Cookie: x", "/"),
        ("/%2F%2Fevil", "/%2F%2Fevil"),
        (None, "/"),
    ],
)
def test_safe_next(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_guard_sends_browsers_to_login_and_apis_a_401() -> None:
    browser = req("GET", "/me", accept="text/html,application/xhtml+xml")
    decision = require_login(browser, SETTINGS, user_id=None, expired_reason=None)
    assert isinstance(decision, Redirect)
    assert decision.location == "/login?next=/me&reason=login_required"
    api = req("GET", "/me", accept="application/json")
    denial = require_login(api, SETTINGS, user_id=None, expired_reason="expired_idle")
    assert isinstance(denial, WebError) and denial.status == 401
    assert denial.code == "session_expired"
    assert require_login(api, SETTINGS, user_id="alice", expired_reason=None) is None


def test_recent_login_guard() -> None:
    api = req("POST", "/password", accept="application/json")
    fresh = require_login(
        api, SETTINGS, user_id="a", expired_reason=None, authenticated_at=100, max_age=60, now=150
    )
    assert fresh is None
    stale = require_login(
        api, SETTINGS, user_id="a", expired_reason=None, authenticated_at=100, max_age=60, now=200
    )
    assert isinstance(stale, WebError) and stale.code == "reauthenticate"


def test_wsgi_headers_are_read_from_the_environ_on_demand() -> None:
    from coatcheck.web.wsgi import request_from_environ

    environ = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "/app",
        "PATH_INFO": "/form",
        "wsgi.url_scheme": "https",
        "REMOTE_ADDR": "203.0.113.7",
        "QUERY_STRING": "a=1",
        "HTTP_COOKIE": "__Host-session=x",
        "HTTP_X_CSRF_TOKEN": "t",
        "HTTP_EMPTY": "",
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": "",
        "PATH": "/usr/bin",  # Django's META holds the process environment too
    }
    request = request_from_environ(environ)
    assert (request.method, request.path, request.scheme) == ("POST", "/app/form", "https")
    assert (request.peer, request.query, request.path_with_query) == (
        "203.0.113.7",
        "a=1",
        "/app/form?a=1",
    )
    assert request.header("cookie") == "__Host-session=x"
    assert request.header("x-csrf-token") == "t"
    assert request.header("content-type") == "application/x-www-form-urlencoded"
    assert request.header("content-length") is None  # empty means absent, as in CGI
    assert request.header("empty") is None
    assert request.header("authorization") is None
    assert dict(request.headers) == {
        "cookie": "__Host-session=x",
        "x-csrf-token": "t",
        "content-type": "application/x-www-form-urlencoded",
    }
    assert len(request.headers) == 3
    with pytest.raises(KeyError):
        request.headers["authorization"]
