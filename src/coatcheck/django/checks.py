"""Django session settings that mean something to Django's own backends and nothing to the
coatcheck engine: a project switching engines keeps them and would believe they still work,
so ``manage.py check`` names each one that is set, with what to use instead."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core import checks

ENGINE = "coatcheck.django"


@dataclass(frozen=True, slots=True)
class Ignored:
    """One ignored setting: the check id, what coatcheck does instead, and what to set."""

    id: str
    instead: str
    hint: str


IGNORED: dict[str, Ignored] = {
    "SESSION_COOKIE_AGE": Ignored(
        "coatcheck.W003",
        "a session lives as long as the coatcheck Policy allows: an idle timeout (sliding, "
        "30 minutes by default) within an absolute lifetime (12 hours from creation)",
        "Set COATCHECK_IDLE_TIMEOUT and COATCHECK_ABSOLUTE_LIFETIME (e.g. '30m', '12h'); "
        "SESSION_EXPIRE_AT_BROWSER_CLOSE still chooses a browser-session or a persistent cookie.",
    ),
    "SESSION_SAVE_EVERY_REQUEST": Ignored(
        "coatcheck.W004",
        "a request that changes nothing writes only when the last write is older than the "
        "Policy's touch_interval (60 seconds by default), and that write slides the idle timeout",
        "Set COATCHECK_TOUCH_INTERVAL (e.g. '60s'; 0 writes on every request).",
    ),
    "SESSION_SERIALIZER": Ignored(
        "coatcheck.W005",
        "session data is always JSON, checked when a value is assigned; nothing is pickled",
        "Remove the setting and store JSON values (str, int, float, bool, None, list, dict).",
    ),
    "SESSION_CACHE_ALIAS": Ignored(
        "coatcheck.W006",
        "it configures Django's cache session backends; coatcheck keeps sessions in its store",
        "Remove the setting; the store is COATCHECK_STORE_URL (for example redis://...).",
    ),
    "SESSION_FILE_PATH": Ignored(
        "coatcheck.W006",
        "it configures Django's file session backend; coatcheck keeps sessions in its store",
        "Remove the setting; the store is COATCHECK_STORE_URL (for example sqlite:///...).",
    ),
}


def check_ignored_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """A warning for each setting of :data:`IGNORED` the project sets, when the engine is
    coatcheck's (with Django's own engine they mean what they always meant)."""
    if settings.SESSION_ENGINE != ENGINE:
        return []
    return [
        checks.Warning(
            f"{name} is set but the coatcheck session engine ignores it: {ignored.instead}.",
            hint=ignored.hint,
            id=ignored.id,
        )
        for name, ignored in IGNORED.items()
        if settings.is_overridden(name)
    ]
