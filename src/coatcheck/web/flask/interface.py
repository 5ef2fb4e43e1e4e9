"""Flask's session hook: which handler serves a request, and the one save at its end."""

from __future__ import annotations

from dataclasses import replace

import flask
from flask.sessions import SessionInterface, SessionMixin
from flask.wrappers import Request, Response

from ..._sync.web.bearer import BearerVerifier, local_verifier
from ..._sync.web.handler import RequestSession, SessionHandler
from ...cookies import development, host_is_loopback
from .. import caching
from ..backend import SessionBackend
from ..errors import WebError
from ..settings import WebSettings
from ..wsgi import request_from_environ
from .responses import add_headers, replace_response
from .session import ENVIRON_KEY, FlaskSession


class CoatCheckSessionInterface(SessionInterface):
    """Flask's session hook: a lazy :class:`FlaskSession` per request, saved once.

    With ``loopback_development`` a plain-``http`` request to 127.0.0.1/localhost/::1 gets the
    development cookie (no ``Secure``, no prefix) and every other request the secure one, so
    one app runs both on a laptop and behind TLS. ``bearer``: ``Authorization: Bearer`` API
    tokens on requests without a session cookie (True: checked in the manager's own store;
    False: ignored; or a verifier of your own).
    """

    def __init__(
        self,
        manager: SessionBackend,
        settings: WebSettings | None = None,
        *,
        loopback_development: bool = False,
        bearer: BearerVerifier | bool = True,
    ) -> None:
        self.manager = manager
        self.settings = settings or WebSettings()
        self.loopback_development = loopback_development and not self.settings.cookie.loopback_only
        # One handler per cookie flavour: (development cookie?, persistent cookie?).
        self._handlers: dict[tuple[bool, bool], SessionHandler] = {}
        verifier = local_verifier(manager) if bearer is True else bearer
        for local in (False, True) if self.loopback_development else (False,):
            for persistent in (False, True):
                cookie = replace(self.settings.cookie, persistent=persistent)
                if local:
                    cookie = development(cookie, name=_development_name(cookie.name))
                self._handlers[local, persistent] = SessionHandler(
                    manager, replace(self.settings, cookie=cookie), bearer=verifier or False
                )

    def handler(self, *, local: bool = False, persistent: bool | None = None) -> SessionHandler:
        """The handler for a cookie flavour (default: the configured persistence)."""
        if persistent is None:
            persistent = self.settings.cookie.persistent
        return self._handlers[local and self.loopback_development, persistent]

    def open_session(self, app: flask.Flask, request: Request) -> FlaskSession:
        """No I/O: the cookie is read, the store is asked only when the session is used."""
        info = request_from_environ(request.environ)
        local = self.loopback_development and info.scheme == "http" and host_is_loopback(info.host)
        try:
            state: RequestSession | None = self.handler(local=local).begin(info)
            refusal = None
        except WebError as error:  # answered by the first before_request hook
            state, refusal = None, error
        session = FlaskSession(self, info, state, local=local, refusal=refusal)
        request.environ[ENVIRON_KEY] = session
        return session

    def save_session(self, app: flask.Flask, session: SessionMixin, response: Response) -> None:
        """Save once; add the session's headers, or turn the response into the refusal."""
        if not isinstance(session, FlaskSession):
            return
        state = session._state  # the attribute, not a property: this runs per request
        if state is not None and state.loaded and state.user_id is not None:
            # A logged-in response gets no-store unless its view is marked @cacheable.
            view = app.view_functions.get(flask.request.endpoint or "")
            if caching.is_cacheable(view):
                state.cacheable = True
        try:
            headers = session.finish()
        except WebError as error:
            replace_response(response, error, session.info)
            return
        add_headers(response, headers)


def _development_name(name: str) -> str:
    """The development cookie's name: the secure name without its ``__Host-``/``__Secure-``
    prefix (both need ``Secure``), so apps with distinct names stay distinct in development."""
    for prefix in ("__Host-", "__Secure-"):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name
