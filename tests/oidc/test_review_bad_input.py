"""Bad input to every relying-party endpoint, through the real ASGI stack (uvicorn) and once
through WSGI: never a traceback or a 500, never a redirect off this site, never the provider's
words reflected raw into a page."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .apps import HTML, JSON, Site, asgi_site
from .provider_harness import OidcProvider
from .test_flow_ended import drop_refresh_token

EXAMPLES = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
PAGES = ("/oidc/login", "/oidc/callback", "/oidc/logged-out", "/oidc/ended")
PARAMETER_NAMES = ("code", "state", "iss", "error", "error_description", "next", "provider", "x")
FORM = {"content-type": "application/x-www-form-urlencoded"}
SCRIPT = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def site(oidc_provider: OidcProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    store = tmp_path_factory.mktemp("bad-input") / "sessions.db"
    with asgi_site(oidc_provider, f"sqlite:///{store}", login_timeout=1.0) as site:
        yield site


def same_site_path(location: str) -> bool:
    """A redirect a browser keeps on this site: one absolute path, printable ASCII only."""
    return (
        location.startswith("/")
        and location[1:2] not in ("/", "\\")
        and all(0x21 <= ord(c) < 0x7F for c in location)
    )


def assert_clear_answer(answer: httpx.Response) -> None:
    assert answer.status_code < 500, answer.text
    if answer.is_redirect:
        location = answer.headers["location"]
        assert same_site_path(location) or location.startswith(answer.url.scheme + "://127.0.0.1")
    assert SCRIPT not in answer.text


queries = st.lists(
    st.tuples(st.sampled_from(PARAMETER_NAMES), st.text(max_size=300)), max_size=8
).map(lambda pairs: urlencode(pairs))


@EXAMPLES
@given(path=st.sampled_from(PAGES), query=queries, accept=st.sampled_from([HTML, JSON]))
def test_junk_queries_get_clear_answers(
    site: Site, path: str, query: str, accept: dict[str, str]
) -> None:
    answer = httpx.get(f"{site.url}{path}?{query}", headers=accept)
    assert_clear_answer(answer)


@pytest.mark.parametrize("path", PAGES)
def test_a_query_of_too_many_parameters_is_a_400(site: Site, path: str) -> None:
    answer = httpx.get(f"{site.url}{path}?{'a=1&' * 150}", headers=JSON)
    assert answer.status_code == 400
    assert answer.json()["error"] == "bad_query"


@pytest.mark.parametrize("name", ["code", "state", "iss", "error"])
def test_a_repeated_callback_parameter_is_refused_and_the_login_stays(
    site: Site, name: str
) -> None:
    browser = site.browser()
    back = site.provider.login(browser.client, browser.start_login("/page"), "alice")
    params = parse_qs(urlsplit(back).query)
    params.setdefault(name, ["x"])
    doubled = [*((k, v[0]) for k, v in params.items()), (name, "another")]
    refused = browser.get(f"/oidc/callback?{urlencode(doubled)}")
    assert refused.status_code == 400
    assert refused.json()["error"] == "repeated_parameter"
    assert browser.client.get(back).headers["location"] == "/page", "the login still works"


def test_the_provider_error_is_escaped_and_its_description_never_shown(site: Site) -> None:
    browser = site.browser()
    state = parse_qs(urlsplit(browser.start_login()).query)["state"][0]
    query = urlencode({"error": SCRIPT, "error_description": f"{SCRIPT} evil", "state": state})
    page = browser.get(f"/oidc/callback?{query}", html=True)
    assert page.status_code == 400
    assert SCRIPT not in page.text
    assert "&lt;script&gt;" in page.text
    assert "evil" not in page.text, "error_description is not shown"


def test_a_callback_without_a_code_is_refused(site: Site) -> None:
    browser = site.browser()
    state = parse_qs(urlsplit(browser.start_login()).query)["state"][0]
    answer = browser.get(f"/oidc/callback?state={state}")
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_login"


def test_an_unknown_state_is_refused(site: Site) -> None:
    browser = site.browser()
    browser.start_login()
    answer = browser.get("/oidc/callback?code=abc&state=made-up")
    assert answer.status_code == 400
    assert answer.json()["error"] == "login_state_mismatch"


def test_an_expired_pending_login_is_refused_with_a_way_back(site: Site) -> None:
    """``login_timeout`` is one second here."""
    browser = site.browser()
    back = site.provider.login(browser.client, browser.start_login("/page"), "alice")
    time.sleep(1.2)
    answer = browser.client.get(back, headers=HTML)
    assert answer.status_code == 400
    assert 'href="/oidc/login?next=/page"' in answer.text
    assert browser.me()["user"] is None


def test_the_pre_login_cookie_is_dead_after_the_callback(site: Site) -> None:
    browser = site.browser()
    authorization = browser.start_login()
    planted = browser.session_cookie()
    assert planted is not None
    browser.client.get(site.provider.login(browser.client, authorization, "alice"))
    assert browser.me()["user"] == "alice"
    old = httpx.get(f"{site.url}/", headers=JSON, cookies={"session": planted})
    assert old.json()["user"] is None
    assert site.sessions.load(planted).is_new


EVIL_NEXT = [
    "//evil.example/",
    "/\\evil.example",
    "\\\\evil.example",
    "https://evil.example/",
    "http:evil.example",
    "javascript:alert(1)",
    "%2F%2Fevil.example",
    "/%2F%2Fevil.example",
    "%5C%5Cevil.example",
    "/\r\nSet-Cookie: x=1",
    "/\t/evil.example",
    " //evil.example",
    "\uff0f\uff0fevil.example",
    "/.//evil.example",
    "/\u65e5\u672c?q=\u2028",
    "/caf\u00e9",
]


@pytest.mark.parametrize("target", EVIL_NEXT)
def test_next_never_leaves_the_site(site: Site, target: str) -> None:
    browser = site.browser()
    answer = browser.get(f"/oidc/login?next={quote(target, safe='')}", html=True)
    back = site.provider.login(browser.client, answer.headers["location"], "alice")
    landed = browser.client.get(back, headers=HTML)
    assert landed.status_code == 303
    location = landed.headers["location"]
    assert same_site_path(location), location
    assert "\r" not in location and "\n" not in location
    ended = browser.get(f"/oidc/ended?next={quote(target, safe='')}", html=True)
    href = ended.text.split('href="', 1)[1].split('"', 1)[0]
    assert href.startswith("/oidc/login?next=/")
    assert not href.startswith("/oidc/login?next=//")


@EXAMPLES
@given(body=st.binary(max_size=2000), kind=st.sampled_from(["form", "json", "text", "none"]))
def test_junk_back_channel_bodies_are_refused(site: Site, body: bytes, kind: str) -> None:
    headers = {
        "form": FORM,
        "json": {"content-type": "application/json"},
        "text": {"content-type": "text/plain"},
        "none": {},
    }[kind]
    answer = httpx.post(f"{site.url}/oidc/backchannel-logout", content=body, headers=headers)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"


def test_a_repeated_logout_token_is_refused(site: Site) -> None:
    answer = httpx.post(
        f"{site.url}/oidc/backchannel-logout",
        content="logout_token=a.b.c&logout_token=d.e.f",
        headers=FORM,
    )
    assert answer.status_code == 400
    assert "one logout_token" in answer.json()["error_description"]


def test_a_huge_back_channel_body_is_a_413(site: Site) -> None:
    answer = httpx.post(
        f"{site.url}/oidc/backchannel-logout",
        content=b"logout_token=" + b"a" * 100_000,
        headers=FORM,
    )
    assert answer.status_code == 413


@EXAMPLES
@given(state=st.text(max_size=500))
def test_junk_logged_out_states_are_refused_or_shown(site: Site, state: str) -> None:
    answer = httpx.get(f"{site.url}/oidc/logged-out?{urlencode({'state': state})}", headers=JSON)
    assert answer.status_code in (200, 400)


@pytest.mark.parametrize("error", ["temporarily_unavailable", "server_error"])
def test_a_transient_error_from_prompt_none_keeps_the_session(site: Site, error: str) -> None:
    """RFC 6749, 4.1.2.1: the authorization endpoint's 503 and 500. The provider is not well;
    the session at it is not over, so nothing ends here."""
    user = f"quiet-{error}"
    browser, before = site.logged_in(user)
    drop_refresh_token(site, user)
    browser.wait_until_expired(float(before["expires_at"]))
    silent = browser.get("/page", html=True)
    state = parse_qs(urlsplit(silent.headers["location"]).query)["state"][0]
    answer = browser.get(f"/oidc/callback?{urlencode({'error': error, 'state': state})}", html=True)
    assert answer.status_code == 503
    assert "still logged in" in answer.text
    assert 'href="/page"' in answer.text
    assert len(site.user_sessions(user)) == 1
