"""What the web layer needs to know about a request, independent of ASGI or WSGI."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..core.errors import ConfigError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(slots=True)
class RequestInfo:
    """A request reduced to plain values: lower-case header names, repeated headers joined.

    Built once per request and never changed (not ``frozen``: a frozen dataclass's
    constructor costs a microsecond more on every request).
    """

    method: str
    path: str
    scheme: str
    headers: Mapping[str, str]
    peer: str | None = None
    query: str = ""

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    @property
    def host(self) -> str | None:
        return self.headers.get("host")

    @property
    def origin(self) -> str:
        """This request's own origin, e.g. ``https://example.com``."""
        return f"{self.scheme}://{self.host or ''}".lower()

    @property
    def wants_html(self) -> bool:
        """True for browsers (HTML in Accept, ahead of JSON)."""
        accept = (self.headers.get("accept") or "").lower()
        if "text/html" not in accept:
            return False
        return "application/json" not in accept or accept.index("text/html") < accept.index(
            "application/json"
        )

    @property
    def path_with_query(self) -> str:
        return self.path + (f"?{self.query}" if self.query else "")


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """``["10.0.0.0/8", "127.0.0.1"]`` as networks, or a ConfigError naming the bad one."""
    nets = []
    for value in values:
        try:
            nets.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError as exc:
            raise ConfigError(f"trusted proxy {value!r} is not an IP address or network") from exc
    return tuple(nets)


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip().strip('"')
    if value.startswith("["):
        value = value[1 : value.find("]")]
    elif value.count(":") == 1:  # IPv4 with a port
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _trusted(addr: str | None, proxies: tuple[Network, ...]) -> bool:
    ip = _ip(addr) if addr else None
    return ip is not None and any(ip in net for net in proxies)


def client_ip(request: RequestInfo, trusted_proxies: tuple[Network, ...] = ()) -> str | None:
    """The client's address: the socket peer, unless that peer is a configured trusted proxy.

    Behind trusted proxies, walk ``Forwarded`` (RFC 7239) or ``X-Forwarded-For`` from the
    right, skipping trusted hops; the first untrusted address is the client. A header from a
    peer that is not a trusted proxy is ignored entirely: anyone can send one.
    """
    peer = request.peer
    if not trusted_proxies or not _trusted(peer, trusted_proxies):
        return peer
    hops: list[str] = []
    forwarded = request.header("forwarded")
    if forwarded:
        for element in forwarded.split(","):
            for pair in element.split(";"):
                key, _, value = pair.strip().partition("=")
                if key.lower() == "for":
                    hops.append(value)
    else:
        hops = [h for h in (request.header("x-forwarded-for") or "").split(",") if h.strip()]
    for hop in reversed(hops):
        ip = _ip(hop)
        if ip is None:
            return peer  # garbage in the chain: trust nothing past the proxy itself
        if not any(ip in net for net in trusted_proxies):
            return str(ip)
    return str(_ip(hops[0])) if hops else peer
