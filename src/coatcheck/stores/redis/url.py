"""A Redis store URL, read and checked once: everything the store and its connections need.

Operator documentation of every option: ``docs/stores/redis.md`` ("URLs").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl, unquote, urlsplit

from ...config import flag
from ...core.errors import ConfigError

DEFAULT_PREFIX: Final = "coatcheck:"
DEFAULT_PROTOCOL: Final = 2  # measured faster than RESP3 for a session lookup (docs)
DEFAULT_SOCKET_TIMEOUT: Final = 2.0
DEFAULT_CONNECT_TIMEOUT: Final = 2.0
DEFAULT_EXPIRED_GRACE: Final = 3600.0  # keep an expired session an hour: "expired", not "unknown"

_SCHEMES: Final = {
    "redis": (False, False),
    "rediss": (False, True),
    "redis+cluster": (True, False),
    "rediss+cluster": (True, True),
}
_OPTIONS: Final = (
    "prefix",
    "expired_grace",
    "protocol",
    "socket_timeout",
    "socket_connect_timeout",
    "max_connections",
    "multiplex",
)
_TLS_OPTIONS: Final = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs")


@dataclass(frozen=True, slots=True)
class RedisOptions:
    """Everything a Redis store URL says, checked."""

    cluster: bool
    tls: bool
    host: str
    port: int
    db: int = 0
    username: str | None = None
    password: str | None = None
    prefix: str = DEFAULT_PREFIX
    protocol: int = DEFAULT_PROTOCOL
    socket_timeout: float = DEFAULT_SOCKET_TIMEOUT
    socket_connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    max_connections: int | None = None
    multiplex: bool = True
    expired_grace: float = DEFAULT_EXPIRED_GRACE
    ssl_ca_certs: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_cert_reqs: str = "required"

    @property
    def where(self) -> str:
        """Names the server in error messages (never the password)."""
        if self.cluster:
            return f"Redis Cluster (seed {self.host}:{self.port})"
        return f"Redis at {self.host}:{self.port} db {self.db}"


def parse_url(url: str) -> RedisOptions:
    """``redis[s]://[user:password@]host[:port][/db][?option=value&...]`` or
    ``redis[s]+cluster://[user:password@]host[:port][?option=value&...]``.

    Options: ``prefix``, ``expired_grace`` (seconds an expired session is kept so a late
    visitor hears "expired" rather than "unknown"; default 3600), ``protocol`` (2 or 3),
    ``socket_timeout``, ``socket_connect_timeout`` (seconds), ``max_connections``, ``multiplex``
    (``false``: async requests take a connection per command instead of sharing one pipelined
    connection) and, with TLS, ``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``,
    ``ssl_cert_reqs`` (required, optional, none). Anything else is a :class:`ConfigError`.
    """
    try:
        parts = urlsplit(url)
        port = parts.port or 6379
    except ValueError as exc:
        raise ConfigError(f"malformed Redis store URL: {exc}") from None
    if parts.scheme.lower() not in _SCHEMES:
        raise ConfigError(
            f"Redis store URL must start with redis://, rediss://, redis+cluster:// or "
            f"rediss+cluster://, got {parts.scheme!r}"
        )
    cluster, tls = _SCHEMES[parts.scheme.lower()]
    if parts.fragment:
        raise ConfigError("Redis store URL must not have a #fragment")
    path = parts.path.strip("/")
    if cluster and path not in ("", "0"):
        raise ConfigError(f"Redis Cluster has only database 0, the URL names {path!r}")
    try:
        db = int(path) if path else 0
    except ValueError:
        raise ConfigError(f"Redis database must be a number, got {path!r}") from None
    if db < 0:
        raise ConfigError(f"Redis database must be >= 0, got {db}")

    known = _OPTIONS + (_TLS_OPTIONS if tls else ())
    values: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name not in known:
            hint = " (TLS options need rediss://)" if name in _TLS_OPTIONS else ""
            raise ConfigError(
                f"unknown Redis store URL option {name!r}{hint}; known: {', '.join(known)}"
            )
        if name in values:
            raise ConfigError(f"Redis store URL option {name!r} is given twice")
        values[name] = value

    prefix = values.get("prefix", DEFAULT_PREFIX)
    if "{" in prefix or "}" in prefix:
        raise ConfigError(
            f"prefix {prefix!r} must not contain '{{' or '}}' (they would move the cluster "
            "hash tag)"
        )
    protocol = _number(values, "protocol", int, DEFAULT_PROTOCOL)
    if protocol not in (2, 3):
        raise ConfigError(f"protocol must be 2 or 3, got {protocol}")
    cert_reqs = values.get("ssl_cert_reqs", "required")
    if cert_reqs not in ("required", "optional", "none"):
        raise ConfigError(f"ssl_cert_reqs must be required, optional or none, got {cert_reqs!r}")
    try:
        expired_grace = float(values.get("expired_grace", DEFAULT_EXPIRED_GRACE))
    except ValueError:
        raise ConfigError(
            f"expired_grace must be a number of seconds, got {values['expired_grace']!r}"
        ) from None
    if not expired_grace >= 0:
        raise ConfigError(f"expired_grace must be >= 0 seconds, got {expired_grace}")
    return RedisOptions(
        cluster=cluster,
        tls=tls,
        host=parts.hostname or "localhost",
        port=port,
        db=db,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        prefix=prefix,
        protocol=protocol,
        socket_timeout=_number(values, "socket_timeout", float, DEFAULT_SOCKET_TIMEOUT),
        socket_connect_timeout=_number(
            values, "socket_connect_timeout", float, DEFAULT_CONNECT_TIMEOUT
        ),
        max_connections=_number(values, "max_connections", int, None),
        multiplex=flag(values, "multiplex", True),
        expired_grace=expired_grace,
        ssl_ca_certs=values.get("ssl_ca_certs") or None,
        ssl_certfile=values.get("ssl_certfile") or None,
        ssl_keyfile=values.get("ssl_keyfile") or None,
        ssl_cert_reqs=cert_reqs,
    )


def client_kwargs(options: RedisOptions) -> dict[str, Any]:
    """The keyword arguments of redis-py's clients (standalone and cluster, sync and async),
    but for ``retry``: each API has its own ``Retry`` class (``_async.redis_client`` adds it)."""
    kwargs: dict[str, Any] = {
        "username": options.username,
        "password": options.password,
        "socket_timeout": options.socket_timeout,
        "socket_connect_timeout": options.socket_connect_timeout,
        "protocol": options.protocol,
    }
    if options.max_connections is not None:
        kwargs["max_connections"] = options.max_connections
    if options.tls:
        kwargs.update(
            ssl=True,
            ssl_ca_certs=options.ssl_ca_certs,
            ssl_certfile=options.ssl_certfile,
            ssl_keyfile=options.ssl_keyfile,
            ssl_cert_reqs=options.ssl_cert_reqs,
            # Said, not left to redis-py's default (False before 6.0, True since): the
            # pipelined connection checks it the same way (mux.tls_context).
            ssl_check_hostname=options.ssl_cert_reqs != "none",
        )
    return kwargs


def _number(values: dict[str, str], name: str, kind: type[Any], default: Any) -> Any:
    if name not in values:
        return default
    try:
        number = kind(values[name])
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {values[name]!r}") from None
    if not (math.isfinite(number) and number > 0):
        raise ConfigError(f"{name} must be positive, got {values[name]!r}")
    return number
