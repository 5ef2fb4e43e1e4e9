"""coatcheck as a drop-in for Django's session backends: the system checks that name Django
session settings the engine ignores, the one-time import of Django's live sessions, and the
admin page of a user's sessions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core import checks
from django.test import override_settings

# The example project's settings, set up once per test session (shared with test_django.py).
from test_django import django_project  # noqa: F401

from coatcheck.django.checks import IGNORED


def ignored_warnings() -> list[checks.CheckMessage]:
    """What ``manage.py check`` reports, limited to coatcheck's ignored-setting warnings."""
    found = checks.run_checks()
    return [m for m in found if m.id in {i.id for i in IGNORED.values()}]


pytestmark = pytest.mark.usefixtures("django_project")


# -- system checks: Django session settings the engine ignores -------------------------------


def test_the_example_project_has_no_ignored_settings() -> None:
    assert ignored_warnings() == []


@pytest.mark.parametrize(
    ("name", "value", "check_id", "instead"),
    [
        ("SESSION_COOKIE_AGE", 3600, "coatcheck.W003", "COATCHECK_IDLE_TIMEOUT"),
        ("SESSION_SAVE_EVERY_REQUEST", True, "coatcheck.W004", "COATCHECK_TOUCH_INTERVAL"),
        ("SESSION_SERIALIZER", "x.PickleSerializer", "coatcheck.W005", "JSON values"),
        ("SESSION_CACHE_ALIAS", "sessions", "coatcheck.W006", "COATCHECK_STORE_URL"),
        ("SESSION_FILE_PATH", "/tmp/sessions", "coatcheck.W006", "COATCHECK_STORE_URL"),
    ],
)
def test_each_ignored_setting_is_named_with_what_to_use(
    name: str, value: Any, check_id: str, instead: str
) -> None:
    with override_settings(**{name: value}):
        [warning] = ignored_warnings()
    assert isinstance(warning, checks.Warning)
    assert warning.id == check_id
    assert warning.msg.startswith(f"{name} is set but the coatcheck session engine ignores it")
    assert warning.hint is not None and instead in warning.hint


def test_a_setting_is_reported_even_at_its_default_value() -> None:
    # Set is set: a project that wrote SESSION_SAVE_EVERY_REQUEST = False still believes
    # that it chose something.
    with override_settings(SESSION_SAVE_EVERY_REQUEST=False, SESSION_COOKIE_AGE=1209600):
        assert [w.id for w in ignored_warnings()] == ["coatcheck.W003", "coatcheck.W004"]


def test_with_djangos_own_engine_the_settings_mean_what_they_say() -> None:
    engine = "django.contrib.sessions.backends.signed_cookies"
    with override_settings(SESSION_ENGINE=engine, SESSION_COOKIE_AGE=3600):
        assert ignored_warnings() == []


# -- the admin page of a user's sessions ----------------------------------------------------


def test_admin_page_lists_and_ends_a_users_sessions() -> None:
    # A project with the real admin and auth tables, in a child process: see the script.
    script = Path(__file__).with_name("django_admin_project.py")
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert (result.returncode, result.stdout) == (0, "ok\n"), result.stderr
