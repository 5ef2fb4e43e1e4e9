"""Session cookie attributes, reading a ``Cookie`` header, writing ``Set-Cookie``, size guard.

Defaults are the strictest a session cookie can have and still work: ``__Host-`` prefix (so no
sibling subdomain can set or shadow it), ``Secure``, ``HttpOnly``, ``SameSite=Lax``, ``Path=/``,
no ``Domain``. Only the loopback development mode may relax them (see :func:`development`).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace
from typing import Literal

from .core.errors import ConfigError

MAX_COOKIE_BYTES = 4096  # what browsers keep per cookie (name + value + attributes)
_NAME_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 6265 token


class CookieTooLarge(ConfigError):
    """A Set-Cookie would exceed what browsers keep: raised instead of sending a dead cookie."""


@dataclass(frozen=True, slots=True)
class CookieSettings:
    """How the session cookie is named and scoped.

    name: ``__Host-session`` by default. Several apps on one host use distinct names (and
        paths) so their cookies never collide.
    path: ``/`` by default; an app mounted under ``/shop`` may use ``/shop`` (then the name
        cannot carry the ``__Host-`` prefix, use ``__Secure-``).
    domain: None (host-only) by default. Setting it shares the cookie with subdomains.
    same_site: "Lax" (default), "Strict" or "None" (which requires Secure).
    persistent: False sends a browser-session cookie; True adds Max-Age so the cookie survives
        a browser restart (until the session's absolute lifetime). A session logged in with
        "remember me" always gets a persistent cookie.
    secure / http_only: True; only :func:`development` turns Secure off, and nothing turns
        HttpOnly off for a session cookie.
    """

    name: str = "__Host-session"
    path: str = "/"
    domain: str | None = None
    same_site: Literal["Lax", "Strict", "None"] = "Lax"
    persistent: bool = False
    secure: bool = True
    http_only: bool = True
    loopback_only: bool = False
    # The attributes around Max-Age, as set_cookie writes them (made once: a cookie is set on
    # every write in sealed mode).
    _before_age: str = field(init=False, repr=False, compare=False)
    _after_age: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _NAME_RE.fullmatch(self.name):
            raise ConfigError(f"cookie name {self.name!r} is not a valid cookie token")
        if not self.path.startswith("/") or any(c in self.path for c in ";\r\n,"):
            raise ConfigError(f"cookie path must start with '/' and hold no ';': {self.path!r}")
        if self.same_site not in ("Lax", "Strict", "None"):
            raise ConfigError(f"same_site must be Lax, Strict or None, got {self.same_site!r}")
        if not self.http_only:
            raise ConfigError("a session cookie must be HttpOnly: scripts never need the token")
        if self.name.startswith("__Host-") and (not self.secure or self.path != "/" or self.domain):
            raise ConfigError(
                "a __Host- cookie must be Secure, have Path=/ and no Domain; "
                "rename it (e.g. __Secure-session) to scope it by path or domain"
            )
        if self.name.startswith("__Secure-") and not self.secure:
            raise ConfigError("a __Secure- cookie must be Secure")
        if self.same_site == "None" and not self.secure:
            raise ConfigError("SameSite=None cookies must be Secure")
        if not self.secure and not self.loopback_only:
            raise ConfigError(
                "an insecure session cookie is allowed only in loopback development mode "
                "(coatcheck.cookies.development())"
            )
        domain = f"; Domain={self.domain}" if self.domain else ""
        object.__setattr__(self, "_before_age", f"; Path={self.path}{domain}")
        secure = "; Secure" if self.secure else ""
        object.__setattr__(self, "_after_age", f"{secure}; HttpOnly; SameSite={self.same_site}")

    def set_cookie(
        self, value: str, max_age: int | None = None, *, persistent: bool | None = None
    ) -> str:
        """The ``Set-Cookie`` value carrying ``value``; refuses one browsers would drop.

        ``max_age`` becomes ``Max-Age`` when the cookie is persistent: by these settings, or
        for this one cookie with ``persistent=True`` (a "remember me" session's)."""
        age = ""
        if max_age is not None and (self.persistent if persistent is None else persistent):
            age = f"; Max-Age={max(0, int(max_age))}"
        header = f"{self.name}={value}{self._before_age}{age}{self._after_age}"
        size = len(header) if header.isascii() else len(header.encode())
        if size > MAX_COOKIE_BYTES:
            raise CookieTooLarge(
                f"the {self.name} cookie would be {size} bytes, over the "
                f"{MAX_COOKIE_BYTES} bytes browsers keep; store less in the session or use "
                "server mode (sessions kept in a store, the cookie holds only the token)"
            )
        return header

    def expire_cookie(self) -> str:
        """A ``Set-Cookie`` that deletes the cookie in the browser."""
        expired = "; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
        return f"{self.name}={self._before_age}{expired}{self._after_age}"


def development(settings: CookieSettings | None = None, *, name: str = "session") -> CookieSettings:
    """Cookie settings for plain ``http://127.0.0.1`` / ``localhost`` during development.

    Drops ``Secure`` (browsers would not send it over http) and the ``__Host-`` prefix (which
    requires Secure). The middleware refuses to serve such a cookie to any host but loopback.
    """
    base = settings or CookieSettings()
    return replace(base, name=name, secure=False, loopback_only=True)


def cookie_values(header: str | None, name: str) -> list[str]:
    """Every value the ``Cookie`` header gives for ``name``, in order, duplicates kept.

    Tolerant of junk: malformed pairs are skipped, never raised on. Callers decide what
    several values mean (see the web layer's resolution of tossed cookies).
    """
    if not header or name not in header:
        return []
    found = []
    for pair in header.split(";"):
        if name not in pair:  # most of a browser's cookies are other sites' and apps'
            continue
        key, sep, value = pair.strip().partition("=")
        if sep and key.strip() == name:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            found.append(value)
    return found


def host_is_loopback(host: str | None) -> bool:
    """True for ``localhost`` and loopback IPs (127.0.0.0/8, ::1, IPv4-mapped 127.x), with
    or without a port or brackets. Any other name is False: it could resolve anywhere."""
    if not host:
        return False
    host = host.strip().lower()
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:  # name or IPv4 with a port
        host = host.split(":", 1)[0]
    host = host.rstrip(".")
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback
