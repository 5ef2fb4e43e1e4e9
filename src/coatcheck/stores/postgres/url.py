"""A ``postgresql://`` store URL, split into libpq's connection string and coatcheck's options."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

from ...core.errors import ConfigError

DEFAULT_TABLE = "coatcheck_sessions"
DEFAULT_POOL_MIN = 0
DEFAULT_POOL_MAX = 10
DEFAULT_TIMEOUT = 5.0
# Index names are derived from the table name and PostgreSQL cuts identifiers at 63 bytes.
MAX_TABLE_LENGTH = 48
OWN_OPTIONS = ("table", "pool_min", "pool_max", "timeout")

_TABLE_RE = re.compile(r"[a-z_][a-z0-9_]*")


@dataclass(frozen=True, slots=True)
class PostgresOptions:
    """What a ``postgresql://`` store URL asks for, validated."""

    conninfo: str  # the URL handed to libpq: coatcheck's own options removed
    table: str
    pool_min: int
    pool_max: int
    timeout: float  # seconds to wait for a pooled connection, and to connect
    where: str  # host:port/dbname, for messages (never the password)
    libpq: Mapping[str, str]  # the libpq parameters the URL sets


def parse_url(url: str) -> PostgresOptions:
    """Split a store URL into libpq's conninfo and coatcheck's options, or a ConfigError.

    coatcheck's options are ``table``, ``pool_min``, ``pool_max`` and ``timeout``; any other
    query option must be a libpq connection parameter (``sslmode``, ``application_name``,
    ``connect_timeout``, ``options``, ...) and is passed through.
    """
    if not isinstance(url, str):
        raise ConfigError(f"PostgreSQL store URL must be a string, got {type(url).__name__}")
    try:
        parts = urlsplit(url)
        secret = parts.password
    except ValueError as exc:  # e.g. an unclosed [IPv6 address
        raise ConfigError(f"PostgreSQL store URL is malformed: {exc}") from exc
    if parts.scheme.lower() not in ("postgresql", "postgres"):
        raise ConfigError(
            "PostgreSQL store URL must look like postgresql://user@host:5432/db, "
            f"got scheme {parts.scheme!r}"
        )
    own: dict[str, str] = {}
    passed: list[str] = []
    for piece in parts.query.split("&"):
        if not piece:
            continue
        raw_name, _, raw_value = piece.partition("=")
        name = unquote(raw_name)
        if name not in OWN_OPTIONS:
            passed.append(piece)
        elif name in own:
            raise ConfigError(f"option {name!r} appears twice in the PostgreSQL store URL")
        else:
            own[name] = unquote(raw_value)
    # Rebuilt by hand: urlunsplit() would turn postgresql:///db (Unix socket) into postgresql:/db.
    conninfo = f"postgresql://{parts.netloc}{parts.path}" + (
        f"?{'&'.join(passed)}" if passed else ""
    )
    try:
        libpq = conninfo_to_dict(conninfo)
    except psycopg.Error as exc:
        why = one_line(exc)
        if secret:  # libpq quotes the offending part, which may be the password
            why = why.replace(secret, "***").replace(unquote(secret), "***")
        raise ConfigError(
            f"PostgreSQL store URL is not valid: {why}; coatcheck's own options are "
            f"{', '.join(OWN_OPTIONS)}, anything else must be a libpq connection parameter "
            "(sslmode, application_name, connect_timeout, ...)"
        ) from exc
    for port in str(libpq.get("port") or "5432").split(","):
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"PostgreSQL store URL has an invalid port {port!r}")
    table = own.get("table", DEFAULT_TABLE)
    if not _TABLE_RE.fullmatch(table) or len(table) > MAX_TABLE_LENGTH:
        raise ConfigError(
            f"option table={table!r} must be a plain lower-case identifier "
            f"([a-z_][a-z0-9_]*, at most {MAX_TABLE_LENGTH} characters)"
        )
    pool_min = _int_option(own, "pool_min", DEFAULT_POOL_MIN, minimum=0)
    pool_max = _int_option(own, "pool_max", max(DEFAULT_POOL_MAX, pool_min), minimum=1)
    if pool_max < pool_min:
        raise ConfigError(f"option pool_max={pool_max} must not be below pool_min={pool_min}")
    timeout = _timeout_option(own)
    libpq_str = {k: str(v) for k, v in libpq.items()}
    return PostgresOptions(
        conninfo, table, pool_min, pool_max, timeout, _where(libpq_str), libpq_str
    )


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (libpq's span several)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _int_option(own: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    if name not in own:
        return default
    text = own[name]
    if not re.fullmatch(r"[0-9]+", text) or int(text) < minimum:
        raise ConfigError(f"option {name}={text!r} must be a whole number >= {minimum}")
    return int(text)


def _timeout_option(own: Mapping[str, str]) -> float:
    if "timeout" not in own:
        return DEFAULT_TIMEOUT
    try:
        timeout = float(own["timeout"])
    except ValueError:
        timeout = math.nan
    if not (math.isfinite(timeout) and timeout > 0):
        raise ConfigError(f"option timeout={own['timeout']!r} must be a positive number of seconds")
    return timeout


def _where(libpq: Mapping[str, str]) -> str:
    hosts = (libpq.get("host") or libpq.get("hostaddr") or "").split(",")
    ports = (libpq.get("port") or "").split(",")
    places = []
    for i, host in enumerate(hosts):
        port = ports[i] if i < len(ports) else ports[-1]
        places.append(f"{host or 'local socket'}:{port or 5432}")
    return ",".join(places) + (f"/{libpq['dbname']}" if libpq.get("dbname") else "")
