"""OpenID Connect in a Flask app (``CoatCheck(app, oidc=True)``), end to end: a threaded WSGI
server on the port the real provider's client is registered for, one provider and one app
for the module (5-s access tokens, rotating refresh tokens), a browser per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from oidc.apps import JSON, Site, digest, page_html, serve_wsgi, whoami
from oidc.provider_harness import OidcProvider

# The end-to-end tests every adapter passes, and the module's provider they run against.
from oidc_scenarios import *  # noqa: F403
from oidc_scenarios import oidc_names

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


def flask_app(manager: SessionManager, provider: OidcProvider) -> Flask:
    app = Flask(__name__)
    app.config.update(COATCHECK_LOOPBACK_DEVELOPMENT=True, **oidc_names(provider))
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
        COATCHECK_STORE_URL="memory://", COATCHECK_LOGIN_URL="/sign-in", **oidc_names(provider)
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
