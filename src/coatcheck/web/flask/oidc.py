"""OpenID Connect for Flask: ``CoatCheck(app, oidc=True)`` (docs/web/flask.md).

The relying party is the synchronous :class:`~coatcheck._sync.oidc.flow.OIDCFlow`, the one
every WSGI app uses; this module only puts it where Flask looks:

* one ``before_request`` hook, right after the extension's own (refusals and the CSRF check),
  answers the relying party's pages (login, callback, logout, logged-out, ended) and, for any
  other request, renews an expiring access token before the application's hooks and views
  run (or answers with the ended page, a 401 or a 503 instead);
* the back-channel logout path is exempt from sessions (no cookie, no store call, no CSRF
  check: the provider posts it server to server) and answered by the same hook;
* :func:`oidc_access_token` gives a view the (fresh) access token.

Needs ``coatcheck[oidc]``; imported only when the extension is asked for OIDC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import flask
from flask.wrappers import Response

from ..._sync.oidc.flow import OIDCFlow
from ..._sync.oidc.provider import OIDCProvider
from ...config.settings import LOGIN_URL
from ...oidc.errors import OIDCConfigError
from ...oidc.record import OIDC_KEY
from ...oidc.routes import NO_STORE, Reply
from ...oidc.settings import OIDCSettings, read_oidc_settings
from ..backend import SessionBackend
from ..oidc import MAX_BACKCHANNEL_BODY
from ..settings import WebSettings
from ..wsgi import read_body
from .responses import check_request, current_session, flask_session

OIDC_EXTENSION_KEY = "coatcheck.oidc"  # app.extensions[...]: the app's OIDCFlow


def oidc_settings(app: flask.Flask, given: OIDCSettings | bool) -> OIDCSettings:
    """The relying party's settings: ``given``, or the ``COATCHECK_OIDC_*`` keys of
    ``app.config`` (issuer, client id and secret also from the environment)."""
    if isinstance(given, OIDCSettings):
        return given
    found = read_oidc_settings(app.config)
    if found is None:
        raise OIDCConfigError(
            "CoatCheck(oidc=True) needs COATCHECK_OIDC_ISSUER and COATCHECK_OIDC_CLIENT_ID in "
            "app.config or the environment (or pass oidc=OIDCSettings(...))"
        )
    return found


def web_settings_for(
    app: flask.Flask, settings: WebSettings, oidc: OIDCSettings, read_from_config: bool
) -> WebSettings:
    """The extension's web settings with OIDC: the back-channel path exempt from sessions, and
    (for settings read from the config without ``COATCHECK_LOGIN_URL``) the login guards
    sending browsers to the OIDC login."""
    exempt = (*settings.exempt_paths, oidc.backchannel_logout_path)
    settings = replace(settings, exempt_paths=exempt)
    if read_from_config and not app.config.get(LOGIN_URL):
        settings = replace(settings, login_url=oidc.login_path)
    return settings


def install(
    app: flask.Flask,
    manager: SessionBackend,
    oidc: OIDCSettings,
    provider: OIDCProvider | None,
) -> OIDCFlow:
    """Make the app's relying party (``OIDCConfigError`` in sealed-cookie mode) and add its
    hook after the extension's first one."""
    flow = OIDCFlow(manager, oidc, provider=provider)
    previous = app.extensions.get(OIDC_EXTENSION_KEY)
    if isinstance(previous, OIDCFlow):
        previous.close()
    app.extensions[OIDC_EXTENSION_KEY] = flow
    hooks = app.before_request_funcs.setdefault(None, [])
    if relying_party not in hooks:  # right after the extension's refusals and CSRF check
        first = hooks.index(check_request) + 1 if check_request in hooks else 0
        hooks.insert(first, relying_party)
    return flow


def flow_of(app: flask.Flask) -> OIDCFlow:
    """The relying party installed on ``app``."""
    found = app.extensions.get(OIDC_EXTENSION_KEY)
    if not isinstance(found, OIDCFlow):
        raise RuntimeError("OpenID Connect is not installed on this app: CoatCheck(app, oidc=...)")
    return found


def relying_party() -> Response | None:
    """The ``before_request`` hook: the back-channel logout, the relying party's pages, or the
    silent refresh before the application; None lets the request through."""
    flow = flow_of(flask.current_app)
    session = flask_session()
    if session is None or session.refusal is not None:
        return None  # answered by the extension's own hook
    if session.info.path == flow.settings.backchannel_logout_path:
        return _backchannel(flow)
    if session.state.exempt:
        return None
    reply = flow.handle(session.hand_over())
    return None if reply is None else as_response(reply)


def _backchannel(flow: OIDCFlow) -> Response:
    """No session machinery: the provider's POST carries no cookie and needs no CSRF check."""
    body = read_body(flask.request.environ, MAX_BACKCHANNEL_BODY)
    if body is None:
        return as_response(Reply(413, [NO_STORE]))
    return as_response(flow.backchannel_logout(current_session().info, body))


def as_response(reply: Reply) -> Response:
    response: Response = flask.current_app.response_class(
        reply.body, status=reply.status, headers=reply.headers
    )
    return response


def oidc_access_token() -> str | None:
    """The provider's access token of this request's session (renewed before the view ran if
    it was expiring), or None when the session did not log in through OpenID Connect. For
    calls to APIs that accept the provider's tokens; never put it in a page or a URL."""
    return access_token_of(current_session().state.get(OIDC_KEY))


def access_token_of(record: Any) -> str | None:
    token = record.get("access_token") if isinstance(record, Mapping) else None
    return token if isinstance(token, str) else None
