"""The service's settings: command-line flags over ``COATCHECK_*`` variables over a TOML file
over defaults, read once into a frozen :class:`ServiceSettings` (docs/serve.md).

The session library's own settings (policy, cookie, keys, trusted proxies) keep the names
:func:`coatcheck.config.read_settings` knows; they come from the same environment and from the
config file's ``[sessions]`` table, so a deployment's names mean the same for its apps and for
this service. The token key and log key of the embedded set-up live in a secret file beside the
database (see :mod:`coatcheck.service.secretfile`), so a copy of the database alone does not
hold the token key. OpenID Connect login reads the ``[oidc]`` table and the ``COATCHECK_OIDC_*``
names (:mod:`coatcheck.service.oidc_settings`).
"""

from __future__ import annotations

import difflib
import os
import tomllib
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..config import NAMES, ConfigWarning, Settings, read_settings
from ..config import values as v
from ..config.settings import LOOPBACK_DEVELOPMENT, OTHER_NAMES, PREFIX
from ..cookies import host_is_loopback
from ..core.errors import ConfigError
from ..stores.kinds import scheme_of
from ..testing.guard import ensure_testing_allowed
from .oidc_settings import OIDC_ENV_NAMES, oidc_table_names, read_service_oidc
from .secretfile import SECRET_FILE_NAME, read_secret_file

if TYPE_CHECKING:
    from ..oidc import OIDCSettings

CONFIG_FILE_ENV = "COATCHECK_SERVICE_CONFIG"
"""The environment variable naming the TOML config file (``--config`` wins over it)."""

DEFAULT_HOST = "127.0.0.1"
DEFAULT_DATA_DIR = Path("coatcheck-data")
DATABASE_NAME = "coatcheck.db"

Limit = tuple[int, float]
LOGIN_CHOICES = ("local", "oidc", "both")
"""Who logs in on the pages: local users (password), the OpenID Provider's, or both."""


def default_store_url(data_dir: Path) -> str:
    """The embedded SQLite database inside the data directory."""
    return f"sqlite:///{data_dir / DATABASE_NAME}"


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """Everything ``coatcheck serve`` and the service's CLI commands run with.

    ``library`` holds the session library's settings (policy, cookies, keys); its
    ``store_url`` is the same as :attr:`store_url`. ``secret_file`` is where the token key and
    log key live (None: from the environment or the store's own key, for shared stores).
    ``config_file`` is the TOML file the settings were read from, if any. ``oidc``: the
    OpenID Provider (``[oidc]``, ``COATCHECK_OIDC_*``), used by the pages when ``login`` is
    ``oidc`` or ``both``.
    """

    host: str = DEFAULT_HOST
    port: int = 8000
    store_url: str = default_store_url(DEFAULT_DATA_DIR)
    data_dir: Path = DEFAULT_DATA_DIR
    secret_file: Path | None = None
    testing: bool = False
    test_users: tuple[str, ...] = ("alice", "bob")
    signup: bool = False
    reauth_after: float = 300.0
    max_body_bytes: int = 65536
    login_limit_account: Limit = (5, 300.0)
    login_limit_ip: Limit = (30, 300.0)
    library: Settings = field(default_factory=Settings)
    public_url: str | None = None
    introspection_cache: float = 0.0
    login: str = "local"
    login_provider_name: str | None = None
    config_file: Path | None = None
    oidc: OIDCSettings | None = None

    @property
    def oidc_login(self) -> bool:
        """The pages log people in through the OpenID Provider (``login`` oidc or both)."""
        return self.login != "local" and self.oidc is not None

    @property
    def development_cookies(self) -> bool:
        """Plain-http loopback requests get the development cookie (``session``, no
        ``Secure``); every other request the secure ``__Host-`` one."""
        return self.library.loopback_development

    @property
    def embedded(self) -> bool:
        """The store is a local SQLite file, not shared with other machines."""
        return scheme_of(self.store_url) == "sqlite"


# --- the settings, their sources and parsers -----------------------------------------------------

Parser = Callable[[Mapping[str, Any], str], Any]


def _text(config: Mapping[str, Any], key: str) -> str:
    value = v.optional_str(config, key, None)
    if value is None:
        raise ConfigError(f"{key} must not be empty")
    return value


def _port(config: Mapping[str, Any], key: str) -> int:
    value = config[key]
    text = str(value).strip() if isinstance(value, int | str) else ""
    if isinstance(value, bool) or not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ConfigError(f"{key} must be a port number from 1 to 65535, got {value!r}")
    return int(text)


def _path(config: Mapping[str, Any], key: str) -> Path:
    value = config[key]
    if isinstance(value, Path):
        return value
    return Path(_text(config, key))


def _body_bytes(config: Mapping[str, Any], key: str) -> int:
    size = v.integer(config, key, 0)
    if size < 1024:
        raise ConfigError(f"{key} must be at least 1024 (bytes), got {config[key]!r}")
    return size


def _limit(config: Mapping[str, Any], key: str) -> Limit:
    """``5/5m`` (five per five minutes) or, in TOML, ``[5, "5m"]``."""
    value = config[key]
    parts = value.split("/") if isinstance(value, str) else value
    if isinstance(parts, list | tuple) and len(parts) == 2:
        count = v.optional_int({key: parts[0]}, key, None)
        if count is not None and count >= 1:
            return count, v.seconds({key: parts[1]}, key, 0.0)
    raise ConfigError(
        f'{key} must be attempts per window, like 5/5m (TOML: [5, "5m"]), got {value!r}'
    )


def _public_url(config: Mapping[str, Any], key: str) -> str:
    url = _text(config, key).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise ConfigError(
            f"{key} must be the service's address like https://host[/path], got {url!r}"
        )
    return url


MAX_INTROSPECTION_CACHE = 60.0  # seconds: the longest revocation delay the setting may add


def _cache_age(config: Mapping[str, Any], key: str) -> float:
    """Seconds a cached introspection may be served, 0 (off) to ``MAX_INTROSPECTION_CACHE``."""
    age = v.seconds(config, key, 0.0, allow_zero=True)
    if not 0 <= age <= MAX_INTROSPECTION_CACHE:
        raise ConfigError(
            f"{key} must be 0 (off) to {MAX_INTROSPECTION_CACHE:g} seconds, got {config[key]!r}"
        )
    return age


def _login(config: Mapping[str, Any], key: str) -> str:
    value = _text(config, key).strip().lower()
    if value not in LOGIN_CHOICES:
        raise ConfigError(f"{key} must be local, oidc or both, got {config[key]!r}")
    return value


def _test_users(config: Mapping[str, Any], key: str) -> tuple[str, ...]:
    users = v.strings(config, key, ())
    if not users:
        raise ConfigError(f"{key} must name at least one user")
    return users


SETTINGS: dict[str, tuple[str, Parser]] = {
    "store_url": ("COATCHECK_STORE_URL", _text),
    "host": ("COATCHECK_HOST", _text),
    "port": ("COATCHECK_PORT", _port),
    "data_dir": ("COATCHECK_DATA_DIR", _path),
    "secret_file": ("COATCHECK_SECRET_FILE", _path),
    "testing": ("COATCHECK_TESTING", lambda c, k: v.flag(c, k, False)),
    "test_users": ("COATCHECK_TEST_USERS", _test_users),
    "signup": ("COATCHECK_SIGNUP", lambda c, k: v.flag(c, k, False)),
    "reauth_after": ("COATCHECK_REAUTH_AFTER", lambda c, k: v.seconds(c, k, 0.0)),
    "max_body_bytes": ("COATCHECK_MAX_BODY_BYTES", _body_bytes),
    "login_limit_account": ("COATCHECK_LOGIN_LIMIT_ACCOUNT", _limit),
    "login_limit_ip": ("COATCHECK_LOGIN_LIMIT_IP", _limit),
    "public_url": ("COATCHECK_PUBLIC_URL", _public_url),
    "introspection_cache": ("COATCHECK_INTROSPECTION_CACHE", _cache_age),
    "login": ("COATCHECK_LOGIN", _login),
    "login_provider_name": ("COATCHECK_LOGIN_PROVIDER_NAME", _text),
}
"""Each ``[service]`` key: its environment variable and how its value is read."""

SERVICE_ENV_NAMES = frozenset(env for env, _ in SETTINGS.values()) | {CONFIG_FILE_ENV}


# --- loading -------------------------------------------------------------------------------------


def load_service_settings(
    config_file: Path | None,
    environ: Mapping[str, str],
    overrides: Mapping[str, object],
) -> ServiceSettings:
    """The settings from ``overrides`` (field name -> value, the command line's flags), then
    ``environ``, then the TOML ``config_file`` (or the file ``COATCHECK_SERVICE_CONFIG``
    names), then the defaults. An existing secret file is read for the keys; nothing is
    created (:func:`coatcheck.service.secretfile.prepare_first_start` does that).

    Raises :class:`ConfigError` with one line naming the setting (and the file) at fault.
    """
    unknown = sorted(overrides.keys() - SETTINGS.keys())
    if unknown:
        raise ConfigError(f"unknown service setting(s): {', '.join(unknown)}")
    env = {k: val for k, val in environ.items() if k.startswith(PREFIX) and val != ""}
    _warn_unknown_env(env)
    if config_file is None and env.get(CONFIG_FILE_ENV):
        config_file = Path(env[CONFIG_FILE_ENV])
    file = _read_config_file(config_file) if config_file else ConfigFile()
    service_table, sessions_table = file.service, file.sessions
    where = f"{config_file}: [service]"

    chosen: dict[str, Any] = {}
    for name, (env_name, parse) in SETTINGS.items():
        if overrides.get(name) is not None:
            label, raw = f"--{name.replace('_', '-')}", overrides[name]
        elif env_name in env:
            label, raw = env_name, env[env_name]
        elif name in service_table:
            label, raw = f"{where} {name}", service_table[name]
        else:
            continue
        chosen[name] = parse({label: raw}, label)

    data_dir: Path = chosen.get("data_dir", DEFAULT_DATA_DIR)
    store_url: str = chosen.get("store_url", default_store_url(data_dir))
    scheme_of(store_url)  # an unknown scheme is refused now, not at the first request
    if "secret_file" not in chosen and scheme_of(store_url) == "sqlite":
        chosen["secret_file"] = data_dir / SECRET_FILE_NAME
    host: str = chosen.get("host", DEFAULT_HOST)
    public_url: str | None = chosen.get("public_url")
    library = _library_settings(config_file, sessions_table, env, store_url)
    secrets = read_secret_file(chosen.get("secret_file"))
    if secrets is not None:
        library = replace(
            library,
            token_key=library.token_key or secrets.token_key,
            log_key=library.log_key or secrets.log_key,
        )
    if LOOPBACK_DEVELOPMENT not in env and LOOPBACK_DEVELOPMENT not in sessions_table:
        plain = public_url is None or not public_url.startswith("https://")
        library = replace(library, loopback_development=host_is_loopback(host) and plain)
    chosen.update(store_url=store_url, data_dir=data_dir)
    oidc = read_service_oidc(config_file, file.oidc, env, file.info)
    if oidc is not None and oidc.base_url is None and public_url is not None:
        oidc = replace(oidc, base_url=public_url)
    settings = ServiceSettings(**chosen, library=library, config_file=config_file, oidc=oidc)
    _check_login(settings, bool(file.oidc) or any(name in env for name in OIDC_ENV_NAMES))
    if settings.testing:
        ensure_testing_allowed(explicit=True, bind_host=settings.host)
    return settings


def _check_login(settings: ServiceSettings, oidc_given: bool) -> None:
    """The ``login`` choice fits the rest: a provider for ``oidc``/``both``, server-side
    sessions, no sign-up of local users who could not log in."""
    login = settings.login
    if login == "local":
        if oidc_given:
            warnings.warn(
                "OpenID Connect settings are given but login is local, so the pages offer no "
                "OpenID Connect login; set login to both or oidc (COATCHECK_LOGIN)",
                ConfigWarning,
                stacklevel=3,
            )
        return
    if settings.oidc is None:
        raise ConfigError(
            f"login = {login} needs an OpenID Provider: set issuer and client_id in the "
            "[oidc] table, or COATCHECK_OIDC_ISSUER and COATCHECK_OIDC_CLIENT_ID"
        )
    if settings.library.session_mode != "server":
        raise ConfigError(
            f"login = {login}: OpenID Connect needs server-side sessions (in sealed-cookie mode "
            "the provider's tokens would travel in the browser's cookie); unset "
            "COATCHECK_SESSION_MODE or set it to 'server'"
        )
    if login == "oidc" and settings.signup:
        raise ConfigError(
            "signup creates local users, who cannot log in with login = oidc; turn signup "
            "off or set login to both"
        )


def _warn_unknown_env(env: Mapping[str, str]) -> None:
    known = NAMES | OTHER_NAMES | SERVICE_ENV_NAMES | OIDC_ENV_NAMES
    for name in sorted(env.keys() - known):
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        warnings.warn(
            f"{name} is not a coatcheck setting and is ignored{hint}", ConfigWarning, stacklevel=3
        )


@dataclass(frozen=True, slots=True)
class ConfigFile:
    """The config file's tables (``[sessions]`` and ``[oidc]`` under the library's names) and
    its ``stat`` (whether others may read it)."""

    service: Mapping[str, Any] = field(default_factory=dict)
    sessions: Mapping[str, Any] = field(default_factory=dict)
    oidc: Mapping[str, Any] = field(default_factory=dict)
    info: os.stat_result | None = None


TABLES = ("service", "sessions", "oidc")


def _read_config_file(path: Path) -> ConfigFile:
    """The ``[service]``, ``[sessions]`` and ``[oidc]`` tables; anything else is refused,
    naming the file."""
    try:
        with path.open("rb") as handle:
            info = os.fstat(handle.fileno())
            document = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    for table in sorted(document.keys() - set(TABLES)):
        raise ConfigError(
            f"{path}: unknown table or key {table!r}; the file has [service], [sessions] and "
            "[oidc] tables"
        )
    tables: list[dict[str, Any]] = []
    for name in TABLES:
        table = document.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: {name} must be a table ([{name}])")
        tables.append(table)
    service, sessions, oidc = tables
    for key in sorted(service.keys() - SETTINGS.keys()):
        close = difflib.get_close_matches(key, sorted(SETTINGS), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise ConfigError(f"{path}: [service] {key} is not a service setting{hint}")
    return ConfigFile(service, _sessions_names(path, sessions), oidc_table_names(path, oidc), info)


def _sessions_names(path: Path, table: Mapping[str, Any]) -> dict[str, Any]:
    """``[sessions]`` keys as the library names them: ``idle_timeout`` or
    ``COATCHECK_IDLE_TIMEOUT`` both mean ``COATCHECK_IDLE_TIMEOUT``."""
    named: dict[str, Any] = {}
    for key, value in table.items():
        name = key if key.startswith(PREFIX) else PREFIX + key.upper()
        if name == SETTINGS["store_url"][0]:
            raise ConfigError(f"{path}: [sessions] {key}: the store is [service] store_url")
        if name not in NAMES:
            suffixes = sorted(n.removeprefix(PREFIX).lower() for n in NAMES)
            close = difflib.get_close_matches(key.removeprefix(PREFIX).lower(), suffixes, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ConfigError(f"{path}: [sessions] {key} is not a session setting{hint}")
        named[name] = value
    return named


def _library_settings(
    path: Path | None, table: Mapping[str, Any], env: Mapping[str, str], store_url: str
) -> Settings:
    """The library's settings: environment over the file's ``[sessions]`` table. Each source is
    read alone first, so an error names where the bad value is."""
    from_env = {k: val for k, val in env.items() if k in NAMES and k != SETTINGS["store_url"][0]}
    for source, given in ((f"{path}: [sessions]", table), ("environment", from_env)):
        try:
            read_settings(given, environ={}, strict=True)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}" if source != "environment" else str(exc)) from None
    merged = {**table, **from_env, SETTINGS["store_url"][0]: store_url}
    return read_settings(merged, environ={}, strict=True)
