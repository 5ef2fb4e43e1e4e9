"""OpenID Connect for Django: ``coatcheck.django.oidc.OIDCMiddleware`` (docs/web/django.md).

::

    MIDDLEWARE = [
        "django.middleware.security.SecurityMiddleware",
        "coatcheck.django.middleware.SessionMiddleware",
        "coatcheck.django.oidc.OIDCMiddleware",            # right after the sessions
        ...
    ]
    AUTHENTICATION_BACKENDS = ["coatcheck.django.oidc.OIDCBackend", ...]
    LOGIN_URL = "/oidc/login"
    COATCHECK_OIDC_ISSUER = "https://id.example.com"
    COATCHECK_OIDC_CLIENT_ID = "archive"   # the secret: env COATCHECK_OIDC_CLIENT_SECRET

The relying party is the synchronous :class:`~coatcheck._sync.oidc.flow.OIDCFlow`, the one
every WSGI app uses, working on the request session that coatcheck's ``SessionMiddleware``
bound to ``request.session``. The middleware answers, before URL resolution and any view:

* the back-channel logout path, without session machinery (no store call for a session, no
  cookie) and without CSRF check: the provider posts it server to server;
* the relying party's pages (login, callback, logout, logged-out, ended); the logout POST
  passes the same CSRF check as any view (:func:`~coatcheck.django.middleware.csrf_refusal`);
* for every other request, the silent refresh of an expiring access token before the view
  (or the ended page, a 401 or a 503 instead of the view).

With ``django.contrib.auth`` installed, an OIDC login is a Django login: the identity is
passed to ``django.contrib.auth.authenticate(oidc_identity=..., oidc_username=...)``, whose
backend (:class:`OIDCBackend`, or your subclass) finds or creates the user; the coatcheck
session's user id is that user's primary key, the session carries Django's auth keys, and
``user_logged_in`` is sent. Without it, the coatcheck session's user id is the ID token's
``user_id_claim``.
"""

from __future__ import annotations

import threading
from contextvars import ContextVar
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth import (
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    authenticate,
    get_user_model,
    load_backend,
)
from django.contrib.auth import SESSION_KEY as USER_SESSION_KEY
from django.contrib.auth import get_user as auth_user
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin

from .._sync.oidc.flow import OIDCFlow
from ..config.settings import OIDC_NAMES
from ..oidc.errors import OIDCConfigError
from ..oidc.models import Identity
from ..oidc.record import OIDC_KEY
from ..oidc.routes import NO_STORE, Reply
from ..oidc.settings import OIDCSettings, read_oidc_settings
from ..web.errors import WebError
from ..web.oidc import MAX_BACKCHANNEL_BODY
from ..web.wsgi import declared_length
from .adapt import request_info
from .conf import Config, get_config
from .middleware import bound_session, csrf_refusal
from .store import SessionStore

__all__ = ["OIDCBackend", "OIDCMiddleware", "access_token", "close_flow", "get_flow"]

_lock = threading.Lock()
_flow: tuple[Config, OIDCFlow] | None = None
# The Django user an OIDC login of this request authenticated (set inside the flow's login).
_authenticated: ContextVar[AbstractBaseUser | None] = ContextVar("coatcheck_oidc_user")


def oidc_settings() -> OIDCSettings:
    """The relying party's settings from the ``COATCHECK_OIDC_*`` Django settings (issuer,
    client id and secret also from the environment)."""
    given = {
        name: getattr(settings, name) for name in OIDC_NAMES.values() if hasattr(settings, name)
    }
    found = read_oidc_settings(given)
    if found is None:
        raise ImproperlyConfigured(
            "coatcheck.django.oidc.OIDCMiddleware needs COATCHECK_OIDC_ISSUER and "
            "COATCHECK_OIDC_CLIENT_ID (Django settings or the environment)"
        )
    return found


def get_flow() -> OIDCFlow:
    """The process's relying party, on the session manager of :func:`~coatcheck.django.conf.
    get_config` (made again when that configuration is: ``override_settings``,
    ``set_manager``)."""
    global _flow
    config = get_config()
    with _lock:
        if _flow is None or _flow[0] is not config:
            if _flow is not None:
                _flow[1].close()
            _flow = (config, DjangoOIDCFlow(config.manager, oidc_settings()))
        return _flow[1]


def close_flow() -> None:
    """Close the relying party's HTTP client to the provider (a new one is made on next use)."""
    global _flow
    with _lock:
        if _flow is not None:
            _flow[1].close()
        _flow = None


def django_users() -> bool:
    """Do OIDC logins become ``django.contrib.auth`` logins?"""
    return apps.is_installed("django.contrib.auth")


class DjangoOIDCFlow(OIDCFlow):
    """The relying party, its login naming a Django user when ``django.contrib.auth`` is
    installed."""

    def user_id_for(self, identity: Identity) -> str | None:
        username = super().user_id_for(identity)
        if username is None or not django_users():
            return username
        user = authenticate(None, oidc_identity=identity, oidc_username=username)
        if user is None:
            raise WebError(
                403,
                "login_refused",
                "The sign-in provider vouched for you, but this site has no active account "
                "for that identity.",
            )
        _authenticated.set(user)
        return user_key(user)


class OIDCBackend(ModelBackend):
    """Django users for OpenID Connect logins (``AUTHENTICATION_BACKENDS``).

    The user whose ``USERNAME_FIELD`` is the ID token's ``user_id_claim`` (``sub`` unless
    ``COATCHECK_OIDC_USER_ID_CLAIM`` says otherwise), created with an unusable password on
    the first login when ``create_unknown_users`` (the default). Inactive users are refused.
    Subclass and override :meth:`user_for` to map identities another way (an email claim,
    groups from ``identity.claims``, no creation). Permissions are ``ModelBackend``'s. It
    answers only ``authenticate(oidc_identity=..., oidc_username=...)``, which only the OIDC
    relying party calls: a password form can never reach it.
    """

    create_unknown_users = True

    def authenticate(  # type: ignore[override]  # its own credentials, not a password
        self,
        request: HttpRequest | None,
        oidc_identity: Identity | None = None,
        oidc_username: str | None = None,
        **kwargs: Any,
    ) -> AbstractBaseUser | None:
        if oidc_identity is None or oidc_username is None:
            return None
        user = self.user_for(oidc_username, oidc_identity)
        return user if user is not None and self.user_can_authenticate(user) else None

    def user_for(self, username: str, identity: Identity) -> AbstractBaseUser | None:
        """The user a login names (``username``: the user-id claim's value), or None."""
        model = get_user_model()
        # ``_default_manager`` is Django's documented way to a model's manager (ModelBackend).
        users = model._default_manager
        lookup: dict[str, Any] = {str(model.USERNAME_FIELD): username}
        if not self.create_unknown_users:
            return users.filter(**lookup).first()
        user, _ = users.get_or_create(**lookup, defaults={"password": make_password(None)})
        return user


class OIDCMiddleware(MiddlewareMixin):
    """The relying party in front of the views (see the module); after coatcheck's
    ``SessionMiddleware`` in ``MIDDLEWARE``."""

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        store, state = bound_session(request, "coatcheck.django.oidc.OIDCMiddleware")
        flow = get_flow()
        oidc, info = flow.settings, state.request
        if info.path == oidc.backchannel_logout_path:
            return backchannel(flow, request)
        if state.exempt:
            return None
        leaving = None
        if info.path == oidc.logout_path and info.method.upper() == "POST":
            refused = csrf_refusal(request)
            if refused is not None:
                return refused
            if django_users():
                leaving = auth_user(request)  # for user_logged_out, before the session ends
        marker = _authenticated.set(None)
        try:
            reply = flow.handle(state)
            user = _authenticated.get()
        finally:
            _authenticated.reset(marker)
        if reply is None:
            store.adopt()
            return None
        if user is not None and state.session.user_id == user_key(user):  # the login went through
            _django_login(request, store, user)
        elif leaving is not None and leaving.is_authenticated:
            user_logged_out.send(sender=type(leaving), request=request, user=leaving)
            request.user = AnonymousUser()
        store.adopt()
        return as_response(reply)


def _django_login(request: HttpRequest, store: SessionStore, user: AbstractBaseUser) -> None:
    """What ``django.contrib.auth.login`` adds to a session, on the one the relying party just
    logged in (under a new token already: no second rotation)."""
    store.adopt()
    store[USER_SESSION_KEY] = user_key(user)
    store[BACKEND_SESSION_KEY] = str(getattr(user, "backend", ""))  # set by authenticate()
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    request.user = user
    user_logged_in.send(sender=type(user), request=request, user=user)


def user_key(user: AbstractBaseUser) -> str:
    """The user's primary key as ``django.contrib.auth`` keeps it in the session: also the
    coatcheck session's user id."""
    return str(user._meta.pk.value_to_string(user))


def backchannel(flow: OIDCFlow, request: HttpRequest) -> HttpResponse:
    """The provider's logout token: no session and no CSRF check (server to server)."""
    if declared_length(request.META) > MAX_BACKCHANNEL_BODY:
        return as_response(Reply(413, [NO_STORE]))
    return as_response(flow.backchannel_logout(request_info(request), request.body))


def as_response(reply: Reply) -> HttpResponse:
    response = HttpResponse(reply.body, status=reply.status)
    for name, value in reply.headers:
        response[name] = value
    return response


def access_token(request: HttpRequest) -> str | None:
    """The provider's access token of this request's session (renewed before the view ran if
    it was expiring), or None when the session did not log in through OpenID Connect. For
    calls to APIs that accept the provider's tokens; never put it in a page or a URL."""
    record = request.session.get(OIDC_KEY)
    token = record.get("access_token") if isinstance(record, dict) else None
    return token if isinstance(token, str) else None


def check_oidc() -> list[str]:
    """Configuration mistakes of an OIDC project, for ``manage.py check``."""
    problems = []
    try:
        oidc_settings()
    except (ImproperlyConfigured, OIDCConfigError) as exc:
        problems.append(str(exc))
    if django_users() and not any(
        _takes_identity(path) for path in settings.AUTHENTICATION_BACKENDS
    ):
        problems.append(
            "OIDCMiddleware with django.contrib.auth needs an authentication backend for OIDC "
            "logins in AUTHENTICATION_BACKENDS: 'coatcheck.django.oidc.OIDCBackend' (or a "
            "subclass)"
        )
    return problems


def _takes_identity(path: str) -> bool:
    try:
        backend = load_backend(path)
    except ImportError:
        return False
    return isinstance(backend, OIDCBackend)
