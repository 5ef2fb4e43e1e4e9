"""``INSTALLED_APPS += ["coatcheck.django"]``: the ``{% load coatcheck %}`` tags, the
``clearsessions`` command and start-up checks of the configuration (including Django session
settings the engine ignores, :mod:`coatcheck.django.checks`)."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks

from ..core.errors import ConfigError
from .checks import check_ignored_settings

DJANGO_SESSIONS = "django.contrib.sessions.middleware.SessionMiddleware"
DJANGO_CSRF = "django.middleware.csrf.CsrfViewMiddleware"
SESSIONS = "coatcheck.django.middleware.SessionMiddleware"
OIDC = "coatcheck.django.oidc.OIDCMiddleware"


class CoatcheckConfig(AppConfig):
    name = "coatcheck.django"
    label = "coatcheck"
    verbose_name = "coatcheck sessions"

    def ready(self) -> None:
        checks.register(check_settings)
        checks.register(check_ignored_settings)


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Configuration mistakes reported by ``manage.py check`` (and at ``runserver``)."""
    from .conf import cookie_settings, policy, web_settings

    found: list[checks.CheckMessage] = []
    try:
        cookie_settings()
        policy()
        web_settings()
    except ConfigError as exc:
        found.append(checks.Error(str(exc), id="coatcheck.E001"))
    middleware = list(getattr(settings, "MIDDLEWARE", ()))
    if DJANGO_SESSIONS in middleware and settings.SESSION_ENGINE == "coatcheck.django":
        found.append(
            checks.Warning(
                f"{DJANGO_SESSIONS} with the coatcheck engine sets a cookie on every change, "
                "cannot answer 503 when the store is down and ignores "
                "COATCHECK_CLEAR_SITE_DATA at logout.",
                hint="Use coatcheck.django.middleware.SessionMiddleware instead.",
                id="coatcheck.W001",
            )
        )
    if DJANGO_CSRF in middleware and "coatcheck.django.middleware.CsrfMiddleware" in middleware:
        found.append(
            checks.Warning(
                "Both Django's CsrfViewMiddleware and coatcheck's CsrfMiddleware are installed; "
                "forms would need both tokens.",
                hint=f"Remove {DJANGO_CSRF}.",
                id="coatcheck.W002",
            )
        )
    if OIDC in middleware:
        found += check_oidc_middleware(middleware)
    return found


def check_oidc_middleware(middleware: list[str]) -> list[checks.CheckMessage]:
    """The OIDC middleware's settings, backend and place (imported only when installed: it
    needs ``coatcheck[oidc]``)."""
    from .oidc import check_oidc

    found: list[checks.CheckMessage] = [
        checks.Error(problem, id="coatcheck.E002") for problem in check_oidc()
    ]
    if SESSIONS not in middleware[: middleware.index(OIDC)]:
        found.append(
            checks.Error(
                f"{OIDC} works on the session of {SESSIONS}, which must come before it.",
                hint=f"Put {OIDC} right after {SESSIONS} in MIDDLEWARE.",
                id="coatcheck.E003",
            )
        )
    return found
