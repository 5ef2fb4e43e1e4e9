"""OpenID Connect in a Django project (``coatcheck.django.oidc.OIDCMiddleware``), end to end:
the example project's settings with the OIDC middleware, served by a threaded WSGI server on
the port the real provider's client is registered for; one provider and one app for the
module (5-s access tokens, rotating refresh tokens), a browser per test. An OIDC login is a
``django.contrib.auth`` login here (views and backend: tests/web/django_oidc_app.py).

``coatcheck.django.oidc`` is imported inside the tests: like every authentication backend
module it needs Django set up, which the example project's fixture does."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core import checks
from django.core.wsgi import get_wsgi_application
from django.test import override_settings
from oidc.apps import Site, serve_wsgi
from oidc.provider_harness import OidcProvider

# The end-to-end tests every adapter passes, and the module's provider they run against.
from oidc_scenarios import *  # noqa: F403
from oidc_scenarios import oidc_names

# The example project's settings, set up once per test session (shared with test_django.py).
from test_django import django_project  # noqa: F401

from coatcheck import SessionManager, open_store
from coatcheck.django.conf import set_manager

SESSIONS = "coatcheck.django.middleware.SessionMiddleware"
OIDC = "coatcheck.django.oidc.OIDCMiddleware"
APP = "django_oidc_app"
BACKEND = f"{APP}.DemoOIDCBackend"


def with_oidc_middleware() -> list[str]:
    middleware = list(settings.MIDDLEWARE)
    middleware.insert(middleware.index(SESSIONS) + 1, OIDC)
    return middleware


@pytest.fixture(scope="module")
def site(
    django_project: None,  # noqa: F811
    provider: OidcProvider,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Site]:
    from coatcheck.django.oidc import close_flow, get_flow

    store_url = f"sqlite:///{tmp_path_factory.mktemp('django-oidc')}/sessions.db"
    manager = SessionManager(open_store(store_url))
    set_manager(manager)
    project = override_settings(
        MIDDLEWARE=with_oidc_middleware(),
        ROOT_URLCONF=APP,
        AUTHENTICATION_BACKENDS=[BACKEND],
        LOGIN_URL="/oidc/login",
        **oidc_names(provider),
    )
    try:
        with project, serve_wsgi(get_wsgi_application(), provider.app.port) as url:
            yield Site(url, provider, get_flow().settings, store_url, manager)
    finally:
        close_flow()
        set_manager(None)
        manager.close()


def errors_of(**changes: Any) -> list[str]:
    with override_settings(**changes):
        return [m.id for m in checks.run_checks() if m.id.startswith("coatcheck.E")]


def test_manage_py_check_names_what_the_middleware_needs(
    django_project: None,  # noqa: F811
    provider: OidcProvider,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("COATCHECK_OIDC_ISSUER", raising=False)
    good = {"MIDDLEWARE": with_oidc_middleware(), "AUTHENTICATION_BACKENDS": [BACKEND]}
    assert errors_of(**good, **oidc_names(provider)) == []
    assert errors_of(**good, COATCHECK_OIDC_ISSUER=None) == ["coatcheck.E002"]  # no issuer
    from coatcheck.django.oidc import check_oidc

    backends = {**good, "AUTHENTICATION_BACKENDS": ["demosite.users.DemoBackend"]}
    with override_settings(**backends, **oidc_names(provider)):
        assert any("OIDCBackend" in problem for problem in check_oidc())
    misplaced = [OIDC, *settings.MIDDLEWARE]
    assert "coatcheck.E003" in errors_of(
        **{**good, "MIDDLEWARE": misplaced}, **oidc_names(provider)
    )


def test_the_default_backend_finds_or_creates_the_django_user() -> None:
    # Auth tables on SQLite, in a child process: see the script.
    script = Path(__file__).with_name("django_oidc_users.py")
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, "ok\n"), result.stderr


def test_an_oidc_login_is_a_django_login(site: Site) -> None:
    """``request.user`` is the user the backend named, and the coatcheck session is that
    user's (its primary key)."""
    _, me = site.logged_in("heidi")
    assert (me["django_user"], me["user"]) == ("heidi", "heidi")
    assert me["token"] is not None
