"""Django settings turned into one coatcheck configuration, built once per process.

Read on first use (not at import, so ``SESSION_ENGINE = "coatcheck.django"`` can be imported
before settings are configured) and rebuilt when a test changes a relevant setting with
``override_settings``. The store connection pool lives in the manager, so the manager is built
once and kept; only :func:`set_manager` replaces it.

=================================  ==========================================================
``COATCHECK_STORE_URL``            store URL; default ``$COATCHECK_STORE_URL``, else
                                   ``sqlite:///<BASE_DIR>/sessions.db``
``COATCHECK_POLICY``               keyword arguments of :class:`coatcheck.Policy`
``COATCHECK_LOOPBACK_DEVELOPMENT`` plain-http requests to 127.0.0.1/localhost/::1 get the
                                   development cookie (``session``, no ``Secure``)
``COATCHECK_EXEMPT_PATHS``         path prefixes that never touch the session or get a cookie
``COATCHECK_TRUSTED_PROXIES``      peers whose ``Forwarded``/``X-Forwarded-For`` is believed
``COATCHECK_CSRF``                 ``CsrfMiddleware`` on (default) or off
``COATCHECK_CSRF_EXEMPT_PATHS``    prefixes exempt from CSRF checks (webhooks)
``COATCHECK_LOGIN_CARRY``          ``None`` (default: keep the anonymous session's data at
                                   login, as Django does) or the keys that may move
``CSRF_TRUSTED_ORIGINS``           other origins allowed to send unsafe requests
``LOGIN_URL``                      where guards send browsers (a path or a URL name)
``SESSION_COOKIE_*``               name, path, domain, SameSite, Secure of the cookie
``SESSION_EXPIRE_AT_BROWSER_CLOSE`` browser-session cookie instead of one with ``Max-Age``
=================================  ==========================================================
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.shortcuts import resolve_url

from .._sync.manager import SessionManager
from ..cookies import CookieSettings, development, host_is_loopback
from ..core.errors import ConfigError
from ..core.policy import Policy
from ..stores import DEFAULT_URL, open_store
from ..web._sync.handler import SessionHandler
from ..web.request import RequestInfo
from ..web.settings import WebSettings

STORE_URL_ENV = "COATCHECK_STORE_URL"

# Settings whose change (override_settings in tests) rebuilds the configuration.
_WATCHED = frozenset(
    {
        "COATCHECK_STORE_URL",
        "COATCHECK_POLICY",
        "COATCHECK_LOOPBACK_DEVELOPMENT",
        "COATCHECK_EXEMPT_PATHS",
        "COATCHECK_TRUSTED_PROXIES",
        "COATCHECK_CSRF",
        "COATCHECK_CSRF_EXEMPT_PATHS",
        "COATCHECK_LOGIN_CARRY",
        "CSRF_TRUSTED_ORIGINS",
        "LOGIN_URL",
        "SESSION_COOKIE_NAME",
        "SESSION_COOKIE_PATH",
        "SESSION_COOKIE_DOMAIN",
        "SESSION_COOKIE_SAMESITE",
        "SESSION_COOKIE_SECURE",
        "SESSION_COOKIE_HTTPONLY",
        "SESSION_EXPIRE_AT_BROWSER_CLOSE",
        "SECURE_PROXY_SSL_HEADER",
    }
)


@dataclass(frozen=True, slots=True)
class Config:
    """Everything the Django adapter needs, derived from settings.

    ``web`` holds the CSRF switch the :class:`~coatcheck.django.middleware.CsrfMiddleware`
    obeys; the session handlers run with CSRF off because in Django that check belongs in
    ``process_view``, where ``@csrf_exempt`` is known. ``proxy_ssl_header`` says whether
    Django's ``SECURE_PROXY_SSL_HEADER`` is set (read here once: settings cost per request).
    """

    manager: SessionManager
    web: WebSettings
    handler: SessionHandler
    local_handler: SessionHandler | None
    login_carry: tuple[str, ...] | None
    proxy_ssl_header: bool

    def handler_for(self, request: RequestInfo) -> SessionHandler:
        """The development-cookie handler for plain-http loopback requests (if enabled)."""
        if (
            self.local_handler is not None
            and request.scheme == "http"
            and host_is_loopback(request.host)
        ):
            return self.local_handler
        return self.handler


_lock = threading.Lock()
_config: Config | None = None
_manager: SessionManager | None = None


def get_config() -> Config:
    """The process-wide configuration (built on first use)."""
    global _config
    config = _config
    if config is None:
        with _lock:
            if _config is None:
                _config = _build(_manager or _build_manager())
            config = _config
    return config


def get_manager() -> SessionManager:
    """The process-wide session manager (for views, management commands, scripts)."""
    return get_config().manager


def set_manager(manager: SessionManager | None) -> None:
    """Use ``manager`` from now on (tests inject a memory store and a ``FakeClock``);
    ``None`` goes back to the one built from settings. The caller closes managers it made."""
    global _config, _manager
    with _lock:
        _manager = manager
        _config = None


def _build_manager() -> SessionManager:
    global _manager
    _manager = SessionManager(open_store(store_url()), policy())
    return _manager


def store_url() -> str:
    url = getattr(settings, "COATCHECK_STORE_URL", None) or os.environ.get(STORE_URL_ENV)
    if url:
        return str(url)
    base_dir = getattr(settings, "BASE_DIR", None)
    return f"sqlite:///{os.path.join(base_dir, 'sessions.db')}" if base_dir else DEFAULT_URL


def policy() -> Policy:
    options = getattr(settings, "COATCHECK_POLICY", None) or {}
    try:
        return Policy(**options)
    except TypeError as exc:
        raise ConfigError(f"COATCHECK_POLICY: {exc} (see coatcheck.Policy)") from exc


def cookie_settings() -> CookieSettings:
    """The session cookie as Django's ``SESSION_COOKIE_*`` settings describe it.

    ``SESSION_COOKIE_SECURE = False`` means the loopback-only development mode; coatcheck's own
    checks refuse what browsers would drop or what would weaken the cookie (no HttpOnly, a
    ``__Host-`` name with a path or domain, SameSite=None without Secure).
    """
    same_site = settings.SESSION_COOKIE_SAMESITE
    if same_site not in ("Lax", "Strict", "None"):
        raise ConfigError(
            f"SESSION_COOKIE_SAMESITE must be 'Lax', 'Strict' or 'None', got {same_site!r}"
        )
    secure = bool(settings.SESSION_COOKIE_SECURE)
    return CookieSettings(
        name=settings.SESSION_COOKIE_NAME,
        path=settings.SESSION_COOKIE_PATH,
        domain=settings.SESSION_COOKIE_DOMAIN or None,
        same_site=same_site,
        persistent=not settings.SESSION_EXPIRE_AT_BROWSER_CLOSE,
        secure=secure,
        http_only=bool(settings.SESSION_COOKIE_HTTPONLY),
        loopback_only=not secure,
    )


def web_settings() -> WebSettings:
    return WebSettings.build(
        cookie=cookie_settings(),
        exempt_paths=_strings("COATCHECK_EXEMPT_PATHS"),
        trusted_proxies=_strings("COATCHECK_TRUSTED_PROXIES"),
        login_url=resolve_url(settings.LOGIN_URL),
        csrf=bool(getattr(settings, "COATCHECK_CSRF", True)),
        trusted_origins=_strings("CSRF_TRUSTED_ORIGINS"),
        csrf_exempt_paths=_strings("COATCHECK_CSRF_EXEMPT_PATHS"),
    )


def _strings(name: str) -> list[str]:
    value: Any = getattr(settings, name, None) or ()
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ConfigError(f"{name} must be a list of strings, got {value!r}")
    return [str(v) for v in value]


def _build(manager: SessionManager) -> Config:
    web = web_settings()
    sessions = replace(web, csrf=False)
    local = None
    if getattr(settings, "COATCHECK_LOOPBACK_DEVELOPMENT", False) and not web.cookie.loopback_only:
        local = SessionHandler(manager, replace(sessions, cookie=development(web.cookie)))
    carry = getattr(settings, "COATCHECK_LOGIN_CARRY", None)
    return Config(
        manager=manager,
        web=web,
        handler=SessionHandler(manager, sessions),
        local_handler=local,
        login_carry=None if carry is None else tuple(_strings("COATCHECK_LOGIN_CARRY")),
        proxy_ssl_header=bool(settings.SECURE_PROXY_SSL_HEADER),
    )


@receiver(setting_changed, dispatch_uid="coatcheck.django.conf.reset")
def _reset(*, setting: str, **kwargs: Any) -> None:
    """``override_settings`` in tests: rebuild on next use (a new store only if its URL or
    the policy changed)."""
    global _config, _manager
    if setting in _WATCHED:
        with _lock:
            _config = None
            if setting in ("COATCHECK_STORE_URL", "COATCHECK_POLICY"):
                _manager = None
