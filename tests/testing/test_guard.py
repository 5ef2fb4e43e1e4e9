"""The gate in front of every test-login door: explicit, never in production, loopback only."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from coatcheck_testing_support import clean_guard_env  # noqa: F401 (autouse)

from coatcheck import ConfigError
from coatcheck.testing import TestingNotAllowed, ensure_testing_allowed, is_loopback


def test_refused_when_testing_is_not_enabled() -> None:
    with pytest.raises(TestingNotAllowed, match="COATCHECK_TESTING is not set") as caught:
        ensure_testing_allowed()
    assert "COATCHECK_TESTING=1" in str(caught.value)
    assert isinstance(caught.value, ConfigError)


@pytest.mark.parametrize("value", ["0", "", "true", "yes", " 1"])
def test_only_exactly_1_enables(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("COATCHECK_TESTING", value)
    with pytest.raises(TestingNotAllowed, match="not '1'"):
        ensure_testing_allowed()


@pytest.mark.usefixtures("coatcheck_testing_enabled")
def test_allowed_with_the_environment_flag() -> None:
    ensure_testing_allowed()


def test_allowed_with_the_explicit_flag() -> None:
    ensure_testing_allowed(explicit=True)


@pytest.mark.parametrize("variable", ["COATCHECK_ENV", "APP_ENV", "ENVIRONMENT", "ENV"])
@pytest.mark.parametrize("value", ["production", "Prod", "prd", "live", "staging", " STAGE "])
@pytest.mark.usefixtures("coatcheck_testing_enabled")
def test_declared_production_refuses_even_when_enabled(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    for explicit in (False, True):
        with pytest.raises(TestingNotAllowed, match=f"{variable} is") as caught:
            ensure_testing_allowed(explicit=explicit)
        assert "production" in str(caught.value)


@pytest.mark.usefixtures("coatcheck_testing_enabled")
def test_own_env_variable_must_name_a_test_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COATCHECK_ENV", "qa")
    with pytest.raises(TestingNotAllowed, match="COATCHECK_ENV is 'qa'"):
        ensure_testing_allowed()
    for name in ("test", "testing", "ci", "development", "dev", "local"):
        monkeypatch.setenv("COATCHECK_ENV", name)
        ensure_testing_allowed()


@pytest.mark.usefixtures("coatcheck_testing_enabled")
def test_other_environment_values_do_not_refuse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "development")
    monkeypatch.setenv("ENVIRONMENT", "test")
    monkeypatch.setenv("ENV", "/home/dev/.shrc")  # POSIX sh's own ENV: a path, not a name
    ensure_testing_allowed()


@pytest.mark.parametrize(
    "host", ["0.0.0.0", "", "::", "10.0.0.5", "192.168.1.2", "example.com", "unix:/tmp/app.sock"]
)
@pytest.mark.usefixtures("coatcheck_testing_enabled")
def test_non_loopback_bind_is_refused(host: str) -> None:
    with pytest.raises(TestingNotAllowed, match="not a loopback address"):
        ensure_testing_allowed(bind_host=host)


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST", "::ffff:127.0.0.1"]
)
@pytest.mark.usefixtures("coatcheck_testing_enabled")
def test_loopback_bind_is_allowed(host: str) -> None:
    ensure_testing_allowed(bind_host=host)
    ensure_testing_allowed(explicit=True, bind_host=host)


def test_loopback_bind_does_not_replace_enabling() -> None:
    with pytest.raises(TestingNotAllowed, match="COATCHECK_TESTING"):
        ensure_testing_allowed(bind_host="127.0.0.1")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost:8000", True),
        ("127.0.0.1:5000", True),
        ("[::1]:8000", True),
        ("localhost.", True),
        (None, False),
        ("testserver", False),
        ("localhost.evil.example", False),
        ("127.0.0.1.nip.io", False),
        ("[::ffff:10.0.0.1]:80", False),
        ("0.0.0.0", False),
    ],
)
def test_is_loopback(host: str | None, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_importing_the_package_enables_nothing() -> None:
    """A fresh interpreter with a clean environment: import everything, nothing opens, and no
    web framework is imported along the way."""
    env = {k: v for k, v in os.environ.items() if k != "COATCHECK_TESTING"}
    code = (
        "import os, sys\n"
        "import coatcheck.testing, coatcheck.testing.plugin\n"
        "from coatcheck.testing import ensure_testing_allowed, TestingNotAllowed\n"
        "assert 'COATCHECK_TESTING' not in os.environ\n"
        "try:\n"
        "    ensure_testing_allowed()\n"
        "except TestingNotAllowed:\n"
        "    pass\n"
        "else:\n"
        "    raise SystemExit('enabled by import')\n"
        "loaded = [m for m in ('flask', 'django', 'starlette', 'httpx') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
