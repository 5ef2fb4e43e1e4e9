"""OpenID Connect login for any WSGI application, in one call (docs/oidc.md)::

    app = with_oidc(app, build_backend(), OIDCSettings(issuer=..., client_id=...))

The same stack as :mod:`coatcheck.web.oidc`, on the synchronous face (the generated
:class:`~coatcheck._sync.oidc.flow.OIDCFlow` and :class:`~coatcheck.oidc.OIDCProvider`):
the back-channel logout endpoint outside any session machinery, then coatcheck's WSGI
:class:`~coatcheck.web.wsgi.SessionMiddleware`, then the relying party's pages and silent
refresh, then the application. A refresh holds its lease while a helper thread renews it.
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus

from .._sync.oidc.flow import OIDCFlow
from .._sync.oidc.provider import OIDCProvider
from .._sync.web.bearer import BearerVerifier
from .._sync.web.handler import RequestSession
from ..oidc.routes import Reply
from ..oidc.settings import OIDCSettings
from .backend import SessionBackend
from .oidc import MAX_BACKCHANNEL_BODY, warn_of_strict_cookies
from .settings import WebSettings
from .wsgi import ENVIRON_KEY, Environ, SessionMiddleware, StartResponse, WSGIApp, read_body
from .wsgi import request_from_environ as request_of


class OIDCWSGIApp:
    """``app`` behind sessions and OpenID Connect login, refresh and logouts (see the module);
    the arguments as for :class:`coatcheck.web.oidc.OIDCApp`, on the synchronous face.
    ``flow`` is the relying party (:meth:`close` closes the provider's HTTP client if it was
    made here)."""

    def __init__(
        self,
        app: WSGIApp,
        backend: SessionBackend,
        settings: OIDCSettings,
        web_settings: WebSettings | None = None,
        *,
        provider: OIDCProvider | None = None,
        bearer: BearerVerifier | bool = True,
    ) -> None:
        self.app = app
        self.flow = OIDCFlow(backend, settings, provider=provider)
        self.backchannel_path = settings.backchannel_logout_path
        web_settings = web_settings or WebSettings(login_url=settings.login_path)
        warn_of_strict_cookies(web_settings)
        self.sessions = SessionMiddleware(self._relying_party, backend, web_settings, bearer=bearer)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        request = request_of(environ)
        if request.path == self.backchannel_path:
            body = read_body(environ, MAX_BACKCHANNEL_BODY)
            if body is None:
                return respond(start_response, Reply(413, [("cache-control", "no-store")]))
            return respond(start_response, self.flow.backchannel_logout(request, body))
        return self.sessions(environ, start_response)

    def close(self) -> None:
        self.flow.close()

    def _relying_party(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        state = environ.get(ENVIRON_KEY)
        if not isinstance(state, RequestSession):  # an exempt path
            return self.app(environ, start_response)
        reply = self.flow.handle(state)
        if reply is None:
            return self.app(environ, start_response)
        return respond(start_response, reply)


with_oidc = OIDCWSGIApp
"""``with_oidc(app, backend, settings, web_settings=None, *, provider=None, bearer=True)``:
the whole stack (:class:`OIDCWSGIApp`)."""


def respond(start_response: StartResponse, reply: Reply) -> list[bytes]:
    status = HTTPStatus(reply.status)
    start_response(f"{status.value} {status.phrase}", reply.with_length())
    return [reply.body]
