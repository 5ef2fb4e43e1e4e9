"""The one reader: ``COATCHECK_*`` names in a mapping become a frozen :class:`Settings`.

Every adapter and the CLI call :func:`read_settings`, so a name means the same thing wherever
it is set: the environment, Flask's ``app.config``, Django's settings, a TOML file's table.
The values are plain (strings, numbers, a :class:`~coatcheck.core.policy.Policy`); the layers
above build their own objects from them, so nothing here knows about HTTP or a store.
"""

from __future__ import annotations

import difflib
import os
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..core.errors import ConfigError
from ..core.policy import Policy
from ..core.tokens import decode_token_key
from . import values as v

PREFIX = "COATCHECK_"

# The deployment: where sessions live and the keys. Looked up in the environment when the
# application's own configuration does not set them, so secrets need not live in code.
STORE_URL = "COATCHECK_STORE_URL"
SESSION_MODE = "COATCHECK_SESSION_MODE"
TOKEN_KEY = "COATCHECK_TOKEN_KEY"  # noqa: S105  # a name, not a secret
LOG_KEY = "COATCHECK_LOG_KEY"
SEALED_KEYS = "COATCHECK_SEALED_KEYS"
SEALED_CACHE = "COATCHECK_SEALED_CACHE"
DEPLOYMENT_NAMES = frozenset(
    {STORE_URL, SESSION_MODE, TOKEN_KEY, LOG_KEY, SEALED_KEYS, SEALED_CACHE}
)

# The policy: the name of each Policy field (a test keeps this in step with Policy).
POLICY_NAMES: Mapping[str, str] = {
    argument: PREFIX + argument.upper()
    for argument in (
        "idle_timeout",
        "absolute_lifetime",
        "touch_interval",
        "max_sessions_per_user",
        "on_limit",
        "bind_ip",
        "max_data_bytes",
        "remember_absolute_lifetime",
        "remember_idle_timeout",
    )
}
IDLE_TIMEOUT = POLICY_NAMES["idle_timeout"]
ABSOLUTE_LIFETIME = POLICY_NAMES["absolute_lifetime"]
TOUCH_INTERVAL = POLICY_NAMES["touch_interval"]

# The web layer's.
COOKIE_NAME = "COATCHECK_COOKIE_NAME"
COOKIE_PATH = "COATCHECK_COOKIE_PATH"
COOKIE_DOMAIN = "COATCHECK_COOKIE_DOMAIN"
COOKIE_SAMESITE = "COATCHECK_COOKIE_SAMESITE"
COOKIE_PERSISTENT = "COATCHECK_COOKIE_PERSISTENT"
EXEMPT_PATHS = "COATCHECK_EXEMPT_PATHS"
TRUSTED_PROXIES = "COATCHECK_TRUSTED_PROXIES"
LOGIN_URL = "COATCHECK_LOGIN_URL"
CSRF = "COATCHECK_CSRF"
TRUSTED_ORIGINS = "COATCHECK_TRUSTED_ORIGINS"
CSRF_EXEMPT_PATHS = "COATCHECK_CSRF_EXEMPT_PATHS"
LOOPBACK_DEVELOPMENT = "COATCHECK_LOOPBACK_DEVELOPMENT"
LOGIN_CARRY = "COATCHECK_LOGIN_CARRY"
CLEAR_SITE_DATA = "COATCHECK_CLEAR_SITE_DATA"
WEB_NAMES = frozenset(
    {
        COOKIE_NAME,
        COOKIE_PATH,
        COOKIE_DOMAIN,
        COOKIE_SAMESITE,
        COOKIE_PERSISTENT,
        EXEMPT_PATHS,
        TRUSTED_PROXIES,
        LOGIN_URL,
        CSRF,
        TRUSTED_ORIGINS,
        CSRF_EXEMPT_PATHS,
        LOOPBACK_DEVELOPMENT,
        LOGIN_CARRY,
        CLEAR_SITE_DATA,
    }
)

# OpenID Connect's: one per field of coatcheck.oidc.OIDCSettings, read by read_oidc_settings
# (a test keeps the two in step); listed here, without importing Authlib, so that
# read_settings knows them and does not warn.
OIDC_NAMES: Mapping[str, str] = {
    argument: PREFIX + "OIDC_" + argument.upper()
    for argument in (
        "issuer",
        "client_id",
        "client_secret",
        "scopes",
        "login_path",
        "callback_path",
        "logout_path",
        "logged_out_path",
        "backchannel_logout_path",
        "ended_path",
        "base_url",
        "refresh_skew",
        "clock_leeway",
        "metadata_ttl",
        "jwks_refetch_interval",
        "http_timeout",
        "refresh_lease",
        "refresh_wait",
        "prompt_none_fallback",
        "user_id_claim",
        "login_timeout",
        "post_logout_path",
    )
}

NAMES = DEPLOYMENT_NAMES | frozenset(POLICY_NAMES.values()) | WEB_NAMES
"""Every name :func:`read_settings` reads."""

LEGACY_POLICY = "COATCHECK_POLICY"  # Django's dict of Policy arguments, before the flat names
OTHER_NAMES = frozenset({"COATCHECK_TESTING", "COATCHECK_ENV"})
"""Read by :mod:`coatcheck.testing` on its own (it must decide before any settings exist)."""


class ConfigWarning(UserWarning):
    """A ``COATCHECK_*`` name that nothing reads (a typo, or a setting of another version)."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the ``COATCHECK_*`` names can say, as plain values with the defaults.

    ``None`` for ``store_url`` and ``exempt_paths`` means "the adapter's default" (a SQLite
    file where the framework keeps instance data; Flask's static folder). Keys are never part
    of the ``repr``.
    """

    store_url: str | None = None
    session_mode: Literal["server", "sealed"] = "server"
    policy: Policy = field(default_factory=Policy)
    token_key: bytes | None = field(default=None, repr=False)
    log_key: bytes | None = field(default=None, repr=False)
    sealed_keys: tuple[str | bytes, ...] = field(default=(), repr=False)
    sealed_cache: int | None = None
    cookie_name: str = "__Host-session"
    cookie_path: str = "/"
    cookie_domain: str | None = None
    cookie_same_site: Literal["Lax", "Strict", "None"] = "Lax"
    cookie_persistent: bool = False
    exempt_paths: tuple[str, ...] | None = None
    trusted_proxies: tuple[str, ...] = ()
    login_url: str = "/login"
    csrf: bool = True
    trusted_origins: tuple[str, ...] = ()
    csrf_exempt_paths: tuple[str, ...] = ()
    loopback_development: bool = False
    login_carry: tuple[str, ...] | None = None
    clear_site_data: bool = False


_DEFAULT = Settings()


def read_settings(
    config: Mapping[str, Any],
    *,
    environ: Mapping[str, str] | None = None,
    strict: bool = False,
) -> Settings:
    """The settings the ``COATCHECK_*`` names in ``config`` give; other keys are ignored.

    ``config`` is ``os.environ``, Flask's ``app.config``, a dict of Django's ``COATCHECK_*``
    settings or a table loaded from TOML. An absent, ``None`` or empty value means the
    default. The deployment's names (store, session mode, keys) that ``config`` lacks are
    taken from ``environ`` (default ``os.environ``; ``{}`` reads ``config`` alone).

    A malformed value raises :class:`ConfigError` naming the setting. A ``COATCHECK_*`` name
    nothing reads gets a :class:`ConfigWarning` with the closest known name (with ``strict``,
    a ``ConfigError``): a warning, because one environment often serves several programs and
    versions, and a variable meant for another must not stop this one from starting.
    """
    given = {
        name: value
        for name, value in config.items()
        if isinstance(name, str) and name.startswith(PREFIX) and value is not None and value != ""
    }
    _check_names(given, strict)
    if LEGACY_POLICY in given:
        given = _legacy_policy(given)
    env = os.environ if environ is None else environ
    for name in DEPLOYMENT_NAMES - given.keys():
        if env.get(name):
            given[name] = env[name]
    token_key = given.get(TOKEN_KEY)
    log_key = given.get(LOG_KEY)
    if log_key is not None and not isinstance(log_key, str | bytes):
        raise ConfigError(f"{LOG_KEY} must be a string, got {type(log_key).__name__}")
    cache = v.optional_int(given, SEALED_CACHE, None)
    if cache is not None and cache < 0:
        raise ConfigError(f"{SEALED_CACHE} must be 0 (no cache) or more, got {cache!r}")
    return Settings(
        store_url=v.optional_str(given, STORE_URL, None),
        session_mode=v.choice(given, SESSION_MODE, "server", ("server", "sealed")),
        policy=_policy(given),
        token_key=None if token_key is None else decode_token_key(token_key, TOKEN_KEY),
        log_key=log_key.encode() if isinstance(log_key, str) else log_key,
        sealed_keys=v.keys(given, SEALED_KEYS),
        sealed_cache=cache,
        cookie_name=v.text(given, COOKIE_NAME, _DEFAULT.cookie_name),
        cookie_path=v.text(given, COOKIE_PATH, _DEFAULT.cookie_path),
        cookie_domain=v.optional_str(given, COOKIE_DOMAIN, None),
        cookie_same_site=v.same_site(given, COOKIE_SAMESITE, _DEFAULT.cookie_same_site),
        cookie_persistent=v.flag(given, COOKIE_PERSISTENT, False),
        exempt_paths=v.strings(given, EXEMPT_PATHS, ()) if EXEMPT_PATHS in given else None,
        trusted_proxies=v.strings(given, TRUSTED_PROXIES, ()),
        login_url=v.text(given, LOGIN_URL, _DEFAULT.login_url),
        csrf=v.flag(given, CSRF, True),
        trusted_origins=v.strings(given, TRUSTED_ORIGINS, ()),
        csrf_exempt_paths=v.strings(given, CSRF_EXEMPT_PATHS, ()),
        loopback_development=v.flag(given, LOOPBACK_DEVELOPMENT, False),
        login_carry=v.strings(given, LOGIN_CARRY, ()) if LOGIN_CARRY in given else None,
        clear_site_data=v.flag(given, CLEAR_SITE_DATA, False),
    )


def _policy(given: Mapping[str, Any]) -> Policy:
    """The policy; a rule between two values (touch interval below the idle timeout) is
    reported with the names of the settings involved."""
    default = Policy()
    idle = v.seconds(given, IDLE_TIMEOUT, default.idle_timeout)
    # Unset, the touch interval stays below a short idle timeout instead of refusing it.
    touch = min(default.touch_interval, idle / 2)
    on_limit = v.choice(
        given, POLICY_NAMES["on_limit"], default.on_limit, ("evict_oldest", "refuse")
    )
    try:
        return Policy(
            idle_timeout=idle,
            absolute_lifetime=v.seconds(given, ABSOLUTE_LIFETIME, default.absolute_lifetime),
            touch_interval=v.seconds(given, TOUCH_INTERVAL, touch, allow_zero=True),
            max_sessions_per_user=v.optional_int(
                given, POLICY_NAMES["max_sessions_per_user"], default.max_sessions_per_user
            ),
            on_limit=on_limit,
            bind_ip=v.flag(given, POLICY_NAMES["bind_ip"], default.bind_ip),
            max_data_bytes=v.integer(given, POLICY_NAMES["max_data_bytes"], default.max_data_bytes),
            remember_absolute_lifetime=v.optional_seconds(
                given, POLICY_NAMES["remember_absolute_lifetime"]
            ),
            remember_idle_timeout=v.optional_seconds(given, POLICY_NAMES["remember_idle_timeout"]),
        )
    except ConfigError as exc:
        named = [n for f, n in POLICY_NAMES.items() if re.search(rf"\b{f}\b", str(exc))]
        raise ConfigError(f"{', '.join(named) or 'policy'}: {exc}") from None


def _check_names(given: Mapping[str, Any], strict: bool) -> None:
    oidc = frozenset(OIDC_NAMES.values())
    known = NAMES | OTHER_NAMES | oidc | {LEGACY_POLICY}
    for name in sorted(given.keys() - known):
        suffixes = {known_name.removeprefix(PREFIX): known_name for known_name in NAMES | oidc}
        close = difflib.get_close_matches(name.removeprefix(PREFIX), sorted(suffixes), n=1)
        hint = f"; did you mean {suffixes[close[0]]}?" if close else ""
        message = f"{name} is not a coatcheck setting and is ignored{hint}"
        if strict:
            raise ConfigError(message)
        warnings.warn(message, ConfigWarning, stacklevel=3)


def _legacy_policy(given: Mapping[str, Any]) -> dict[str, Any]:
    """``COATCHECK_POLICY = {"idle_timeout": 600}`` read as ``COATCHECK_IDLE_TIMEOUT = 600``."""
    options = given[LEGACY_POLICY]
    if not isinstance(options, Mapping):
        raise ConfigError(f"{LEGACY_POLICY} must be a dict of coatcheck.Policy arguments")
    warnings.warn(
        f"{LEGACY_POLICY} is deprecated: set each value under its own name "
        f"({IDLE_TIMEOUT}, {ABSOLUTE_LIFETIME}, ...)",
        DeprecationWarning,
        stacklevel=3,
    )
    flat = {name: value for name, value in given.items() if name != LEGACY_POLICY}
    for key, value in options.items():
        name = POLICY_NAMES.get(key)
        if name is None:
            known = ", ".join(sorted(POLICY_NAMES))
            raise ConfigError(f"{LEGACY_POLICY}: unknown key {key!r} (known: {known})")
        if name in flat:
            raise ConfigError(f"{name} and {LEGACY_POLICY}[{key!r}] are both set; keep {name}")
        flat[name] = value
    return flat
