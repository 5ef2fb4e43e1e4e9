"""``coatcheck serve`` with OpenID Connect login, as a real process from an empty directory,
configured by environment variables (once by the config file's ``[oidc]`` table), against
the real test provider (npm ``oidc-provider``) whose client is registered on the service's
port: logging in from ``/login``, the account page, introspection of the session cookie, a
back-channel logout ending the session (introspection, ``/v1/events``, the ended page),
RP-initiated logout from ``/logout``, re-authentication at the provider before "end all
other sessions", a provider that is down, and the start-up errors."""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
from oidc.provider_harness import AppUrls, OidcProvider, start_provider
from servers import free_port, stop_process

from coatcheck.service.app import create_app
from coatcheck.service.context import ServiceContext
from coatcheck.service.settings import load_service_settings

from .conftest import uvicorn_server
from .test_api_stores import read_event
from .test_serve_process import COATCHECK, START_DEADLINE, Served, clean_env, login

HTML = {"accept": "text/html,application/xhtml+xml"}
PASSWORD = "carol-local-password"
REAUTH_AFTER = 3.0  # seconds: short, so a login grows old within the test
WAIT_LIMIT = 30.0  # seconds to wait for a login to grow older than REAUTH_AFTER


@contextmanager
def new_provider() -> Iterator[OidcProvider]:
    """A provider whose client is registered on a free port, for a service to listen on.
    Access tokens live 3 s, so the pages refresh them."""
    with start_provider(app=AppUrls(port=free_port()), access_token_ttl=3) as started:
        yield started


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    with new_provider() as started:
        yield started


def oidc_env(provider: OidcProvider, **more: str) -> dict[str, str]:
    """The service's whole configuration, as environment variables."""
    return {
        "COATCHECK_OIDC_ISSUER": provider.issuer,
        "COATCHECK_OIDC_CLIENT_ID": provider.client_id,
        "COATCHECK_OIDC_CLIENT_SECRET": provider.client_secret,
        "COATCHECK_OIDC_REFRESH_SKEW": "1s",
        **more,
    }


def run(
    cwd: Path, env: dict[str, str], *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COATCHECK, *args],
        cwd=cwd,
        env={**clean_env(), **env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@contextmanager
def serving(cwd: Path, port: int, env: dict[str, str], *args: str) -> Iterator[Served]:
    """``coatcheck serve`` in ``cwd`` on ``port`` with ``env`` over a clean environment,
    healthy; stopped afterwards."""
    out, err = cwd / "serve.out", cwd / "serve.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [COATCHECK, "serve", "--port", str(port), *args],
            cwd=cwd,
            env={**clean_env(), **env},
            stdout=stdout,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
        )
    served = Served(process, f"http://127.0.0.1:{port}", out, err)
    try:
        deadline = time.monotonic() + START_DEADLINE
        while not healthy(served.url):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"coatcheck serve did not come up\n{served.logs()}")
            time.sleep(0.1)
        yield served
    finally:
        stop_process(process)


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@dataclass
class Service:
    """A running service, its provider and an admin key for its API."""

    served: Served
    provider: OidcProvider
    admin_key: str

    @property
    def url(self) -> str:
        return self.served.url

    def api(self) -> httpx.Client:
        headers = {"authorization": f"Bearer {self.admin_key}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)

    def introspect(self, token: str) -> dict[str, Any]:
        with self.api() as api:
            answer = api.post("/v1/sessions/introspect", json={"token": token})
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def browser(self) -> Browser:
        return Browser(self)


class Browser:
    """One browser: one cookie jar for the service and the provider (both on 127.0.0.1)."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.client = httpx.Client(timeout=30)

    def get(self, path: str) -> httpx.Response:
        return self.client.get(urljoin(self.service.url, path), headers=HTML)

    def post(self, path: str, data: dict[str, str] | None = None) -> httpx.Response:
        """A form post from a page of the service (its CSRF field from the sessions page)."""
        form = {"csrf_token": self.csrf(), **(data or {})}
        headers = {**HTML, "origin": self.service.url}
        return self.client.post(urljoin(self.service.url, path), data=form, headers=headers)

    def csrf(self) -> str:
        page = self.get("/account/sessions")
        match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert match, page.text
        return html.unescape(match[1])

    @property
    def token(self) -> str:
        """The service's session cookie (what another service would introspect)."""
        token = self.client.cookies.get("session")
        assert token
        return token

    def log_in(self, user: str = "alice", target: str = "/account/sessions") -> httpx.Response:
        """From the login page's button through the provider's form and back; the page the
        browser lands on."""
        page = self.get(f"/login?next={target}")
        assert page.status_code == 200, page.text
        match = re.search(r'id="provider-login" href="([^"]+)"', page.text)
        assert match, page.text
        start = self.get(html.unescape(match[1]))
        assert start.status_code == 303, start.text
        return self.through_provider(start.headers["location"], user)

    def through_provider(self, authorization_url: str, user: str) -> httpx.Response:
        back = self.service.provider.login(self.client, authorization_url, user)
        done = self.client.get(back, headers=HTML)
        assert done.status_code == 303, done.text
        return self.get(done.headers["location"])


def session_id(service: Service, browser: Browser) -> str:
    answer = service.introspect(browser.token)
    assert answer["active"] is True, answer
    return str(answer["id"])


def revocations(service: Service, wanted: set[str]) -> dict[str, str | None]:
    """The ``revoked`` events on ``/v1/events`` (from the first) for the session ids
    ``wanted``: id -> digest prefix."""
    found: dict[str, str | None] = {}
    with (
        service.api() as api,
        api.stream("GET", "/v1/events", headers={"last-event-id": "0"}) as stream,
    ):
        assert stream.status_code == 200
        lines = stream.iter_lines()
        while not wanted <= found.keys():
            event = read_event(lines)
            if event["event"] == "revoked":
                data = json.loads(event["data"])
                found[data["id"]] = data["digest_prefix"]
    return {id_: found[id_] for id_ in wanted}


def digest_prefix(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


# --- login = both, from environment variables only ------------------------------------------------


@pytest.fixture(scope="module")
def both(provider: OidcProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """``login = both``: the provider beside local users; logins grow old after 3 s."""
    cwd = tmp_path_factory.mktemp("serve-both")
    env = oidc_env(provider, COATCHECK_LOGIN="both", COATCHECK_REAUTH_AFTER=f"{REAUTH_AFTER}s")
    with serving(cwd, provider.app.port, env) as served:
        made = run(cwd, env, "service-keys", "create", "test", "--scope", "admin")
        assert made.returncode == 0, made.stderr
        added = run(cwd, env, "users", "add", "carol", stdin=f"{PASSWORD}\n")
        assert added.returncode == 0, added.stderr
        service = Service(served, provider, made.stdout.strip())
        yield service
    assert "Traceback" not in served.err_file.read_text()


def test_start_says_what_to_register_at_the_provider(both: Service) -> None:
    base = both.url
    assert (
        f"coatcheck: login = both through the OpenID Provider {both.provider.issuer}; "
        f"register there: redirect URI {base}/oidc/callback, post-logout redirect URI "
        f"{base}/oidc/logged-out, back-channel logout URI {base}/oidc/backchannel-logout"
    ) in both.served.out


def test_login_page_offers_the_provider_beside_the_password_form(both: Service) -> None:
    page = both.browser().get("/login?next=/account/tokens")
    assert page.status_code == 200
    assert (
        '<a class="button" id="provider-login" href="/oidc/login?next=/account/tokens">'
        "Log in with 127.0.0.1</a>"
    ) in page.text
    assert 'name="password"' in page.text and 'action="/login"' in page.text
    local = login(both.url, "carol", PASSWORD)  # a local user still logs in with a password
    sessions = local.get("/account/sessions")
    assert '<strong id="user">carol</strong>' in sessions.text and "via " not in sessions.text


def test_login_through_the_provider_then_back_channel_logout(both: Service) -> None:
    browser = both.browser()
    page = browser.log_in("alice")
    assert page.status_code == 200, page.text
    assert str(page.url).endswith("/account/sessions")
    assert '<strong id="user">alice</strong>' in page.text
    assert "via 127.0.0.1" in page.text and "This device" in page.text
    answer = both.introspect(browser.token)
    assert (answer["active"], answer["user_id"], answer["kind"]) == (True, "alice", "browser")
    ended_id, token = answer["id"], browser.token
    other = both.browser()
    other.log_in("alice")  # another browser, another provider session: stays
    # alice logs out at the provider (as from another app): it posts a logout token to the
    # service's back-channel endpoint for that provider session.
    end_session = both.provider.discovery()["end_session_endpoint"]
    back = both.provider.logout(browser.client, end_session)
    assert back.startswith(f"{both.provider.issuer}/")  # no post-logout URI: the provider's page
    assert both.introspect(token) == {"active": False}
    assert both.introspect(other.token)["active"] is True
    assert revocations(both, {ended_id}) == {ended_id: digest_prefix(token)}
    gone = browser.get("/account/sessions")
    assert gone.status_code == 303
    assert gone.headers["location"] == "/oidc/ended?next=/account/sessions"
    ended = browser.get(gone.headers["location"])
    assert ended.status_code == 200 and "Your session has ended" in ended.text
    assert 'href="/oidc/login?next=/account/sessions">Log in again' in ended.text


def test_a_session_the_provider_ended_silently_ends_at_the_next_refresh(both: Service) -> None:
    browser = both.browser()
    browser.log_in("frank")
    ended_id, token = session_id(both, browser), browser.token
    both.provider.end_sessions()  # no back-channel logout: the refresh token dies with it
    deadline = time.monotonic() + WAIT_LIMIT
    while (page := browser.get("/account/sessions")).status_code == 200:
        assert time.monotonic() < deadline, "the access token was never refreshed"
        time.sleep(0.25)
    assert page.status_code == 303
    assert page.headers["location"] == "/oidc/ended?next=/account/sessions"
    assert both.introspect(token) == {"active": False}
    assert revocations(both, {ended_id}) == {ended_id: digest_prefix(token)}


def test_rp_initiated_logout_from_the_logout_button(both: Service) -> None:
    browser = both.browser()
    browser.log_in("bob")
    ended_id, token = session_id(both, browser), browser.token
    out = browser.post("/logout")
    assert out.status_code == 303
    location = out.headers["location"]
    assert location.startswith(both.provider.discovery()["end_session_endpoint"])
    query = parse_qs(urlsplit(location).query)
    assert query["post_logout_redirect_uri"] == [f"{both.url}/oidc/logged-out"]
    assert "id_token_hint" in query and "state" in query
    assert both.introspect(token) == {"active": False}  # ended here first
    back = both.provider.logout(browser.client, location)
    assert back.startswith(f"{both.url}/oidc/logged-out?state=")
    done = browser.get(back)
    assert done.status_code == 200 and "You have been logged out" in done.text
    assert revocations(both, {ended_id}) == {ended_id: digest_prefix(token)}
    assert browser.get("/account/sessions").headers["location"].startswith("/login")


def test_end_all_other_sessions_asks_the_provider_to_log_in_again(both: Service) -> None:
    browser, other = both.browser(), both.browser()
    browser.log_in("dave")
    other.log_in("dave")
    other_id = session_id(both, other)
    refreshes = both.provider.counters().grant("refresh_token")
    deadline = time.monotonic() + WAIT_LIMIT
    while 'id="reauth"' not in (page := browser.get("/account/sessions")).text:
        assert time.monotonic() < deadline, page.text
        time.sleep(0.25)
    assert page.status_code == 200 and "Confirm at 127.0.0.1" in page.text
    # The 3-s access token expired meanwhile: the pages refreshed it, no redirect.
    assert both.provider.counters().grant("refresh_token") > refreshes
    confirm = browser.post("/account/sessions/end-others")
    assert confirm.status_code == 303
    location = confirm.headers["location"]
    assert parse_qs(urlsplit(location).query)["prompt"] == ["login"]
    assert both.introspect(other.token)["active"] is True  # nothing ended yet
    page = browser.through_provider(location, "dave")  # the provider's login form again
    assert str(page.url).endswith("/account/sessions")
    assert 'id="reauth"' not in page.text and "End all other sessions" in page.text
    ended = browser.post("/account/sessions/end-others")
    assert ended.status_code == 303, ended.text
    assert "1 other session ended." in browser.get("/account/sessions").text
    assert both.introspect(other.token) == {"active": False}
    assert other_id in revocations(both, {other_id})
    assert other.get("/account/sessions").headers["location"].startswith("/expired")


# --- login = oidc, from the config file's [oidc] table, the provider down at start ---------------


def test_oidc_only_from_the_config_file_with_the_provider_down_at_start(
    tmp_path: Path,
) -> None:
    with new_provider() as provider:
        oidc_only_with_the_provider_down_at_start(provider, tmp_path)


def oidc_only_with_the_provider_down_at_start(provider: OidcProvider, tmp_path: Path) -> None:
    config = tmp_path / "coatcheck.toml"
    config.write_text(
        '[service]\nlogin = "oidc"\nlogin_provider_name = "Test ID"\n\n'
        f'[oidc]\nissuer = "{provider.issuer}"\nclient_id = "{provider.client_id}"\n'
        f'client_secret = "{provider.client_secret}"\nrefresh_skew = "1s"\n'
        'scopes = ["openid", "email"]\n'
    )
    config.chmod(0o600)
    with ExitStack() as outage:
        # The provider answers nothing but 503 while the service starts: it does not care.
        outage.enter_context(provider.configured(outage=True))
        with serving(tmp_path, provider.app.port, {}, "--config", "coatcheck.toml") as served:
            assert "coatcheck users add" not in served.out  # nobody logs in with a password
            service = Service(served, provider, "")
            browser = service.browser()
            page = browser.get("/login")
            assert "Log in with Test ID" in page.text
            assert 'name="password"' not in page.text and 'action="/login"' not in page.text
            refused = httpx.post(
                f"{served.url}/login", data={"username": "a", "password": "b"}, headers=HTML
            )
            assert refused.status_code == 405 and refused.headers["allow"] == "GET"
            assert "no password login" in refused.text
            down = browser.get("/oidc/login?next=/account/sessions")
            assert down.status_code == 503, down.text
            assert "Sign-in provider unavailable" in down.text
            assert down.headers["retry-after"] == "5"
            outage.close()  # the provider is back; the same button now works
            page = browser.log_in("erin")
            assert '<strong id="user">erin</strong>' in page.text and "via Test ID" in page.text


# --- shutdown ------------------------------------------------------------------------------------


def test_shutdown_closes_the_providers_http_client(tmp_path: Path) -> None:
    """The service's lifespan closes the relying party's HTTP client with the context."""
    env = {**FAKE, "COATCHECK_STORE_URL": f"sqlite:///{tmp_path}/service.db"}
    settings = load_service_settings(None, env, {})
    context = ServiceContext.build(settings)
    assert context.oidc is not None
    with uvicorn_server(create_app(settings, context=context)) as base:
        assert httpx.get(f"{base}/login").status_code == 200
    with pytest.raises(RuntimeError, match="client has been closed"):
        asyncio.run(context.oidc.provider.metadata())


# --- start-up errors: one line, exit 2, nothing created -------------------------------------------

FAKE = {
    "COATCHECK_LOGIN": "oidc",
    "COATCHECK_OIDC_ISSUER": "https://id.example.com",
    "COATCHECK_OIDC_CLIENT_ID": "sessions",
}


def refused_start(cwd: Path, env: dict[str, str], *args: str) -> str:
    """Start ``coatcheck serve`` expecting it to refuse: its one error line."""
    answer = run(cwd, env, "serve", "--port", str(free_port()), *args)
    assert answer.returncode == 2, answer.stdout + answer.stderr
    lines = answer.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("coatcheck: error: "), answer.stderr
    assert not (cwd / "coatcheck-data").exists()  # refused before creating anything
    return lines[0].removeprefix("coatcheck: error: ")


def test_sealed_sessions_are_refused(tmp_path: Path) -> None:
    error = refused_start(tmp_path, {**FAKE, "COATCHECK_SESSION_MODE": "sealed"})
    assert error.startswith("login = oidc: OpenID Connect needs server-side sessions")


def test_a_bad_issuer_or_no_client_id_is_refused(tmp_path: Path) -> None:
    error = refused_start(tmp_path, {**FAKE, "COATCHECK_OIDC_ISSUER": "http://id.example.com"})
    assert error == (
        "COATCHECK_OIDC_ISSUER: issuer 'http://id.example.com' must use https (http is allowed "
        "for a loopback host only)"
    )
    error = refused_start(tmp_path, {**FAKE, "COATCHECK_OIDC_CLIENT_ID": ""})
    assert error == (
        "COATCHECK_OIDC_CLIENT_ID is missing: the OpenID Provider 'https://id.example.com' "
        "needs this service's client id there ([oidc] client_id)"
    )


def test_a_client_secret_in_a_config_file_others_can_read_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "coatcheck.toml"
    config.write_text(
        '[service]\nlogin = "both"\n[oidc]\nissuer = "https://id.example.com"\n'
        'client_id = "sessions"\nclient_secret = "s3cret"\n'
    )
    config.chmod(0o644)
    error = refused_start(tmp_path, {}, "--config", "coatcheck.toml")
    assert error == (
        "config file coatcheck.toml has permissions 0644, wider than 0600: its [oidc] "
        "client_secret is a secret, so other users must not read it; run: chmod 600 "
        "coatcheck.toml, or move the secret to COATCHECK_OIDC_CLIENT_SECRET in the environment"
    )
    assert "s3cret" not in error
    config.chmod(0o600)
    without = tmp_path / "public.toml"  # no secret in it: others may read it
    without.write_text(
        '[service]\nlogin = "oidc"\n[oidc]\nissuer = "ftp://id.example"\nclient_id = "a"\n'
    )
    without.chmod(0o644)
    error = refused_start(tmp_path, {}, "--config", "public.toml")
    assert error.startswith("public.toml: [oidc]: COATCHECK_OIDC_ISSUER: issuer 'ftp://")
