"""Everything the web layer can be told, in one frozen object with secure defaults."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..config import Settings
from ..cookies import CookieSettings
from ..core.errors import ConfigError
from .request import Network, parse_networks

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


@dataclass(frozen=True, slots=True)
class WebSettings:
    """Web behaviour shared by every adapter.

    cookie: the session cookie's name and scope (:class:`CookieSettings`).
    exempt_paths: path prefixes that never touch the session and never get a cookie
        (static files, health checks, public feeds).
    trusted_proxies: peers (IPs or CIDRs) whose ``Forwarded``/``X-Forwarded-For`` is believed.
    login_url: where the login guard sends browsers (same-origin path).
    csrf: check unsafe cookie-authenticated requests (origin + synchronizer token).
    trusted_origins: other origins allowed to send unsafe requests (``https://admin.example``).
    csrf_exempt_paths: prefixes exempt from CSRF checks (webhooks with their own auth).
    clear_site_data: also send ``Clear-Site-Data: "cookies"`` when a session ends. Off by
        default: browsers apply it to the whole registrable domain, subdomains included, so
        it would end other apps' sessions on the domain and an OpenID Provider's on a sibling
        subdomain; the expired cookie already ends ours. For an app alone on its domain.
    """

    cookie: CookieSettings = field(default_factory=CookieSettings)
    exempt_paths: tuple[str, ...] = ()
    trusted_proxies: tuple[Network, ...] = ()
    login_url: str = "/login"
    csrf: bool = True
    trusted_origins: frozenset[str] = frozenset()
    csrf_exempt_paths: tuple[str, ...] = ()
    clear_site_data: bool = False

    def __post_init__(self) -> None:
        if not self.login_url.startswith("/") or self.login_url.startswith("//"):
            raise ConfigError(f"login_url must be a same-origin path, got {self.login_url!r}")
        for prefix in (*self.exempt_paths, *self.csrf_exempt_paths):
            if not prefix.startswith("/"):
                raise ConfigError(f"exempt path prefixes must start with '/', got {prefix!r}")

    @classmethod
    def build(
        cls,
        *,
        cookie: CookieSettings | None = None,
        exempt_paths: Iterable[str] = (),
        trusted_proxies: Iterable[str] = (),
        login_url: str = "/login",
        csrf: bool = True,
        trusted_origins: Iterable[str] = (),
        csrf_exempt_paths: Iterable[str] = (),
        clear_site_data: bool = False,
    ) -> WebSettings:
        """Friendly constructor taking plain strings and lists."""
        return cls(
            cookie=cookie or CookieSettings(),
            exempt_paths=tuple(exempt_paths),
            trusted_proxies=parse_networks(trusted_proxies),
            login_url=login_url,
            csrf=csrf,
            trusted_origins=frozenset(o.rstrip("/").lower() for o in trusted_origins),
            csrf_exempt_paths=tuple(csrf_exempt_paths),
            clear_site_data=clear_site_data,
        )

    @classmethod
    def from_settings(
        cls, settings: Settings, *, default_exempt: Iterable[str] = ()
    ) -> WebSettings:
        """The web settings :func:`coatcheck.config.read_settings` read; ``default_exempt``
        stands for ``COATCHECK_EXEMPT_PATHS`` when that is not set (Flask's static files)."""
        exempt = settings.exempt_paths
        return cls.build(
            cookie=cookie_settings(settings),
            exempt_paths=tuple(default_exempt) if exempt is None else exempt,
            trusted_proxies=settings.trusted_proxies,
            login_url=settings.login_url,
            csrf=settings.csrf,
            trusted_origins=settings.trusted_origins,
            csrf_exempt_paths=settings.csrf_exempt_paths,
            clear_site_data=settings.clear_site_data,
        )

    def is_exempt(self, path: str) -> bool:
        return bool(self.exempt_paths) and any(_under(path, p) for p in self.exempt_paths)

    def is_csrf_exempt(self, path: str) -> bool:
        return bool(self.csrf_exempt_paths) and any(_under(path, p) for p in self.csrf_exempt_paths)


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


def cookie_settings(settings: Settings) -> CookieSettings:
    """The session cookie the ``COATCHECK_COOKIE_*`` settings describe."""
    return CookieSettings(
        name=settings.cookie_name,
        path=settings.cookie_path,
        domain=settings.cookie_domain,
        same_site=settings.cookie_same_site,
        persistent=settings.cookie_persistent,
    )
