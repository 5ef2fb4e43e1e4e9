"""Login paths the other tests leave out: a re-authentication (``start_login(prompt="login")``)
that the provider must really carry out, checked by ``auth_time``; and a ``user_id_claim`` other
than ``sub`` (present, or missing: a clear refusal)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.requests import Request
from starlette.responses import Response

from coatcheck import AsyncSessionManager
from coatcheck.cookies import development
from coatcheck.oidc import OIDCSettings
from coatcheck.oidc.record import OIDC_KEY
from coatcheck.web.asgi import SCOPE_KEY
from coatcheck.web.oidc import OIDCApp, with_oidc
from coatcheck.web.settings import WebSettings

from .apps import HTML, Site, asgi_site, starlette_app
from .provider_harness import AppUrls, OidcProvider, start_provider


def reauthenticating_stack(manager: AsyncSessionManager, settings: OIDCSettings) -> Any:
    """The test app plus ``GET /reauth``: off to the provider with ``prompt=login``, back to
    ``/page`` (what ``coatcheck serve`` does before "end all other sessions")."""
    stack: list[OIDCApp] = []

    async def reauth(request: Request) -> Response:
        reply = await stack[0].flow.start_login(request.scope[SCOPE_KEY], "/page", prompt="login")
        return Response(reply.body, reply.status, headers=dict(reply.headers))

    inner = starlette_app(manager)
    inner.add_route("/reauth", reauth)
    stack.append(with_oidc(inner, manager, settings, WebSettings.build(cookie=development())))
    return stack[0]


@pytest.fixture
def site(oidc_provider: OidcProvider, tmp_path: Path) -> Iterator[Site]:
    store = f"sqlite:///{tmp_path}/sessions.db"
    with asgi_site(oidc_provider, store, build=reauthenticating_stack) as site:
        yield site


def test_a_reauthentication_asks_for_the_credentials_and_checks_auth_time(site: Site) -> None:
    browser, _ = site.logged_in()
    started = int(time.time())  # auth_time is in whole seconds
    answer = browser.get("/reauth", html=True)
    authorization = parse_qs(urlsplit(answer.headers["location"]).query)
    assert authorization["prompt"] == ["login"]
    assert authorization["max_age"] == ["0"]
    at_provider = browser.client.get(answer.headers["location"])
    assert "/interaction/" in at_provider.headers["location"], "the provider asks again"
    back = site.provider.login(browser.client, answer.headers["location"], "alice")
    assert browser.client.get(back, headers=HTML).headers["location"] == "/page"
    (record,) = site.user_sessions("alice")
    assert record.data[OIDC_KEY]["auth_time"] >= started, "max_age made auth_time present"


def test_a_provider_that_skips_the_reauthentication_is_not_believed(site: Site) -> None:
    """Its ID token says the user authenticated an hour ago: the login is refused with a way
    back, not taken as a fresh re-authentication (and no redirect loop follows)."""
    browser, _ = site.logged_in()
    answer = browser.get("/reauth", html=True)
    with site.provider.configured(id_token_tamper="auth-time-old"):
        back = site.provider.login(browser.client, answer.headers["location"], "alice")
        refused = browser.client.get(back, headers=HTML)
    assert refused.status_code == 400
    assert "auth_time" in refused.text
    assert 'href="/oidc/login?next=/page"' in refused.text
    assert browser.me()["user"] == "alice", "the session before it is as it was"


def test_an_ordinary_login_does_not_ask_for_max_age(site: Site) -> None:
    query = parse_qs(urlsplit(site.browser().start_login()).query)
    assert "max_age" not in query and "prompt" not in query


@pytest.fixture
def claims_provider(oidc_provider: OidcProvider) -> Iterator[OidcProvider]:
    """A provider that puts the scopes' claims (name, email) in the ID token itself, as
    Keycloak and Auth0 do; oidc-provider's default keeps them for the userinfo endpoint."""
    app = AppUrls(port=oidc_provider.app.port)
    with start_provider(app=app, id_token_claims=True) as provider:
        yield provider


def test_the_user_id_can_be_the_email_claim(claims_provider: OidcProvider, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/sessions.db"
    with asgi_site(claims_provider, store, user_id_claim="email") as site:
        browser, me = site.logged_in("alice")
        assert me["user"] == "alice@example.test"
        (record,) = site.user_sessions("alice@example.test")
        assert record.data[OIDC_KEY]["sub"] == "alice"
        browser.wait_until_expired(float(me["expires_at"]))
        assert browser.me()["user"] == "alice@example.test", "a refresh keeps the user"


def test_an_unverified_email_names_no_one(claims_provider: OidcProvider, tmp_path: Path) -> None:
    """``email_verified: false``: an address anyone could have typed at the provider is no
    user id (OpenID Connect Core 1.0, 5.7; the "nOAuth" account takeover)."""
    store = f"sqlite:///{tmp_path}/sessions.db"
    with asgi_site(claims_provider, store, user_id_claim="email") as site:
        browser = site.browser()
        with site.provider.configured(id_token_tamper="email-unverified"):
            refused = browser.log_in("alice")
        assert refused.status_code == 403
        assert "not verified" in refused.text
        assert site.user_sessions("alice@example.test") == []
        assert browser.me()["user"] is None


def test_a_missing_user_id_claim_is_a_clear_refusal(
    oidc_provider: OidcProvider, tmp_path: Path
) -> None:
    """The shared provider keeps ``email`` out of the ID token: no user id, no login."""
    store = f"sqlite:///{tmp_path}/sessions.db"
    with asgi_site(oidc_provider, store, user_id_claim="email") as site:
        browser = site.browser()
        refused = browser.log_in("alice")
        assert refused.status_code == 502
        assert "&#x27;email&#x27; claim" in refused.text
        api = site.browser()
        back = site.provider.login(api.client, api.start_login(), "alice")
        answer = api.client.get(back, headers={"accept": "application/json"})
        assert answer.status_code == 502
        assert answer.json()["error"] == "no_user_id"
        assert browser.me()["user"] is None
        assert site.user_sessions("alice") == []
