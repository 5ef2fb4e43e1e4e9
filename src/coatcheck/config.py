"""``COATCHECK_*`` settings read from any mapping: Flask's ``app.config``, ``os.environ``.

One reader for every adapter, so a key means the same thing everywhere and a malformed value
fails at start-up with a :class:`ConfigError` naming the key. Strings are accepted for every
kind of value, so environment variables work: flags (``true``/``false``/``1``/``0``), lists
(comma-separated), durations (``90``, ``30s``, ``15m``, ``2h``, ``7d``).

=================================  =========================================================
``COATCHECK_IDLE_TIMEOUT``         duration (default 30m)
``COATCHECK_ABSOLUTE_LIFETIME``    duration (default 12h)
``COATCHECK_TOUCH_INTERVAL``       duration (default 60s)
``COATCHECK_MAX_SESSIONS_PER_USER`` integer or empty (default unlimited)
``COATCHECK_ON_LIMIT``             ``evict_oldest`` or ``refuse``
``COATCHECK_BIND_IP``              flag (default false)
``COATCHECK_REMEMBER_ABSOLUTE_LIFETIME`` duration or empty (default: remember me off)
``COATCHECK_REMEMBER_IDLE_TIMEOUT`` duration or empty (default: remember me off)
``COATCHECK_COOKIE_NAME``          default ``__Host-session``
``COATCHECK_COOKIE_PATH``          default ``/``
``COATCHECK_COOKIE_DOMAIN``        default none (host-only)
``COATCHECK_COOKIE_SAMESITE``      ``Lax`` (default), ``Strict`` or ``None``
``COATCHECK_COOKIE_PERSISTENT``    flag (default false: a browser-session cookie)
``COATCHECK_EXEMPT_PATHS``         list of path prefixes without sessions
``COATCHECK_TRUSTED_PROXIES``      list of IPs/CIDRs whose forwarding headers count
``COATCHECK_LOGIN_URL``            default ``/login``
``COATCHECK_CSRF``                 flag (default true)
``COATCHECK_TRUSTED_ORIGINS``      list of origins allowed to send unsafe requests
``COATCHECK_CSRF_EXEMPT_PATHS``    list of path prefixes without CSRF checks
=================================  =========================================================
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any, Literal, cast

from .cookies import CookieSettings
from .core.errors import ConfigError
from .core.policy import Policy
from .web.settings import WebSettings

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)", re.IGNORECASE)
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``30s``, ``15m``, ``2h``, ``7d`` or plain seconds, as positive float seconds."""
    match = _DURATION_RE.fullmatch(text.strip())
    seconds = float(match[1]) * _UNITS[match[2].lower()] if match else 0.0
    if seconds <= 0:
        raise ValueError(
            f"malformed duration {text!r}: use a positive number with a unit s, m, h or d "
            "(30s, 15m, 2h, 7d)"
        )
    return seconds


def flag(config: Mapping[str, Any], key: str, default: bool) -> bool:
    value = config.get(key, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ConfigError(f"{key} must be true or false, got {value!r}")


def strings(config: Mapping[str, Any], key: str, default: Iterable[str]) -> tuple[str, ...]:
    """A list setting; a string is split on commas (so environment variables work)."""
    value = config.get(key, default)
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, Iterable) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError(f"{key} must be a list of strings, got {value!r}")


def seconds(config: Mapping[str, Any], key: str, default: float) -> float:
    """Seconds, as a number, a ``timedelta`` or a duration string."""
    value = config.get(key, default)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise ConfigError(f"{key}: {exc}") from None
    raise ConfigError(f"{key} must be a duration (seconds, a timedelta or 15m), got {value!r}")


def optional_seconds(config: Mapping[str, Any], key: str) -> float | None:
    """A duration as :func:`seconds` reads it, or None when the key is absent or empty."""
    value = config.get(key)
    return None if value is None or value == "" else seconds(config, key, 0.0)


def optional_int(config: Mapping[str, Any], key: str, default: int | None) -> int | None:
    value = config.get(key, default)
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise ConfigError(f"{key} must be an integer or empty, got {value!r}")


def optional_str(config: Mapping[str, Any], key: str, default: str | None) -> str | None:
    value = config.get(key, default)
    if value is None or isinstance(value, str):
        return value or None
    raise ConfigError(f"{key} must be a string, got {value!r}")


def same_site(
    config: Mapping[str, Any], key: str, default: str
) -> Literal["Lax", "Strict", "None"]:
    value = str(config.get(key, default)).strip().capitalize()
    if value not in ("Lax", "Strict", "None"):
        raise ConfigError(f"{key} must be Lax, Strict or None, got {value!r}")
    return cast(Literal["Lax", "Strict", "None"], value)


def policy_from(config: Mapping[str, Any]) -> Policy:
    """The session policy the ``COATCHECK_*`` keys of ``config`` describe."""
    default = Policy()
    on_limit = str(config.get("COATCHECK_ON_LIMIT", default.on_limit))
    return Policy(
        idle_timeout=seconds(config, "COATCHECK_IDLE_TIMEOUT", default.idle_timeout),
        absolute_lifetime=seconds(config, "COATCHECK_ABSOLUTE_LIFETIME", default.absolute_lifetime),
        touch_interval=seconds(config, "COATCHECK_TOUCH_INTERVAL", default.touch_interval),
        max_sessions_per_user=optional_int(
            config, "COATCHECK_MAX_SESSIONS_PER_USER", default.max_sessions_per_user
        ),
        on_limit=cast(Literal["evict_oldest", "refuse"], on_limit),
        bind_ip=flag(config, "COATCHECK_BIND_IP", default.bind_ip),
        remember_absolute_lifetime=optional_seconds(config, "COATCHECK_REMEMBER_ABSOLUTE_LIFETIME"),
        remember_idle_timeout=optional_seconds(config, "COATCHECK_REMEMBER_IDLE_TIMEOUT"),
    )


def web_settings_from(
    config: Mapping[str, Any], *, default_exempt: Iterable[str] = ()
) -> WebSettings:
    """The web settings the ``COATCHECK_*`` keys of ``config`` describe; every key optional."""
    cookie = CookieSettings()
    web = WebSettings()
    return WebSettings.build(
        cookie=CookieSettings(
            name=str(config.get("COATCHECK_COOKIE_NAME", cookie.name)),
            path=str(config.get("COATCHECK_COOKIE_PATH", cookie.path)),
            domain=optional_str(config, "COATCHECK_COOKIE_DOMAIN", cookie.domain),
            same_site=same_site(config, "COATCHECK_COOKIE_SAMESITE", cookie.same_site),
            persistent=flag(config, "COATCHECK_COOKIE_PERSISTENT", cookie.persistent),
        ),
        exempt_paths=strings(config, "COATCHECK_EXEMPT_PATHS", tuple(default_exempt)),
        trusted_proxies=strings(config, "COATCHECK_TRUSTED_PROXIES", ()),
        login_url=str(config.get("COATCHECK_LOGIN_URL", web.login_url)),
        csrf=flag(config, "COATCHECK_CSRF", web.csrf),
        trusted_origins=strings(config, "COATCHECK_TRUSTED_ORIGINS", ()),
        csrf_exempt_paths=strings(config, "COATCHECK_CSRF_EXEMPT_PATHS", ()),
    )
