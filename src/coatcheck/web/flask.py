"""Flask: an extension that replaces ``flask.session`` with coatcheck's server-side session.

::

    app = Flask(__name__)
    app.config["COATCHECK_STORE_URL"] = "redis://127.0.0.1:6379/0"
    CoatCheck(app)

    @app.post("/login")
    def do_login():
        ...  # check the password
        login(user.id)  # a new token; the anonymous session is destroyed, not promoted
        return redirect("/me", 303)

    @app.get("/me")
    @login_required
    def me():
        return {"user": current_session().user_id, "theme": session.get("theme")}

``flask.session`` stays a dict (``flask.flash`` included) for code written for Flask's cookie
session or Flask-Session. Underneath is the shared :class:`SessionHandler`, so Flask behaves like
every other coatcheck app: nothing is read from the store until the session is first used, what
the request changed is saved once when Flask saves the session, and refusals (store down,
session ended, CSRF, conflicting cookies) become clear 4xx/5xx answers, never a traceback page.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any, TypeVar, cast

from .._extras import missing_extra

try:
    import flask
    from flask.sessions import SessionInterface, SessionMixin
    from flask.wrappers import Request, Response
except ModuleNotFoundError as exc:
    raise missing_extra("flask", "coatcheck.web.flask needs Flask", exc) from exc

from ..config import flag, policy_from, web_settings_from
from ..cookies import development, host_is_loopback
from ..core.errors import ConfigError, SessionGone, StoreUnavailable
from ..core.policy import Policy
from ..core.records import encode_value
from ..stores import STORE_URL_ENV
from . import caching, csrf, guards
from ._sync.handler import FormState, RequestSession, SessionHandler
from .backend import SessionBackend, build_backend
from .caching import cacheable
from .errors import WebError, store_unavailable
from .request import RequestInfo
from .settings import WebSettings
from .wsgi import request_from_environ

__all__ = [
    "CoatCheck",
    "CoatCheckSessionInterface",
    "FlaskSession",
    "cacheable",
    "csrf_token",
    "current_session",
    "flash",
    "fresh_login_required",
    "get_flashed_messages",
    "login",
    "login_required",
    "logout",
    "logout_other_sessions",
    "logout_session",
    "policy_from_config",
    "settings_from_config",
]

EXTENSION_KEY = "coatcheck"
ENVIRON_KEY = "coatcheck.flask_session"
PERMANENT_KEY = "_permanent"  # where Flask's SessionMixin keeps ``session.permanent``

F = TypeVar("F", bound=Callable[..., Any])


# -- configuration ----------------------------------------------------------------------------


def settings_from_config(app: flask.Flask) -> WebSettings:
    """The web settings a Flask app's ``COATCHECK_*`` config keys describe (see
    :mod:`coatcheck.config`). Flask's static files are exempt by default: they never need a
    session."""
    static = app.static_url_path if app.has_static_folder else None
    return web_settings_from(
        app.config, default_exempt=(static,) if static and static != "/" else ()
    )


def policy_from_config(app: flask.Flask) -> Policy:
    """The session policy a Flask app's ``COATCHECK_*`` config keys describe."""
    return policy_from(app.config)


def _store_url(app: flask.Flask) -> str:
    """Config, then the environment, then a SQLite file in the app's instance folder."""
    url = app.config.get("COATCHECK_STORE_URL") or os.environ.get(STORE_URL_ENV)
    if url:
        return str(url)
    os.makedirs(app.instance_path, exist_ok=True)
    return f"sqlite:///{os.path.join(app.instance_path, 'coatcheck.db')}"


def _development_name(name: str) -> str:
    """The development cookie's name: the secure name without its ``__Host-``/``__Secure-``
    prefix (both need ``Secure``), so apps with distinct names stay distinct in development."""
    for prefix in ("__Host-", "__Secure-"):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


# -- the extension ----------------------------------------------------------------------------


class CoatCheck:
    """Server-side sessions for a Flask app: ``CoatCheck(app)`` or ``init_app(app)`` later.

    Give either a ready ``manager`` (you own and close it; inject a ``FakeClock`` into it in
    tests) or let the extension build one from ``store_url`` (default: ``COATCHECK_STORE_URL``
    in the config or the environment, else ``<instance folder>/coatcheck.db``) and ``policy``
    (default: the ``COATCHECK_*`` timeout keys). ``settings`` replaces every ``COATCHECK_*``
    web key at once. Objects passed here win over config keys.
    """

    def __init__(
        self,
        app: flask.Flask | None = None,
        *,
        store_url: str | None = None,
        manager: SessionBackend | None = None,
        policy: Policy | None = None,
        settings: WebSettings | None = None,
    ) -> None:
        if manager is not None and (store_url is not None or policy is not None):
            raise ConfigError("CoatCheck takes either manager= or store_url=/policy=, not both")
        self.app = app
        self._store_url = store_url
        self._manager = manager
        self._policy = policy
        self._settings = settings
        if app is not None:
            self.init_app(app)

    def init_app(self, app: flask.Flask) -> None:
        """Install the session interface, the CSRF check, error pages and template helpers."""
        manager = self._manager
        settings = self._settings if self._settings is not None else settings_from_config(app)
        if manager is None:
            mode = app.config.get("COATCHECK_SESSION_MODE")
            url = self._store_url or app.config.get("COATCHECK_STORE_URL")
            manager = build_backend(
                mode=mode,
                store_url=url or (None if mode == "sealed" else _store_url(app)),
                policy=self._policy if self._policy is not None else policy_from_config(app),
                cookie=settings.cookie,
                sealed_keys=app.config.get("COATCHECK_SEALED_KEYS"),
                opened_cache=app.config.get("COATCHECK_SEALED_CACHE"),
                token_key=app.config.get("COATCHECK_TOKEN_KEY"),
            )
        interface = CoatCheckSessionInterface(
            manager,
            settings,
            loopback_development=flag(app.config, "COATCHECK_LOOPBACK_DEVELOPMENT", False),
        )
        app.session_interface = interface
        app.extensions[EXTENSION_KEY] = interface
        # First of all hooks: a refused or forged request must not reach the app's own hooks.
        hooks = app.before_request_funcs.setdefault(None, [])
        if _check_request not in hooks:
            hooks.insert(0, _check_request)
        app.register_error_handler(WebError, _web_error_response)
        app.register_error_handler(StoreUnavailable, _store_error_response)
        app.add_template_global(csrf_token, "csrf_token")
        app.add_template_global(get_flashed_messages, "get_flashed_messages")

    def interface(self, app: flask.Flask | None = None) -> CoatCheckSessionInterface:
        """The installed interface of ``app`` (default: this extension's app, or current_app)."""
        target = app if app is not None else self.app
        found = (target if target is not None else flask.current_app).extensions.get(EXTENSION_KEY)
        if not isinstance(found, CoatCheckSessionInterface):
            raise RuntimeError("CoatCheck is not installed on this app: call init_app(app)")
        return found

    @property
    def manager(self) -> SessionBackend:
        return self.interface().manager

    @property
    def settings(self) -> WebSettings:
        return self.interface().settings


class CoatCheckSessionInterface(SessionInterface):
    """Flask's session hook: a lazy :class:`FlaskSession` per request, saved once.

    With ``loopback_development`` a plain-``http`` request to 127.0.0.1/localhost/::1 gets the
    development cookie (no ``Secure``, no prefix) and every other request the secure one, so
    one app runs both on a laptop and behind TLS.
    """

    def __init__(
        self,
        manager: SessionBackend,
        settings: WebSettings | None = None,
        *,
        loopback_development: bool = False,
    ) -> None:
        self.manager = manager
        self.settings = settings or WebSettings()
        self.loopback_development = loopback_development and not self.settings.cookie.loopback_only
        # One handler per cookie flavour: (development cookie?, persistent cookie?).
        self._handlers: dict[tuple[bool, bool], SessionHandler] = {}
        for local in (False, True) if self.loopback_development else (False,):
            for persistent in (False, True):
                cookie = replace(self.settings.cookie, persistent=persistent)
                if local:
                    cookie = development(cookie, name=_development_name(cookie.name))
                self._handlers[local, persistent] = SessionHandler(
                    manager, replace(self.settings, cookie=cookie)
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
        state = session._state
        if state is not None and state.loaded and state.user_id is not None:
            # A logged-in response gets no-store unless its view is marked @cacheable.
            view = app.view_functions.get(flask.request.endpoint or "")
            if caching.is_cacheable(view):
                state.cacheable = True
        try:
            headers = session.finish()
        except WebError as error:
            _replace_response(response, error, session.info)
            return
        _add_headers(response, headers)


# -- the session object -----------------------------------------------------------------------


class FlaskSession(SessionMixin):
    """``flask.session``: a dict over coatcheck's :class:`RequestSession`, plus its extras.

    Reads load the session from the store on first use; writes are validated as JSON on the
    spot and saved once, when Flask saves the session. Lists and dicts read from the session
    may be changed in place (``session["cart"].append(x)``): the change is detected and saved,
    so ``session.modified = True`` is accepted but never needed.
    """

    def __init__(
        self,
        interface: CoatCheckSessionInterface,
        info: RequestInfo,
        state: RequestSession | None,
        *,
        local: bool = False,
        refusal: WebError | None = None,
    ) -> None:
        self.interface = interface
        self.info = info
        self.refusal = refusal
        self.accessed = False
        self._state = state
        self._local = local
        self._values: dict[str, Any] = {}  # lists/dicts handed out, to detect in-place changes
        self._encoded: dict[str, str] = {}  # ... and their JSON when handed out
        self._permanent_changed = False
        self._flashes: list[tuple[str, str]] | None = None
        self._finished = False

    # -- access -----------------------------------------------------------------------------

    @property
    def state(self) -> RequestSession:
        """The shared-core request session (raises the refusal of a refused request)."""
        if self._state is None:
            assert self.refusal is not None
            raise self.refusal
        return self._state

    def _writable(self) -> RequestSession:
        state = self.state
        if self._finished:
            raise RuntimeError(
                "the session was already saved for this response (headers are sent); "
                "changes made while streaming a response body cannot be saved"
            )
        return state

    def _remember(self, key: str, value: Any) -> None:
        if isinstance(value, dict | list):
            self._values[key] = value
            self._encoded[key] = encode_value(key, value)
        else:
            self._values.pop(key, None)
            self._encoded.pop(key, None)

    def _forget_values(self) -> None:
        self._values.clear()
        self._encoded.clear()

    def _flush(self) -> None:
        """Record lists/dicts that were changed in place since they were handed out."""
        if self._state is None:
            return
        for key, before in list(self._encoded.items()):
            value = self._values[key]
            now = encode_value(key, value)
            if now != before:
                self._state[key] = value
                self._encoded[key] = now

    # -- the mapping ------------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        if key in self._values:
            return self._values[key]
        if self._state is None:
            raise KeyError(key)
        value = self._state[key]
        self._remember(key, value)
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        self._writable()[key] = value
        self._remember(key, value)

    def __delitem__(self, key: str) -> None:
        del self._writable()[key]
        self._values.pop(key, None)
        self._encoded.pop(key, None)

    def __iter__(self) -> Iterator[str]:
        return iter(()) if self._state is None else iter(self._state)

    def __len__(self) -> int:
        return 0 if self._state is None else len(self._state)

    def __contains__(self, key: object) -> bool:
        return self._state is not None and key in self._state

    def clear(self) -> None:
        """Forget everything. A logged-in session is logged out, since ``session.clear()`` is
        how Flask apps end a login; an anonymous one just loses its keys."""
        state = self._writable()
        if state.is_authenticated:
            self.logout()
            return
        self._forget_values()
        for key in list(state):
            del state[key]

    # -- Flask's session attributes ---------------------------------------------------------

    @property
    def permanent(self) -> bool:
        """A persistent cookie (``Max-Age``) for this session; defaults to
        ``COATCHECK_COOKIE_PERSISTENT``. Changing it re-issues the cookie (under a new token)."""
        default = self.interface.settings.cookie.persistent
        if self._state is None:
            return default
        return bool(self._state.get(PERMANENT_KEY, default))

    @permanent.setter
    def permanent(self, value: bool) -> None:
        if bool(value) != self.permanent:
            self[PERMANENT_KEY] = bool(value)
            self._permanent_changed = True

    @property
    def modified(self) -> bool:
        """True when this request has changes to save (in-place changes included)."""
        state = self._state
        if state is None or not state.loaded:
            return False
        if state.session.modified:
            return True
        return any(encode_value(k, self._values[k]) != v for k, v in self._encoded.items())

    @modified.setter
    def modified(self, value: bool) -> None:
        """Accepted for Flask compatibility: in-place changes are detected without it."""

    @property
    def new(self) -> bool:
        """True until the session exists in the store."""
        return self._state is None or self._state.is_new

    @new.setter
    def new(self, value: bool) -> None:
        """Ignored: whether a session is new is the store's answer, not the app's."""

    # -- who is this (the shared core's answers) ---------------------------------------------

    @property
    def user_id(self) -> str | None:
        return self.state.user_id

    @property
    def is_authenticated(self) -> bool:
        return self.state.is_authenticated

    @property
    def authenticated_at(self) -> float | None:
        return self.state.authenticated_at

    @property
    def expired_reason(self) -> str | None:
        """Why the presented cookie was not accepted (``expired_idle``, ``expired_absolute``,
        ``ip_mismatch``, ``unknown``), or None."""
        return self.state.expired_reason

    @property
    def is_new(self) -> bool:
        return self.state.is_new

    # -- lifecycle --------------------------------------------------------------------------

    def login(self, user_id: str, *, carry: Collection[str] = (), remember: bool = False) -> None:
        """Log in under a new token; the anonymous session dies, only ``carry`` keys move
        (``session.permanent`` always moves: it is a cookie attribute, not data).
        ``remember=True``: "remember me" (the policy's remember limits, a persistent cookie
        whatever ``session.permanent`` says)."""
        state = self._writable()
        self._flush()
        keys = (carry,) if isinstance(carry, str) else tuple(carry)
        state.login(user_id, carry=(*keys, PERMANENT_KEY), remember=remember)
        self._forget_values()

    def rotate(self, *, reauthenticated: bool = False) -> None:
        """A new token for the same user and data (privilege change, step-up login)."""
        state = self._writable()
        self._flush()
        state.rotate(reauthenticated=reauthenticated)

    def logout(self) -> None:
        """End the session server-side. The response expires the cookie and sends
        ``Clear-Site-Data``, unless the request goes on to store something (a flash, a new
        login): that goes into a fresh session under a new cookie."""
        self._writable().logout()
        self._forget_values()

    def logout_other_sessions(self) -> int:
        """End every other session of this user; returns how many."""
        return self._writable().logout_other_sessions()

    def logout_session(self, public_id: str) -> bool:
        """End one of this user's own sessions by its public id (a "your sessions" page);
        False if the user has no such session. The current one's id is a :meth:`logout`."""
        state = self._writable()
        ended = state.logout_session(public_id)
        if state.ended:
            self._forget_values()
        return ended

    def flash(self, message: str, category: str = "message") -> None:
        """A read-once message for the next page (one key per message: concurrency-safe)."""
        self._writable().flash(message, category)

    def pop_flashes(self) -> list[tuple[str, str]]:
        """This request's coatcheck flash messages as (category, message); read once, the
        same list on every call within the request."""
        if self._flashes is None:
            self._flashes = [] if self._state is None else self._state.pop_flashes()
        return self._flashes

    def form_state(self, name: str) -> FormState:
        """Per-form (wizard) state kept across requests until ``complete()``."""
        return self._writable().form_state(name)

    def csrf_token(self) -> str:
        """This session's synchronizer token for forms (created on first use)."""
        return self._writable().csrf_token()

    def finish(self) -> list[tuple[str, str]]:
        """Save what this request changed (once) and return the headers the response needs.

        Raises WebError (503 store down, 409 session ended, 400 conflicting cookies)."""
        state = self._state
        if state is None or self._finished:
            return []
        self._finished = True
        persistent = None
        if state.loaded:
            self._flush()
            persistent = self.permanent
            if self._permanent_changed:
                self._reissue(state)
        handler = self.interface.handler(local=self._local, persistent=persistent)
        return handler.finish(state)

    def _reissue(self, state: RequestSession) -> None:
        """A changed ``permanent`` needs a new Set-Cookie; the token is only known when it is
        issued, so a stored session gets one by rotation (same user, data and lifetime)."""
        session = state.session
        if state.ended or state.conflict or session.is_new or session.token is not None:
            return
        try:
            state.rotate()
        except StoreUnavailable as exc:
            raise store_unavailable(exc) from exc
        except SessionGone:
            pass  # ended meanwhile: finish() answers 409 when it tries to save

    def __repr__(self) -> str:
        inner = repr(self._state) if self._state is not None else f"refused: {self.refusal}"
        return f"<FlaskSession {inner}>"


# -- request hooks, responses -----------------------------------------------------------------


def _flask_session() -> FlaskSession | None:
    found = flask.request.environ.get(ENVIRON_KEY)
    return found if isinstance(found, FlaskSession) else None


def current_session() -> FlaskSession:
    """This request's session, typed, with coatcheck's extras (``user_id``, ``login`` ...)."""
    found = _flask_session()
    if found is None:
        raise RuntimeError(
            "no coatcheck session in this request: install the extension with CoatCheck(app)"
        )
    return found


def error_response(error: WebError, info: RequestInfo | None = None) -> Response:
    """The core's rendering of a refusal (JSON or HTML by ``Accept``) as a Flask response."""
    if info is None:
        found = _flask_session()
        info = found.info if found is not None else request_from_environ(flask.request.environ)
    status, headers, body = error.render(info)
    return flask.current_app.response_class(body, status=status, headers=headers)


def _web_error_response(error: WebError) -> Response:
    return error_response(error)


def _store_error_response(error: StoreUnavailable) -> Response:
    return error_response(store_unavailable(error))


def _check_request() -> Response | None:
    """Answer requests refused up front, then check the CSRF synchronizer token."""
    session = _flask_session()
    if session is None:
        return None
    if session.refusal is not None:
        return error_response(session.refusal, session.info)
    state = session.state
    if not state.csrf_pending:
        return None
    request = flask.request
    presented = request.headers.get(csrf.HEADER) or request.form.get(csrf.FORM_FIELD)
    try:
        state.handler.check_csrf_token(state, presented)
    except WebError as error:
        return error_response(error, session.info)
    return None


def _add_headers(response: Response, headers: Iterable[tuple[str, str]]) -> None:
    for name, value in headers:
        lower = name.lower()
        if lower == "vary":
            response.vary.add(value)
        elif lower == "cache-control":  # merged into the view's own (caching.with_no_store)
            response.headers["Cache-Control"] = caching.with_no_store(
                response.headers.get("Cache-Control")
            )
        else:
            response.headers.add(name, value)


def _replace_response(response: Response, error: WebError, info: RequestInfo) -> None:
    """Turn the app's response into the refusal: its body and headers are not sent, since the
    change they report was not saved."""
    status, headers, body = error.render(info)
    close = getattr(response.response, "close", None)
    if close is not None:
        close()
    response.headers.clear()
    response.direct_passthrough = False
    response.status_code = status
    for name, value in headers:
        response.headers.add(name, value)
    response.set_data(body)


# -- guards -----------------------------------------------------------------------------------


def _stop(max_age: float | None) -> Response | None:
    session = current_session()
    state = session.state
    decision = state.login_decision(max_age)
    if decision is None:
        return None
    if isinstance(decision, guards.Redirect):
        return cast(Response, flask.redirect(decision.location, decision.status))
    return error_response(decision, session.info)


def _guarded(view: F, max_age: float | None) -> F:
    if inspect.iscoroutinefunction(view):

        @functools.wraps(view)
        async def async_guard(*args: Any, **kwargs: Any) -> Any:
            stop = _stop(max_age)
            return stop if stop is not None else await view(*args, **kwargs)

        return cast(F, async_guard)

    @functools.wraps(view)
    def guard(*args: Any, **kwargs: Any) -> Any:
        stop = _stop(max_age)
        return stop if stop is not None else view(*args, **kwargs)

    return cast(F, guard)


def login_required(view: F) -> F:
    """Only for logged-in users. A browser is sent (303) to ``COATCHECK_LOGIN_URL`` with the
    page as ``next`` and ``reason`` (``login_required`` or ``session_expired``); an API client
    gets a 401 JSON body with that reason."""
    return _guarded(view, None)


def fresh_login_required(max_age: float | timedelta) -> Callable[[F], F]:
    """Like :func:`login_required`, and the login must be at most ``max_age`` old (seconds or
    a timedelta); otherwise reason ``reauthenticate``. For sensitive actions."""
    seconds = max_age.total_seconds() if isinstance(max_age, timedelta) else float(max_age)
    if seconds <= 0:
        raise ConfigError(f"fresh_login_required needs a positive max_age, got {max_age!r}")

    def decorate(view: F) -> F:
        return _guarded(view, seconds)

    return decorate


# -- conveniences -----------------------------------------------------------------------------


def login(user_id: str, carry: Collection[str] = (), *, remember: bool = False) -> None:
    """Log this request's browser in as ``user_id`` (new token; see :meth:`FlaskSession.login`);
    ``remember=True`` for "remember me"."""
    current_session().login(user_id, carry=carry, remember=remember)


def logout() -> None:
    """End this request's session server-side (see :meth:`FlaskSession.logout`)."""
    current_session().logout()


def logout_other_sessions() -> int:
    """End every other session of the logged-in user (after a password change)."""
    return current_session().logout_other_sessions()


def logout_session(public_id: str) -> bool:
    """End one of the logged-in user's own sessions by its public id (``record.public_id``,
    the ``id`` of a session listing); False if the user has no such session, so a user can
    never end another user's session (see :meth:`FlaskSession.logout_session`)."""
    return current_session().logout_session(public_id)


def csrf_token() -> str:
    """The CSRF token for this session's forms (also the Jinja global ``csrf_token()``)."""
    return current_session().csrf_token()


def flash(message: str, category: str = "message") -> None:
    """Like ``flask.flash``, stored one key per message so concurrent requests never lose one."""
    current_session().flash(message, category)


def get_flashed_messages(
    with_categories: bool = False, category_filter: Iterable[str] = ()
) -> list[str] | list[tuple[str, str]]:
    """``flask.get_flashed_messages`` that also returns :func:`flash` messages (after Flask's
    own); installed as the Jinja global of the same name."""
    flashes = [(str(f[0]), str(f[1])) for f in flask.get_flashed_messages(with_categories=True)]
    flashes += current_session().pop_flashes()
    wanted = set(category_filter)
    if wanted:
        flashes = [f for f in flashes if f[0] in wanted]
    if with_categories:
        return flashes
    return [message for _, message in flashes]
