"""One reader: ``COATCHECK_*`` names read the same way from the environment, Flask's config,
a TOML table or a plain dict, into one frozen ``Settings``."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import tomllib
import warnings
from dataclasses import fields
from datetime import timedelta
from pathlib import Path
from typing import Any

import flask
import pytest

from coatcheck import ConfigError, Policy
from coatcheck.config import (
    DEPLOYMENT_NAMES,
    NAMES,
    POLICY_NAMES,
    ConfigWarning,
    Settings,
    parse_duration,
    read_settings,
)
from coatcheck.config.settings import OIDC_NAMES, OTHER_NAMES, WEB_NAMES
from coatcheck.cookies import CookieSettings
from coatcheck.web.settings import WebSettings

ROOT = Path(__file__).resolve().parents[1]
KEY = base64.urlsafe_b64encode(bytes(range(32))).rstrip(b"=").decode()

# A valid value that is not the default, for every name the reader knows.
SAMPLES: dict[str, Any] = {
    "COATCHECK_STORE_URL": "memory://",
    "COATCHECK_SESSION_MODE": "sealed",
    "COATCHECK_TOKEN_KEY": KEY,
    "COATCHECK_LOG_KEY": "log-key",
    "COATCHECK_SEALED_KEYS": f"{KEY},{KEY[::-1]}",
    "COATCHECK_SEALED_CACHE": "16",
    "COATCHECK_IDLE_TIMEOUT": "15m",
    "COATCHECK_ABSOLUTE_LIFETIME": "8h",
    "COATCHECK_TOUCH_INTERVAL": "0",
    "COATCHECK_MAX_SESSIONS_PER_USER": "3",
    "COATCHECK_ON_LIMIT": "refuse",
    "COATCHECK_BIND_IP": "yes",
    "COATCHECK_MAX_DATA_BYTES": "4096",
    "COATCHECK_REMEMBER_ABSOLUTE_LIFETIME": "30d",
    "COATCHECK_REMEMBER_IDLE_TIMEOUT": "7d",
    "COATCHECK_COOKIE_NAME": "__Secure-shop",
    "COATCHECK_COOKIE_PATH": "/shop",
    "COATCHECK_COOKIE_DOMAIN": "example.com",
    "COATCHECK_COOKIE_SAMESITE": "strict",
    "COATCHECK_COOKIE_PERSISTENT": "true",
    "COATCHECK_EXEMPT_PATHS": "/static, /health",
    "COATCHECK_TRUSTED_PROXIES": "10.0.0.0/8",
    "COATCHECK_LOGIN_URL": "/shop/login",
    "COATCHECK_CSRF": "false",
    "COATCHECK_TRUSTED_ORIGINS": "https://admin.example",
    "COATCHECK_CSRF_EXEMPT_PATHS": "/webhooks",
    "COATCHECK_LOOPBACK_DEVELOPMENT": "1",
    "COATCHECK_LOGIN_CARRY": "cart",
    "COATCHECK_CLEAR_SITE_DATA": "on",
}

TOML = f"""
COATCHECK_STORE_URL = "memory://"
COATCHECK_SESSION_MODE = "sealed"
COATCHECK_TOKEN_KEY = "{KEY}"
COATCHECK_LOG_KEY = "log-key"
COATCHECK_SEALED_KEYS = ["{KEY}", "{KEY[::-1]}"]
COATCHECK_SEALED_CACHE = 16
COATCHECK_IDLE_TIMEOUT = "15m"
COATCHECK_ABSOLUTE_LIFETIME = 28800
COATCHECK_TOUCH_INTERVAL = 0
COATCHECK_MAX_SESSIONS_PER_USER = 3
COATCHECK_ON_LIMIT = "refuse"
COATCHECK_BIND_IP = true
COATCHECK_MAX_DATA_BYTES = 4096
COATCHECK_REMEMBER_ABSOLUTE_LIFETIME = "30d"
COATCHECK_REMEMBER_IDLE_TIMEOUT = "7d"
COATCHECK_COOKIE_NAME = "__Secure-shop"
COATCHECK_COOKIE_PATH = "/shop"
COATCHECK_COOKIE_DOMAIN = "example.com"
COATCHECK_COOKIE_SAMESITE = "Strict"
COATCHECK_COOKIE_PERSISTENT = true
COATCHECK_EXEMPT_PATHS = ["/static", "/health"]
COATCHECK_TRUSTED_PROXIES = ["10.0.0.0/8"]
COATCHECK_LOGIN_URL = "/shop/login"
COATCHECK_CSRF = false
COATCHECK_TRUSTED_ORIGINS = ["https://admin.example"]
COATCHECK_CSRF_EXEMPT_PATHS = ["/webhooks"]
COATCHECK_LOOPBACK_DEVELOPMENT = true
COATCHECK_LOGIN_CARRY = ["cart"]
COATCHECK_CLEAR_SITE_DATA = true
"""


def read(config: dict[str, Any], **kwargs: Any) -> Settings:
    """The reader on ``config`` alone (the test process's environment kept out)."""
    return read_settings(config, environ={}, **kwargs)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("30s", 30), ("15m", 900), ("2h", 7200), ("1.5d", 129600)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "-5m", "15 minutes", "m", "1e3"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="malformed duration"):
        parse_duration(text)


def test_zero_is_a_duration_only_where_it_means_every_time() -> None:
    assert parse_duration("0s", allow_zero=True) == 0
    assert read({"COATCHECK_TOUCH_INTERVAL": "0"}).policy.touch_interval == 0
    with pytest.raises(ConfigError, match="COATCHECK_IDLE_TIMEOUT"):
        read({"COATCHECK_IDLE_TIMEOUT": "0"})


def test_environment_strings_configure_everything() -> None:
    settings = read(SAMPLES)
    assert settings.policy == Policy(
        idle_timeout=900,
        absolute_lifetime=28800,
        touch_interval=0,
        max_sessions_per_user=3,
        on_limit="refuse",
        bind_ip=True,
        max_data_bytes=4096,
        remember_absolute_lifetime=30 * 86400,
        remember_idle_timeout=7 * 86400,
    )
    assert (settings.store_url, settings.session_mode) == ("memory://", "sealed")
    assert settings.token_key == bytes(range(32)) and settings.log_key == b"log-key"
    assert settings.sealed_keys == (KEY, KEY[::-1]) and settings.sealed_cache == 16
    assert settings.loopback_development and settings.login_carry == ("cart",)
    web = WebSettings.from_settings(settings)
    assert web.cookie.set_cookie("t") == (
        "__Secure-shop=t; Path=/shop; Domain=example.com; Secure; HttpOnly; SameSite=Strict"
    )
    assert web.cookie.persistent
    assert web.exempt_paths == ("/static", "/health")
    assert web.csrf_exempt_paths == ("/webhooks",)
    assert not web.csrf and web.trusted_origins == frozenset({"https://admin.example"})
    assert str(web.trusted_proxies[0]) == "10.0.0.0/8"
    assert web.login_url == "/shop/login"
    assert web.clear_site_data


def test_the_same_names_mean_the_same_from_every_source() -> None:
    """The environment (strings), a TOML table (typed values) and Flask's app.config agree."""
    app = flask.Flask(__name__)
    app.config.from_mapping(tomllib.loads(TOML))
    from_env = read(SAMPLES)
    assert read(tomllib.loads(TOML)) == from_env
    assert read_settings(app.config, environ={}) == from_env


def test_every_name_is_read() -> None:
    """The names, the reader and these samples are in step: each name changes the settings."""
    assert SAMPLES.keys() == NAMES
    default = read({})
    unread = [name for name, value in SAMPLES.items() if read({name: value}) == default]
    assert unread == []


def test_every_policy_argument_has_a_name() -> None:
    assert set(POLICY_NAMES) == {f.name for f in fields(Policy)}
    assert all(name == f"COATCHECK_{arg.upper()}" for arg, name in POLICY_NAMES.items())


def test_defaults_are_the_secure_ones_and_the_web_layers_own() -> None:
    settings = read({})
    assert settings == Settings() and settings.policy == Policy()
    web = WebSettings.from_settings(settings)
    assert web == WebSettings() and web.cookie == CookieSettings()
    assert web.cookie.name == "__Host-session" and web.cookie.secure and web.csrf
    assert not web.clear_site_data, "Clear-Site-Data reaches the whole registrable domain"


def test_python_values_work_too() -> None:
    config = {"COATCHECK_IDLE_TIMEOUT": timedelta(minutes=10), "COATCHECK_EXEMPT_PATHS": ["/s"]}
    settings = read(config)
    assert settings.policy.idle_timeout == 600
    assert settings.exempt_paths == ("/s",)


def test_empty_means_the_default() -> None:
    """An empty variable (``COATCHECK_CSRF=``) is not a value: CSRF stays on."""
    assert read({"COATCHECK_CSRF": "", "COATCHECK_IDLE_TIMEOUT": None}) == Settings()


def test_exempt_paths_unset_leave_the_adapter_its_default() -> None:
    assert WebSettings.from_settings(read({}), default_exempt=["/static"]).exempt_paths == (
        "/static",
    )
    given = read({"COATCHECK_EXEMPT_PATHS": []})
    assert WebSettings.from_settings(given, default_exempt=["/static"]).exempt_paths == ()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("COATCHECK_IDLE_TIMEOUT", "soon"),
        ("COATCHECK_TOUCH_INTERVAL", "-1"),
        ("COATCHECK_BIND_IP", "maybe"),
        ("COATCHECK_MAX_SESSIONS_PER_USER", "many"),
        ("COATCHECK_MAX_SESSIONS_PER_USER", 0),
        ("COATCHECK_MAX_DATA_BYTES", 1.5),
        ("COATCHECK_ON_LIMIT", "panic"),
        ("COATCHECK_REMEMBER_IDLE_TIMEOUT", "1m"),
        ("COATCHECK_COOKIE_SAMESITE", "sometimes"),
        ("COATCHECK_COOKIE_NAME", 5),
        ("COATCHECK_EXEMPT_PATHS", 5),
        ("COATCHECK_SESSION_MODE", "cookie"),
        ("COATCHECK_SEALED_CACHE", "-1"),
        ("COATCHECK_SEALED_CACHE", -1),
        ("COATCHECK_SEALED_KEYS", 5),
        ("COATCHECK_TOKEN_KEY", "short"),
        ("COATCHECK_LOG_KEY", 5),
        ("COATCHECK_CLEAR_SITE_DATA", "sometimes"),
    ],
)
def test_malformed_values_name_their_setting(key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=key) as caught:
        read({key: value})
    if "KEY" in key:  # a secret is never repeated in a message
        assert str(value) not in str(caught.value).replace(key, "")


def test_a_rule_between_two_values_names_both() -> None:
    with pytest.raises(ConfigError) as caught:
        read({"COATCHECK_IDLE_TIMEOUT": "1m", "COATCHECK_TOUCH_INTERVAL": "5m"})
    message = str(caught.value)
    assert message.startswith("COATCHECK_IDLE_TIMEOUT, COATCHECK_TOUCH_INTERVAL: ")


def test_an_unset_touch_interval_stays_below_a_short_idle_timeout() -> None:
    assert read({"COATCHECK_IDLE_TIMEOUT": "30s"}).policy.touch_interval == 15
    assert read({"COATCHECK_IDLE_TIMEOUT": "30m"}).policy.touch_interval == 60


def test_unknown_names_warn_with_the_closest_known_one() -> None:
    with pytest.warns(ConfigWarning) as caught:
        read({"COATCHECK_IDEL_TIMEOUT": "5m", "COATCHECK_FAVOURITE_COLOUR": "blue", "HOME": "/"})
    messages = sorted(str(w.message) for w in caught)
    assert messages == [
        "COATCHECK_FAVOURITE_COLOUR is not a coatcheck setting and is ignored",
        "COATCHECK_IDEL_TIMEOUT is not a coatcheck setting and is ignored; "
        "did you mean COATCHECK_IDLE_TIMEOUT?",
    ]
    with pytest.raises(ConfigError, match="COATCHECK_IDEL_TIMEOUT"):
        read({"COATCHECK_IDEL_TIMEOUT": "5m"}, strict=True)


def test_names_read_elsewhere_are_not_unknown() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read(dict.fromkeys(OTHER_NAMES, "1"))


def test_deployment_names_fall_back_to_the_environment() -> None:
    env = {"COATCHECK_STORE_URL": "memory://", "COATCHECK_TOKEN_KEY": KEY, "COATCHECK_CSRF": "0"}
    settings = read_settings({}, environ=env)
    assert settings.store_url == "memory://" and settings.token_key == bytes(range(32))
    assert settings.csrf, "only the deployment's names come from the environment"
    own = read_settings({"COATCHECK_STORE_URL": "sqlite:///app.db"}, environ=env)
    assert own.store_url == "sqlite:///app.db", "the application's own value wins"
    assert DEPLOYMENT_NAMES < NAMES


def test_keys_stay_out_of_the_repr() -> None:
    text = repr(read(SAMPLES))
    assert KEY not in text and "log-key" not in text and KEY[::-1] not in text


def test_django_policy_dict_is_read_as_the_flat_names() -> None:
    with pytest.warns(DeprecationWarning, match="COATCHECK_POLICY is deprecated"):
        settings = read({"COATCHECK_POLICY": {"idle_timeout": 600, "bind_ip": True}})
    assert settings.policy == Policy(idle_timeout=600, bind_ip=True)

    def deprecated() -> pytest.WarningsRecorder:
        return pytest.warns(DeprecationWarning, match="COATCHECK_POLICY")

    with deprecated(), pytest.raises(ConfigError, match="unknown key 'idle'"):
        read({"COATCHECK_POLICY": {"idle": 600}})
    with deprecated(), pytest.raises(ConfigError, match="both set"):
        read({"COATCHECK_POLICY": {"idle_timeout": 600}, "COATCHECK_IDLE_TIMEOUT": "5m"})
    with pytest.raises(ConfigError, match="COATCHECK_POLICY must be a dict"):
        read({"COATCHECK_POLICY": "idle_timeout=600"})


def test_lower_layers_spell_the_names_the_same() -> None:
    """Stores, tokens and the sealed codec name their variables where config cannot be
    imported from (below it, or for messages); the spellings must agree."""
    from coatcheck.config import settings as names
    from coatcheck.core import tokens
    from coatcheck.sealed import codec
    from coatcheck.stores import STORE_URL_ENV

    assert STORE_URL_ENV == names.STORE_URL
    assert tokens.TOKEN_KEY_ENV == names.TOKEN_KEY
    assert codec.KEYS_ENV == names.SEALED_KEYS


def section(path: Path, heading: str) -> str:
    text = path.read_text()
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end != -1 else len(text)]


def names_in(text: str) -> set[str]:
    return set(re.findall(r"COATCHECK_[A-Z_]+[A-Z]", text))


def test_the_readme_table_lists_every_name_and_no_other() -> None:
    table = section(ROOT / "README.md", "## Configuration")
    named = names_in(table) - {"COATCHECK_POLICY"}
    # OpenID Connect's names are listed in docs/oidc.md; the README names a few in passing.
    assert named - set(OIDC_NAMES.values()) == NAMES | OTHER_NAMES


def test_the_web_guide_lists_every_web_name() -> None:
    table = section(ROOT / "docs" / "web.md", "## Settings")
    assert WEB_NAMES <= names_in(table) <= NAMES


DJANGO = """
import json, sys, types, warnings
import django
from django.conf import settings

sys.modules["urls"] = types.ModuleType("urls")
sys.modules["urls"].urlpatterns = []
settings.configure(
    ROOT_URLCONF="urls",
    LOGIN_URL="/accounts/login/",
    COATCHECK_IDLE_TIMEOUT="10m",
    COATCHECK_EXEMPT_PATHS="/static, /health",
    COATCHECK_COOKIE_NAME="__Secure-ignored",
    COATCHECK_LOGIN_CARRY=["cart"],
    COATCHECK_CLEAR_SITE_DATA=True,
)
django.setup()
from coatcheck.django import conf

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    read = conf.coatcheck_settings()
    web = conf.web_settings()
print(json.dumps({
    "idle": read.policy.idle_timeout,
    "exempt": list(web.exempt_paths),
    "cookie": web.cookie.name,
    "login_url": web.login_url,
    "carry": read.login_carry,
    "clear_site_data": web.clear_site_data,
    "token_key": read.token_key.hex(),
    "warnings": sorted({str(w.message) for w in caught}),
}))
"""


def test_django_settings_are_read_by_the_same_reader() -> None:
    """Django's COATCHECK_* settings mean what they mean elsewhere (in a fresh interpreter:
    Django is configured once per process); the names Django replaces are warned about."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COATCHECK_")}
    env["COATCHECK_TOKEN_KEY"] = KEY
    result = subprocess.run(
        [sys.executable, "-c", DJANGO],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "idle": 600,
        "exempt": ["/static", "/health"],
        "cookie": "sessionid",
        "login_url": "/accounts/login/",
        "carry": ["cart"],
        "clear_site_data": True,
        "token_key": bytes(range(32)).hex(),
        "warnings": [
            "COATCHECK_COOKIE_NAME is not read by coatcheck's Django adapter; it uses "
            "SESSION_COOKIE_NAME"
        ],
    }
