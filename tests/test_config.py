"""COATCHECK_* settings read the same way from Flask's config and from the environment."""

from __future__ import annotations

from datetime import timedelta

import pytest

from coatcheck import ConfigError, Policy
from coatcheck.config import parse_duration, policy_from, web_settings_from


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("30s", 30), ("15m", 900), ("2h", 7200), ("1.5d", 129600)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "-5m", "15 minutes", "m", "1e3"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="malformed duration"):
        parse_duration(text)


def test_environment_strings_configure_everything() -> None:
    env = {
        "COATCHECK_IDLE_TIMEOUT": "15m",
        "COATCHECK_ABSOLUTE_LIFETIME": "8h",
        "COATCHECK_TOUCH_INTERVAL": "30",
        "COATCHECK_MAX_SESSIONS_PER_USER": "3",
        "COATCHECK_ON_LIMIT": "refuse",
        "COATCHECK_BIND_IP": "yes",
        "COATCHECK_COOKIE_NAME": "__Secure-shop",
        "COATCHECK_COOKIE_PATH": "/shop",
        "COATCHECK_COOKIE_SAMESITE": "strict",
        "COATCHECK_EXEMPT_PATHS": "/static, /health",
        "COATCHECK_TRUSTED_PROXIES": "10.0.0.0/8",
        "COATCHECK_CSRF": "false",
        "COATCHECK_TRUSTED_ORIGINS": "https://admin.example",
    }
    assert policy_from(env) == Policy(
        idle_timeout=900,
        absolute_lifetime=28800,
        touch_interval=30,
        max_sessions_per_user=3,
        on_limit="refuse",
        bind_ip=True,
    )
    web = web_settings_from(env)
    assert web.cookie.name == "__Secure-shop" and web.cookie.path == "/shop"
    assert web.cookie.same_site == "Strict"
    assert web.exempt_paths == ("/static", "/health")
    assert not web.csrf and web.trusted_origins == frozenset({"https://admin.example"})
    assert str(web.trusted_proxies[0]) == "10.0.0.0/8"


def test_defaults_are_the_secure_ones() -> None:
    assert policy_from({}) == Policy()
    web = web_settings_from({})
    assert web.cookie.name == "__Host-session" and web.cookie.secure and web.csrf


def test_python_values_work_too() -> None:
    config = {"COATCHECK_IDLE_TIMEOUT": timedelta(minutes=10), "COATCHECK_EXEMPT_PATHS": ["/s"]}
    assert policy_from(config).idle_timeout == 600
    assert web_settings_from(config).exempt_paths == ("/s",)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("COATCHECK_IDLE_TIMEOUT", "soon"),
        ("COATCHECK_BIND_IP", "maybe"),
        ("COATCHECK_MAX_SESSIONS_PER_USER", "many"),
        ("COATCHECK_COOKIE_SAMESITE", "sometimes"),
        ("COATCHECK_EXEMPT_PATHS", 5),
    ],
)
def test_malformed_values_name_their_key(key: str, value: object) -> None:
    reader = web_settings_from if "COOKIE" in key or "PATHS" in key else policy_from
    with pytest.raises(ConfigError, match=key):
        reader({key: value})
