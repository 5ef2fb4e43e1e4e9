"""The one gate in front of every test-login door: explicit, never in production, loopback only.

A door that logs anyone in as a predefined user is a backdoor the moment it runs anywhere but a
test. So it exists only when the process says "this is a test" (``COATCHECK_TESTING=1``, or a
test-only caller passing ``explicit=True``), and even then it refuses when the process says
"this is production" or listens on a non-loopback address. The checks read the environment at
call time; importing :mod:`coatcheck.testing` changes and enables nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ..cookies import host_is_loopback
from ..core.errors import ConfigError

ENABLE_VAR = "COATCHECK_TESTING"
"""Set to exactly ``1`` to enable the test doors in this process."""

OWN_ENV_VAR = "COATCHECK_ENV"
"""coatcheck's own environment name: when set, it must name a test or development setup."""

OTHER_ENV_VARS = ("APP_ENV", "ENVIRONMENT", "ENV")
"""Common environment names: a production-like value in any of them refuses the doors."""

TEST_ENV_NAMES = frozenset({"test", "testing", "ci", "development", "dev", "local"})
PRODUCTION_ENV_NAMES = frozenset({"production", "prod", "prd", "live", "staging", "stage"})


class TestingNotAllowed(ConfigError):
    """A test-login door was asked for where it must not exist; the message says why and how."""

    __test__ = False  # not a pytest test class, despite the name


def ensure_testing_allowed(*, explicit: bool = False, bind_host: str | None = None) -> None:
    """Raise :class:`TestingNotAllowed` unless a test door may exist in this process.

    Checked in this order (the first failure is the one reported):

    1. Production is declared: ``COATCHECK_ENV`` is set to anything but a test or development
       name, or ``APP_ENV`` / ``ENVIRONMENT`` / ``ENV`` names production or staging. This
       refuses even with ``COATCHECK_TESTING=1`` or ``explicit=True``.
    2. Testing is not enabled: neither ``COATCHECK_TESTING=1`` nor ``explicit=True``.
    3. ``bind_host`` is given and is not a loopback address (127.0.0.0/8, ::1, localhost).

    ``explicit=True`` is for code that is test-only by construction (a pytest fixture, the
    helpers in this package); a server must be enabled by its environment instead.
    """
    env = os.environ
    production = production_reason(env)
    if production:
        raise TestingNotAllowed(
            f"coatcheck's test login is refused: {production}. The test doors (login helpers, "
            "pytest fixtures, autosession) never run in a configuration declared as "
            "production or staging; run the tests with a test or development configuration."
        )
    if not explicit and env.get(ENABLE_VAR) != "1":
        found = env.get(ENABLE_VAR)
        why = "is not set" if found is None else f"is {found!r}, not '1'"
        raise TestingNotAllowed(
            f"coatcheck's test login is off: {ENABLE_VAR} {why}. Set {ENABLE_VAR}=1 in the "
            "environment of the test process or test server (never in production), or use "
            "the pytest fixtures, which enable it for the test that asks."
        )
    if bind_host is not None and not is_loopback(bind_host):
        raise TestingNotAllowed(
            f"coatcheck's autosession door is refused: the server is bound to {bind_host!r}, "
            "which is not a loopback address. Bind the test server to 127.0.0.1, ::1 or "
            "localhost; the door must not be reachable from another machine."
        )


def production_reason(env: Mapping[str, str]) -> str | None:
    """Why ``env`` declares a non-test configuration, or None."""
    own = env.get(OWN_ENV_VAR)
    if own is not None and own.strip().lower() not in TEST_ENV_NAMES:
        allowed = ", ".join(sorted(TEST_ENV_NAMES))
        return f"{OWN_ENV_VAR} is {own!r} (test login needs one of: {allowed})"
    for name in OTHER_ENV_VARS:
        value = env.get(name)
        if value is not None and value.strip().lower() in PRODUCTION_ENV_NAMES:
            return f"{name} is {value!r}"
    return None


is_loopback = host_is_loopback
