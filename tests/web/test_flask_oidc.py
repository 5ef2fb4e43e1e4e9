"""OpenID Connect in a Flask app (``CoatCheck(app, oidc=True)``), end to end: a threaded WSGI
server on the port the real provider's client is registered for, one provider and one app
for the module (5-s access tokens, rotating refresh tokens), a browser per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import oidc_scenarios as scenarios
import pytest
from flask import Flask
from oidc.apps import JSON, Site, digest, page_html, serve_wsgi, whoami
from oidc.provider_harness import OidcProvider, start_provider

from coatcheck import SessionManager, open_store
from coatcheck.oidc import OIDCConfigError, OIDCSettings
from coatcheck.web.flask import (
    CoatCheck,
    current_session,
    login_required,
    oidc_access_token,
)
from coatcheck.web.flask.oidc import OIDC_EXTENSION_KEY

SEALED_KEY = "A" * 43  # 32 bytes, URL-safe base64


def oidc_config(provider: OidcProvider) -> dict[str, Any]:
    """The relying party's ``COATCHECK_OIDC_*`` keys: tokens refreshed a second early."""
    return {
        "COATCHECK_OIDC_ISSUER": provider.issuer,
        "COATCHECK_OIDC_CLIENT_ID": provider.client_id,
        "COATCHECK_OIDC_CLIENT_SECRET": provider.client_secret,
        "COATCHECK_OIDC_BASE_URL": provider.app.base,
        "COATCHECK_OIDC_REFRESH_SKEW": "1s",
    }


def flask_app(manager: SessionManager, provider: OidcProvider) -> Flask:
    app = Flask(__name__)
    app.config.update(COATCHECK_LOOPBACK_DEVELOPMENT=True, **oidc_config(provider))
    CoatCheck(app, manager=manager, oidc=True)

    def me() -> dict[str, Any]:
        session = current_session()
        return {**whoami(session.user_id, session), "helper": digest(oidc_access_token())}

    app.add_url_rule("/", "home", me)
    app.add_url_rule("/echo", "echo", me, methods=["POST"])
    app.add_url_rule("/guarded", "guarded", login_required(me))

    @app.get("/csrf")
    def csrf() -> dict[str, str]:
        return {"csrf": current_session().csrf_token()}

    @app.get("/page")
    def page() -> str:
        session = current_session()
        user = session.user_id
        return page_html(user, session.csrf_token() if user else "")

    return app


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    with start_provider() as provider:
        yield provider


@pytest.fixture(scope="module")
def site(provider: OidcProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    store_url = f"sqlite:///{tmp_path_factory.mktemp('flask-oidc')}/sessions.db"
    manager = SessionManager(open_store(store_url))
    app = flask_app(manager, provider)
    flow = app.extensions[OIDC_EXTENSION_KEY]
    try:
        with serve_wsgi(app, provider.app.port) as url:
            yield Site(url, provider, flow.settings, store_url, manager)
    finally:
        flow.close()
        manager.close()


def test_the_guard_sends_a_browser_to_the_oidc_login_and_the_view_sees_the_token(
    site: Site,
) -> None:
    scenarios.guarded_page_logs_in_through_the_provider(site, "grace")
    assert site.browser().get("/guarded").status_code == 401, "an API client gets 401"


def test_two_concurrent_requests_on_an_expired_token_refresh_once(site: Site) -> None:
    scenarios.concurrent_requests_refresh_once(site, "bob")


def test_an_ended_provider_session_shows_the_ended_page(site: Site) -> None:
    scenarios.provider_session_ended_shows_the_ended_page(site)


def test_rp_initiated_logout_round_trip(site: Site) -> None:
    scenarios.rp_initiated_logout_round_trip(site, "dave")


def test_backchannel_logout_ends_the_right_session(site: Site) -> None:
    scenarios.backchannel_logout_ends_the_right_session(site, "erin")


def test_a_provider_outage_is_a_503_and_the_session_stays(site: Site) -> None:
    scenarios.provider_outage_is_a_503_and_keeps_the_session(site)


def test_sealed_cookie_mode_is_refused(provider: OidcProvider) -> None:
    app = Flask(__name__)
    app.config.update(COATCHECK_SESSION_MODE="sealed", COATCHECK_SEALED_KEYS=[SEALED_KEY])
    with pytest.raises(OIDCConfigError, match="needs server-side sessions") as refused:
        CoatCheck(app, oidc=OIDCSettings(issuer=provider.issuer, client_id="app"))
    assert "sealed-cookie mode" in str(refused.value)


def test_oidc_true_without_an_issuer_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COATCHECK_OIDC_ISSUER", raising=False)
    app = Flask(__name__)
    app.config["COATCHECK_STORE_URL"] = "memory://"
    with pytest.raises(OIDCConfigError, match="COATCHECK_OIDC_ISSUER"):
        CoatCheck(app, oidc=True)


def test_the_login_guard_keeps_an_explicit_login_url(provider: OidcProvider) -> None:
    app = Flask(__name__)
    app.config.update(
        COATCHECK_STORE_URL="memory://", COATCHECK_LOGIN_URL="/sign-in", **oidc_config(provider)
    )
    extension = CoatCheck(app, oidc=True)
    try:
        assert extension.settings.login_url == "/sign-in"
        assert "/oidc/backchannel-logout" in extension.settings.exempt_paths
        with app.test_client() as client:
            answer = client.get("/oidc/login?next=/x", headers=JSON)
            assert answer.status_code == 303
            assert answer.headers["location"].startswith(provider.issuer)
    finally:
        extension.oidc(app).close()
