"""Django settings turned into one coatcheck configuration, built once per process.

Read on first use (not at import, so ``SESSION_ENGINE = "coatcheck.django"`` can be imported
before settings are configured) and rebuilt when a test changes a relevant setting with
``override_settings``. The store connection pool lives in the manager, so the manager is built
once and kept; only :func:`set_manager` replaces it.

The ``COATCHECK_*`` settings are read by :func:`coatcheck.config.read_settings`, as in every
other adapter (the README's "Configuration" table); the store URL and the keys fall back to
the environment. Django's own settings take the place of a few of them:

=================================  ==========================================================
``COATCHECK_STORE_URL``            default ``$COATCHECK_STORE_URL``, else
                                   ``sqlite:///<BASE_DIR>/sessions.db``
``COATCHECK_POLICY``               deprecated: a dict of :class:`coatcheck.Policy` arguments,
                                   read as the flat names (``COATCHECK_IDLE_TIMEOUT`` ...)
``CSRF_TRUSTED_ORIGINS``           instead of ``COATCHECK_TRUSTED_ORIGINS``
``LOGIN_URL``                      instead of ``COATCHECK_LOGIN_URL`` (a path or a URL name)
``SESSION_COOKIE_*``               instead of ``COATCHECK_COOKIE_*``: name, path, domain,
                                   SameSite, Secure of the cookie
``SESSION_EXPIRE_AT_BROWSER_CLOSE`` browser-session cookie instead of one with ``Max-Age``
=================================  ==========================================================

Sessions are always kept in the store (``COATCHECK_SESSION_MODE=sealed`` is not supported
here); a setting Django replaces is reported with a :class:`~coatcheck.config.ConfigWarning`.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.shortcuts import resolve_url

from .._sync.manager import SessionManager
from .._sync.web.handler import SessionHandler
from ..config import ConfigWarning, Settings, read_settings
from ..config.settings import (
    COOKIE_DOMAIN,
    COOKIE_NAME,
    COOKIE_PATH,
    COOKIE_PERSISTENT,
    COOKIE_SAMESITE,
    LEGACY_POLICY,
    LOG_KEY,
    LOGIN_URL,
    POLICY_NAMES,
    PREFIX,
    SEALED_CACHE,
    SEALED_KEYS,
    STORE_URL,
    TOKEN_KEY,
    TRUSTED_ORIGINS,
)
from ..cookies import CookieSettings, development, host_is_loopback
from ..core.errors import ConfigError
from ..core.policy import Policy
from ..stores import DEFAULT_URL, open_store
from ..web.request import RequestInfo
from ..web.settings import WebSettings

# coatcheck settings whose work a Django setting does here.
_DJANGO_OWN = {
    COOKIE_NAME: "SESSION_COOKIE_NAME",
    COOKIE_PATH: "SESSION_COOKIE_PATH",
    COOKIE_DOMAIN: "SESSION_COOKIE_DOMAIN",
    COOKIE_SAMESITE: "SESSION_COOKIE_SAMESITE",
    COOKIE_PERSISTENT: "SESSION_EXPIRE_AT_BROWSER_CLOSE",
    LOGIN_URL: "LOGIN_URL",
    TRUSTED_ORIGINS: "CSRF_TRUSTED_ORIGINS",
    SEALED_KEYS: "nothing: sessions are kept in the store",
    SEALED_CACHE: "nothing: sessions are kept in the store",
}
# Django settings whose change (override_settings in tests) rebuilds the configuration, on
# top of every COATCHECK_* name.
_WATCHED = frozenset(
    {
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
# ... and of those, the ones the manager is built from (a change means a new store).
_MANAGER_NAMES = frozenset({STORE_URL, LEGACY_POLICY, TOKEN_KEY, LOG_KEY, *POLICY_NAMES.values()})


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
    read = coatcheck_settings()
    _manager = SessionManager(
        open_store(store_url()), read.policy, log_key=read.log_key, token_key=read.token_key
    )
    return _manager


def coatcheck_settings() -> Settings:
    """The project's ``COATCHECK_*`` settings, read as every adapter reads them."""
    given = {name: getattr(settings, name) for name in dir(settings) if name.startswith(PREFIX)}
    for name in sorted(given.keys() & _DJANGO_OWN.keys()):
        warnings.warn(
            f"{name} is not read by coatcheck's Django adapter; it uses {_DJANGO_OWN[name]}",
            ConfigWarning,
            stacklevel=2,
        )
    read = read_settings(given)
    if read.session_mode != "server":
        warnings.warn(
            "COATCHECK_SESSION_MODE=sealed is not supported by coatcheck's Django adapter; "
            "sessions are kept in the store",
            ConfigWarning,
            stacklevel=2,
        )
    return read


def store_url() -> str:
    url = coatcheck_settings().store_url
    if url:
        return url
    base_dir = getattr(settings, "BASE_DIR", None)
    return f"sqlite:///{os.path.join(base_dir, 'sessions.db')}" if base_dir else DEFAULT_URL


def policy() -> Policy:
    return coatcheck_settings().policy


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
    read = coatcheck_settings()
    return WebSettings.build(
        cookie=cookie_settings(),
        exempt_paths=read.exempt_paths or (),
        trusted_proxies=read.trusted_proxies,
        login_url=resolve_url(settings.LOGIN_URL),
        csrf=read.csrf,
        trusted_origins=_strings("CSRF_TRUSTED_ORIGINS"),
        csrf_exempt_paths=read.csrf_exempt_paths,
        clear_site_data=read.clear_site_data,
    )


def _strings(name: str) -> list[str]:
    value: Any = getattr(settings, name, None) or ()
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ConfigError(f"{name} must be a list of strings, got {value!r}")
    return [str(v) for v in value]


def _build(manager: SessionManager) -> Config:
    web = web_settings()
    read = coatcheck_settings()
    sessions = replace(web, csrf=False)
    local = None
    if read.loopback_development and not web.cookie.loopback_only:
        local = SessionHandler(manager, replace(sessions, cookie=development(web.cookie)))
    return Config(
        manager=manager,
        web=web,
        handler=SessionHandler(manager, sessions),
        local_handler=local,
        login_carry=read.login_carry,
        proxy_ssl_header=bool(settings.SECURE_PROXY_SSL_HEADER),
    )


@receiver(setting_changed, dispatch_uid="coatcheck.django.conf.reset")
def _reset(*, setting: str, **kwargs: Any) -> None:
    """``override_settings`` in tests: rebuild on next use (a new store only if a setting the
    manager is built from changed)."""
    global _config, _manager
    if setting.startswith(PREFIX) or setting in _WATCHED:
        with _lock:
            _config = None
            if setting in _MANAGER_NAMES:
                _manager = None
