"""The relying party's settings: one frozen value, checked when made, readable from the
``COATCHECK_OIDC_*`` names wherever coatcheck's other settings come from (docs/oidc.md)."""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from ..config import values as v
from ..config.settings import OIDC_NAMES
from ..core.errors import ConfigError
from .errors import OIDCConfigError

ISSUER = OIDC_NAMES["issuer"]
# Like the store URL and keys: taken from the environment when the app's configuration lacks
# them, so the client secret need not live in code.
FROM_ENVIRONMENT = ("issuer", "client_id", "client_secret")

_PATH_FIELDS = (
    "login_path",
    "callback_path",
    "logout_path",
    "logged_out_path",
    "backchannel_logout_path",
    "ended_path",
)
_DURATION_FIELDS = {  # field -> whether zero is allowed
    "refresh_skew": True,
    "clock_leeway": True,
    "metadata_ttl": False,
    "jwks_refetch_interval": False,
    "http_timeout": False,
    "refresh_lease": False,
    "refresh_wait": False,
    "login_timeout": False,
}
_MAX_LEEWAY = 300.0  # seconds: more than five minutes of clock skew hides a broken clock
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")  # RFC 6749 3.3 scope-token
_SPLIT = re.compile(r"[\s,]+")


@dataclass(frozen=True, slots=True)
class OIDCSettings:
    """One OpenID Provider and this app's client there (field meanings: docs/oidc.md).

    ``issuer`` is an https URL (http only for a loopback host, for tests); ``scopes`` always
    includes ``openid``; the paths are this app's own, distinct, absolute paths; durations are
    seconds. A bad value raises :class:`OIDCConfigError` naming the field.
    """

    issuer: str
    client_id: str
    client_secret: str = field(default="", repr=False)
    scopes: tuple[str, ...] = ("openid", "profile", "email")
    login_path: str = "/oidc/login"
    callback_path: str = "/oidc/callback"
    logout_path: str = "/oidc/logout"
    logged_out_path: str = "/oidc/logged-out"
    backchannel_logout_path: str = "/oidc/backchannel-logout"
    ended_path: str = "/oidc/ended"
    base_url: str | None = None
    refresh_skew: float = 30.0
    clock_leeway: float = 30.0
    metadata_ttl: float = 3600.0
    jwks_refetch_interval: float = 60.0
    http_timeout: float = 10.0
    refresh_lease: float = 10.0
    refresh_wait: float = 30.0
    prompt_none_fallback: bool = True
    user_id_claim: str = "sub"
    login_timeout: float = 600.0
    post_logout_path: str = "/"

    def __post_init__(self) -> None:
        _check_issuer(self.issuer)
        for name in ("client_id", "user_id_claim"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip() or not value.isprintable():
                raise OIDCConfigError(f"{name} must be non-empty text", field=name)
        if not isinstance(self.client_secret, str) or not self.client_secret.isprintable():
            raise OIDCConfigError("client_secret must be text", field="client_secret")
        object.__setattr__(self, "scopes", _scopes(self.scopes))
        for name in (*_PATH_FIELDS, "post_logout_path"):
            _check_path(name, getattr(self, name))
        taken: dict[str, str] = {}
        for name in _PATH_FIELDS:
            other = taken.setdefault(getattr(self, name), name)
            if other != name:
                raise OIDCConfigError(
                    f"{name} and {other} are both {getattr(self, name)!r}: each needs its own path",
                    field=name,
                )
        if self.base_url is not None:
            object.__setattr__(self, "base_url", _base_url(self.base_url))
        for name, allow_zero in _DURATION_FIELDS.items():
            object.__setattr__(self, name, _duration(name, getattr(self, name), allow_zero))
        if self.clock_leeway > _MAX_LEEWAY:
            raise OIDCConfigError(
                f"clock_leeway must be at most {_MAX_LEEWAY:g} seconds, got {self.clock_leeway:g}",
                field="clock_leeway",
            )
        if not isinstance(self.prompt_none_fallback, bool):
            raise OIDCConfigError(
                "prompt_none_fallback must be True or False", field="prompt_none_fallback"
            )

    @property
    def discovery_url(self) -> str:
        """Where the provider's metadata is (OpenID Connect Discovery 1.0, section 4)."""
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"


def read_oidc_settings(
    config: Mapping[str, Any], *, environ: Mapping[str, str] | None = None
) -> OIDCSettings | None:
    """The OIDC settings the ``COATCHECK_OIDC_*`` names in ``config`` give, or None when no
    issuer is configured (OIDC off).

    ``config`` is what :func:`~coatcheck.config.read_settings` reads (the environment, Flask's
    ``app.config``, Django's settings, a TOML table). The issuer, client id and client secret
    that ``config`` lacks are taken from ``environ`` (default ``os.environ``; ``{}`` reads
    ``config`` alone). Durations take ``30s``/``15m``/``2h`` too, scopes a space- or
    comma-separated string. A bad value raises :class:`OIDCConfigError` naming the setting.
    """
    given = {
        name: value
        for name, value in config.items()
        if name in OIDC_NAMES.values() and value is not None and value != ""
    }
    env = os.environ if environ is None else environ
    for argument in FROM_ENVIRONMENT:
        name = OIDC_NAMES[argument]
        if name not in given and env.get(name):
            given[name] = env[name]
    if ISSUER not in given:
        return None
    client_id = OIDC_NAMES["client_id"]
    if client_id not in given:
        raise OIDCConfigError(
            f"{client_id}: required with {ISSUER} (the client id registered at the provider)",
            field="client_id",
        )
    arguments: dict[str, Any] = {}
    try:
        for item in fields(OIDCSettings):
            name = OIDC_NAMES[item.name]
            if name in given:
                arguments[item.name] = _parse(item.name, given, name)
        return OIDCSettings(**arguments)
    except OIDCConfigError as exc:
        named = OIDC_NAMES.get(exc.field or "", "OIDC settings")
        raise OIDCConfigError(f"{named}: {exc}", field=exc.field) from None
    except ConfigError as exc:
        raise OIDCConfigError(str(exc)) from None


def _parse(argument: str, given: Mapping[str, Any], name: str) -> Any:
    if argument in _DURATION_FIELDS:
        return v.seconds(given, name, 0.0, allow_zero=_DURATION_FIELDS[argument])
    if argument == "prompt_none_fallback":
        return v.flag(given, name, True)
    if argument == "scopes":
        value = given[name]
        return tuple(_SPLIT.split(value.strip())) if isinstance(value, str) else value
    value = given[name]
    if not isinstance(value, str):
        raise OIDCConfigError(f"must be a string, got {type(value).__name__}", field=argument)
    return value


def _check_issuer(issuer: object) -> None:
    if not isinstance(issuer, str) or not issuer:
        raise OIDCConfigError("issuer must be the provider's issuer URL", field="issuer")
    problem = url_problem(issuer)
    if problem:
        raise OIDCConfigError(f"issuer {issuer!r} {problem}", field="issuer")
    if urlsplit(issuer).query or "#" in issuer:
        raise OIDCConfigError(f"issuer {issuer!r} must have no query or fragment", field="issuer")


def url_problem(url: str) -> str | None:
    """Why ``url`` may not be used to reach the provider (None: it may): https, or http to a
    loopback host only (a test provider), with a host."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "is not a URL"
    if not host or parts.scheme not in ("https", "http"):
        return "must be an https:// URL"
    if parts.scheme == "http" and not is_loopback(host):
        return "must use https (http is allowed for a loopback host only)"
    return None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _scopes(scopes: object) -> tuple[str, ...]:
    if isinstance(scopes, str) or not isinstance(scopes, Iterable):
        raise OIDCConfigError("scopes must be a tuple of scope names", field="scopes")
    given = tuple(scopes)
    for scope in given:
        if not isinstance(scope, str) or not _SCOPE_TOKEN.fullmatch(scope):
            raise OIDCConfigError(
                f"scopes: {scope!r} is not a scope name (no spaces or quotes)", field="scopes"
            )
    unique = tuple(dict.fromkeys(given))
    return unique if "openid" in unique else ("openid", *unique)


def _check_path(name: str, path: object) -> None:
    if (
        not isinstance(path, str)
        or not path.startswith("/")
        or path.startswith("//")
        or any(c in path for c in "?#\\")
        or not path.isprintable()
        or " " in path
    ):
        raise OIDCConfigError(
            f"{name} must be an absolute path of this app (/...), without query or fragment; "
            f"got {path!r}",
            field=name,
        )


def _base_url(url: object) -> str:
    parts = urlsplit(url) if isinstance(url, str) else None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.netloc
        or parts.query
        or parts.fragment
    ):
        raise OIDCConfigError(
            f"base_url must be this app's external http(s) origin (https://app.example), "
            f"got {url!r}",
            field="base_url",
        )
    return str(url).rstrip("/")


def _duration(name: str, value: object, allow_zero: bool) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
        or (value == 0 and not allow_zero)
    ):
        kind = "a number of seconds >= 0" if allow_zero else "a positive number of seconds"
        raise OIDCConfigError(f"{name} must be {kind}, got {value!r}", field=name)
    return float(value)
