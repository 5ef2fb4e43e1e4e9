"""The extension: ``CoatCheck(app)`` reads the app's ``COATCHECK_*`` config and installs the
session interface, the request hook, error pages and template globals."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import flask

from ..._sync.web.bearer import BearerVerifier
from ...config import read_settings
from ...core.errors import ConfigError, StoreUnavailable
from ...core.policy import Policy
from ..backend import SessionBackend, build_backend
from ..errors import WebError
from ..settings import WebSettings
from .helpers import csrf_token, get_flashed_messages
from .interface import CoatCheckSessionInterface
from .responses import check_request, store_error_response, web_error_response

if TYPE_CHECKING:
    from ..._sync.oidc.flow import OIDCFlow
    from ..._sync.oidc.provider import OIDCProvider
    from ...oidc.settings import OIDCSettings

EXTENSION_KEY = "coatcheck"


def settings_from_config(app: flask.Flask) -> WebSettings:
    """The web settings a Flask app's ``COATCHECK_*`` config keys describe (see
    :mod:`coatcheck.config`). Flask's static files are exempt by default: they never need a
    session."""
    return WebSettings.from_settings(read_settings(app.config), default_exempt=_static_exempt(app))


def policy_from_config(app: flask.Flask) -> Policy:
    """The session policy a Flask app's ``COATCHECK_*`` config keys describe."""
    return read_settings(app.config).policy


def _static_exempt(app: flask.Flask) -> tuple[str, ...]:
    static = app.static_url_path if app.has_static_folder else None
    return (static,) if static and static != "/" else ()


def _instance_store(app: flask.Flask) -> str:
    """A SQLite file in the app's instance folder: the store when none is configured."""
    os.makedirs(app.instance_path, exist_ok=True)
    return f"sqlite:///{os.path.join(app.instance_path, 'coatcheck.db')}"


class CoatCheck:
    """Server-side sessions for a Flask app: ``CoatCheck(app)`` or ``init_app(app)`` later.

    Give either a ready ``manager`` (you own and close it; inject a ``FakeClock`` into it in
    tests) or let the extension build one from ``store_url`` (default: ``COATCHECK_STORE_URL``
    in the config or the environment, else ``<instance folder>/coatcheck.db``) and ``policy``
    (default: the ``COATCHECK_*`` policy keys). ``settings`` replaces every ``COATCHECK_*``
    web key at once. Objects passed here win over config keys; the keys are read by
    :func:`coatcheck.config.read_settings`, as every adapter reads them. ``bearer``:
    ``Authorization: Bearer`` API tokens on requests without a session cookie (True: the
    manager's own store; False: ignored; or a verifier; docs/api-tokens.md).

    ``oidc``: log in through an OpenID Provider (docs/web/flask.md, "OpenID Connect"): True
    reads the ``COATCHECK_OIDC_*`` keys of ``app.config``, or pass an ``OIDCSettings``;
    ``oidc_provider`` is an ``OIDCProvider`` of your own (you close it). Needs server-side
    sessions: sealed-cookie mode raises ``OIDCConfigError``.
    """

    def __init__(
        self,
        app: flask.Flask | None = None,
        *,
        store_url: str | None = None,
        manager: SessionBackend | None = None,
        policy: Policy | None = None,
        settings: WebSettings | None = None,
        bearer: BearerVerifier | bool = True,
        oidc: OIDCSettings | bool = False,
        oidc_provider: OIDCProvider | None = None,
    ) -> None:
        if manager is not None and (store_url is not None or policy is not None):
            raise ConfigError("CoatCheck takes either manager= or store_url=/policy=, not both")
        self.app = app
        self._store_url = store_url
        self._manager = manager
        self._policy = policy
        self._settings = settings
        self._bearer = bearer
        self._oidc = oidc
        self._oidc_provider = oidc_provider
        if app is not None:
            self.init_app(app)

    def init_app(self, app: flask.Flask) -> None:
        """Install the session interface, the CSRF check, error pages and template helpers."""
        read = read_settings(app.config)
        settings = self._settings
        if settings is None:
            settings = WebSettings.from_settings(read, default_exempt=_static_exempt(app))
        if self._oidc is not False:
            from . import oidc  # the extra is needed only when asked for

            relying_party = oidc.oidc_settings(app, self._oidc)
            settings = oidc.web_settings_for(
                app, settings, relying_party, read_from_config=self._settings is None
            )
        manager = self._manager
        if manager is None:
            url = self._store_url or read.store_url
            if url is None and read.session_mode == "server":
                url = _instance_store(app)
            manager = build_backend(
                read, store_url=url, policy=self._policy, cookie=settings.cookie
            )
        interface = CoatCheckSessionInterface(
            manager, settings, loopback_development=read.loopback_development, bearer=self._bearer
        )
        app.session_interface = interface
        app.extensions[EXTENSION_KEY] = interface
        # First of all hooks: a refused or forged request must not reach the app's own hooks.
        hooks = app.before_request_funcs.setdefault(None, [])
        if check_request not in hooks:
            hooks.insert(0, check_request)
        if self._oidc is not False:
            oidc.install(app, manager, relying_party, self._oidc_provider)
        app.register_error_handler(WebError, web_error_response)
        app.register_error_handler(StoreUnavailable, store_error_response)
        app.add_template_global(csrf_token, "csrf_token")
        app.add_template_global(get_flashed_messages, "get_flashed_messages")

    def interface(self, app: flask.Flask | None = None) -> CoatCheckSessionInterface:
        """The installed interface of ``app`` (default: this extension's app, or current_app)."""
        found = self._target(app).extensions.get(EXTENSION_KEY)
        if not isinstance(found, CoatCheckSessionInterface):
            raise RuntimeError("CoatCheck is not installed on this app: call init_app(app)")
        return found

    @property
    def manager(self) -> SessionBackend:
        return self.interface().manager

    @property
    def settings(self) -> WebSettings:
        return self.interface().settings

    def oidc(self, app: flask.Flask | None = None) -> OIDCFlow:
        """The relying party of ``app`` (default: this extension's app, or current_app): its
        ``settings``, and ``close()`` for the provider's HTTP client it made."""
        from .oidc import flow_of

        return flow_of(self._target(app))

    def _target(self, app: flask.Flask | None) -> flask.Flask:
        target = app if app is not None else self.app
        return target if target is not None else flask.current_app
