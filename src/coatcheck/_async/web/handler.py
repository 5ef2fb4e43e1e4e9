"""The request/response core shared by every web adapter (ASGI and Starlette here; WSGI,
Flask and Django use its generated synchronous twin).

A request's path: :meth:`AsyncSessionHandler.begin` reads the cookie (no I/O) →
the application touches the session, which loads it from the store on first use →
:meth:`AsyncSessionHandler.finish` saves once and says which headers the response needs.

A request with no session cookie and an ``Authorization: Bearer`` API token gets the read-only
session of the token's user instead (:mod:`.bearer`); with a session cookie, the header plays
no part in authentication.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, Protocol

from ...cookies import CookieTooLarge, cookie_values, host_is_loopback
from ...core.errors import (
    InvalidSessionId,
    SessionGone,
    SessionLimitReached,
    SessionTooLarge,
    StoreUnavailable,
)
from ...core.policy import Verdict
from ...core.records import parse_public_id, public_id_bytes
from ...core.session import Session, SessionReadOnly
from ...web import caching, csrf, errors, forms, guards
from ...web.errors import WebError
from ...web.forms import FormState as FormState  # also where adapters have found it
from ...web.modes import value_check
from ...web.request import RequestInfo, client_ip
from ...web.settings import WebSettings
from ...web.unloaded import refuse_unloaded
from .backend import AsyncSessionBackend
from .bearer import AsyncBearerVerifier, local_verifier

MAX_COOKIE_CANDIDATES = 8  # distinct well-formed values looked up when several arrive
_NOT_EXPIRED = (None, Verdict.UNKNOWN)
VARY = ("vary", "Cookie")
VARY_AUTHORIZATION = ("vary", "Authorization")
NO_STORE = ("cache-control", caching.NO_STORE)
CLEAR_SITE_DATA = ("clear-site-data", '"cookies"')  # only with WebSettings.clear_site_data


class AsyncRequestSession(MutableMapping[str, Any]):
    """The session as one request sees it: a dict plus login, logout, flash and CSRF helpers.

    Nothing is read from the store until the session is first used, and everything the
    request changes is saved once, when the response starts.
    """

    cacheable = False
    """Set to True when this response may be cached although a logged-in session was loaded:
    then no ``Cache-Control: no-store`` is added for that reason (a response that sets or
    clears the cookie still gets it). Adapters set it for views marked with
    :func:`coatcheck.web.caching.cacheable`."""

    persistent: bool | None = None
    """Does a cookie this response sets outlive the browser? None (the default): as the cookie
    settings say; True or False: for this response alone (Django sets it from a session's
    ``set_expiry``). A "remember me" session's cookie is persistent whatever this says."""

    bearer_refused = False
    """True when the request's bearer token (no session cookie) was not accepted: the login
    guards then answer 401 ``invalid_token``."""

    def __init__(self, handler: AsyncSessionHandler, request: RequestInfo) -> None:
        settings = handler.settings
        self.handler = handler
        self.request = request
        self.client_ip = client_ip(request, settings.trusted_proxies)
        self.exempt = settings.is_exempt(request.path)
        self.cookie_values = cookie_values(request.header("cookie"), handler.cookie.name)
        has_cookie = bool(self.cookie_values)
        # An unsafe request must come from an acceptable origin; with a session cookie it
        # must also carry the session's synchronizer token (``csrf_pending``).
        self.unsafe = not self.exempt and csrf.needs_origin_check(request, settings, has_cookie)
        self.csrf_pending = self.unsafe and has_cookie
        self.ended = False
        self.conflict = False
        self._session: Session | None = None

    # -- loading ------------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        return self._session is not None

    async def load(self) -> AsyncRequestSession:
        """Fetch the session from the store (once; later calls return at once)."""
        if self._session is None:
            if self.exempt:
                raise RuntimeError(
                    f"sessions are switched off for {self.request.path!r} (exempt_paths)"
                )
            self._session = await self.handler.resolve(self)
        return self

    def _require(self) -> Session:
        if self._session is None:
            refuse_unloaded(self)
        assert self._session is not None
        return self._session

    def _writable(self) -> Session:
        """The session, for logging in or out: never a bearer session's."""
        session = self._require()
        if session.read_only:
            raise SessionReadOnly(
                "this request is authenticated by an API token (Authorization: Bearer): it "
                "cannot log in, log out or rotate; send no bearer header to log a browser in"
            )
        return session

    # -- the mapping --------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        return self._require()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._require()[key] = value

    def __delitem__(self, key: str) -> None:
        del self._require()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._require())

    def __len__(self) -> int:
        return len(self._require())

    def __contains__(self, key: object) -> bool:
        return key in self._require()

    # -- who is this ----------------------------------------------------------------------

    @property
    def session(self) -> Session:
        """The underlying core :class:`Session` (loads it if needed in sync code)."""
        return self._require()

    @property
    def is_new(self) -> bool:
        return self._require().is_new

    @property
    def user_id(self) -> str | None:
        return self._require().user_id

    @property
    def is_authenticated(self) -> bool:
        return self._require().user_id is not None

    @property
    def authenticated_at(self) -> float | None:
        return self._require().authenticated_at

    @property
    def kind(self) -> str:
        """``browser``, or ``api`` for a session authenticated by an API token."""
        return self._require().kind

    @property
    def scopes(self) -> tuple[str, ...] | None:
        """The API token's scopes for a bearer session; None for a cookie session."""
        return self._require().scopes

    @property
    def read_only(self) -> bool:
        """True for a bearer session: writes raise :class:`SessionReadOnly`."""
        return self._require().read_only

    @property
    def expired_reason(self) -> str | None:
        """Why the presented cookie was not accepted: ``expired_idle``, ``expired_absolute``,
        ``ip_mismatch``, ``unknown`` (never issued, malformed, revoked: the request path reads
        no tombstones) — or None."""
        reason = self._require().expired_reason
        return None if reason is None else reason.value

    def login_decision(
        self, max_age: float | None = None, scopes: Iterable[str] = ()
    ) -> guards.Decision:
        """What the login guard says about this request: None to let it through, else the
        redirect or error that stops it (see :func:`coatcheck.web.guards.require_login`).
        ``scopes``: what an API token must carry (a cookie session passes)."""
        session = self._require()
        return guards.require_login(
            self.request,
            self.handler.settings,
            user_id=session.user_id,
            expired_reason=self.expired_reason,
            authenticated_at=session.authenticated_at,
            max_age=max_age,
            now=self.handler.manager.clock(),
            scopes=tuple(scopes),
            granted=session.scopes,
            bearer_refused=self.bearer_refused,
        )

    # -- lifecycle ------------------------------------------------------------------------

    async def login(
        self, user_id: str, *, carry: Collection[str] = (), remember: bool = False
    ) -> None:
        """Log in: a new token, the pre-login session destroyed (not promoted).

        Only the keys named in ``carry`` move to the new session; everything else the
        anonymous session held, its CSRF token included, dies with it. ``remember=True``
        ("remember me") gives this session the policy's longer remember limits and a
        persistent cookie; a ``ConfigError`` if the policy has remember me off.
        """
        session = self._writable()
        with _store_errors():
            await self.handler.manager.login(
                session, str(user_id), carry=list(carry), remember=remember
            )

    async def rotate(self, *, reauthenticated: bool = False) -> None:
        """A new token for the same user (privilege change, or step-up re-authentication)."""
        with _store_errors():
            await self.handler.manager.rotate(self._writable(), reauthenticated=reauthenticated)

    async def logout(self) -> None:
        """End the session server-side; the response expires the cookie (and sends
        ``Clear-Site-Data`` if :attr:`WebSettings.clear_site_data` is on).

        The request carries on with a fresh anonymous session, so ``logout(); flash("bye")``
        or ``logout(); login(other)`` keep what they write (then the new cookie is sent).
        """
        with _store_errors():
            await self.handler.manager.logout(self._writable())
        self.ended = True
        self._session = Session(
            None, client_ip=self.client_ip, user_agent=self.request.header("user-agent")
        )

    async def logout_other_sessions(self) -> int:
        """End every other session of this user (after a password change)."""
        with _store_errors():
            return await self.handler.manager.logout_other_sessions(self._writable())

    async def logout_session(self, public_id: str) -> bool:
        """End one of this user's own sessions by its public id (``record.public_id``, the
        ``id`` of a session listing), for a "your sessions" page.

        False when this user has no live session with that id: another user's (never ended
        from here), one already ended, a value that is not an id, or no one logged in. Ending
        the current session this way is :meth:`logout`.
        """
        session = self._writable()
        if session.user_id is None:
            return False
        try:
            wanted = parse_public_id(public_id)
        except InvalidSessionId:
            return False
        if session.record is not None and public_id_bytes(session.record.key) == wanted:
            await self.logout()
            return True
        with _store_errors():
            return await self.handler.manager.revoke_session(
                wanted.hex(), user_id=session.user_id, reason="logout_session"
            )

    # -- flash, forms, CSRF ---------------------------------------------------------------

    def flash(self, message: str, category: str = "info") -> None:
        """A message for the next page this browser shows (read once)."""
        forms.flash(self._require(), message, category)

    def pop_flashes(self) -> list[tuple[str, str]]:
        """Pending flash messages as (category, message), oldest first; each is read once."""
        return forms.pop_flashes(self._require())

    def form_state(self, name: str) -> FormState:
        """Per-form (wizard) state kept across requests until :meth:`FormState.complete`."""
        return forms.form_state(self._require(), name)

    def csrf_token(self) -> str:
        """This session's synchronizer token for HTML forms (created on first use)."""
        session = self._require()
        token = session.get(csrf.SESSION_KEY)
        if not isinstance(token, str):
            token = csrf.new_token()
            session[csrf.SESSION_KEY] = token
        return token

    def __repr__(self) -> str:
        state = repr(self._session) if self._session is not None else "not loaded"
        return f"<RequestSession {self.request.method} {self.request.path} {state}>"


@contextmanager
def _store_errors() -> Iterator[None]:
    """A store outage inside login/logout becomes the same clear 503 as anywhere else."""
    try:
        yield
    except StoreUnavailable as exc:
        raise errors.store_unavailable(exc) from exc
    except SessionLimitReached as exc:
        raise errors.session_limit_reached() from exc


class AsyncSaver(Protocol):
    """How an adapter saves a request's session where ``manager.save`` is not all of it
    (Django: a login made through ``django.contrib.auth`` is carried out when the session is
    saved). Returns the session the response then speaks for: a login replaces it."""

    async def __call__(self, session: Session) -> Session: ...


class AsyncSessionHandler:
    """Turns requests into sessions and sessions into response headers, for one app."""

    def __init__(
        self,
        manager: AsyncSessionBackend,
        settings: WebSettings | None = None,
        *,
        bearer: AsyncBearerVerifier | bool = False,
    ) -> None:
        """``bearer``: how ``Authorization: Bearer`` API tokens are checked on requests
        without a session cookie. True: against the manager's own store (server mode; a
        sealed-cookie backend has none, so no bearer tokens); False (here the default, for
        adapters that cannot carry a bearer session, such as Django's): not at all, the header
        is ignored; or a verifier of your own (the service client's). The ASGI, WSGI,
        Starlette and Flask adapters pass True unless told otherwise."""
        self.manager = manager
        self.settings = settings or WebSettings()
        self.cookie = self.settings.cookie
        self._well_formed = value_check(manager)
        self.bearer: AsyncBearerVerifier | None = None
        if bearer is True:
            self.bearer = local_verifier(manager)
        elif bearer is not False:
            self.bearer = bearer

    def begin(self, request: RequestInfo) -> AsyncRequestSession:
        """Start a request: no I/O happens here. Raises WebError for requests refused up front
        (development cookies on a non-loopback host, cross-site unsafe requests)."""
        if self.cookie.loopback_only and not host_is_loopback(request.host):
            raise WebError(
                500,
                "insecure_cookie_mode",
                "Development cookie mode (no Secure flag) serves only 127.0.0.1, localhost "
                "and ::1; configure secure cookies for any other host.",
            )
        state = AsyncRequestSession(self, request)
        if state.unsafe:
            problem = csrf.origin_problem(request, self.settings)
            if problem:
                raise errors.csrf_origin(problem)
        return state

    async def check_csrf_token(self, state: AsyncRequestSession, presented: str | None) -> None:
        """The synchronizer-token half of CSRF protection (the origin half ran in begin)."""
        if not state.csrf_pending:
            return
        await state.load()
        session = state.session
        if not csrf.token_matches(session.get(csrf.SESSION_KEY), presented):
            raise errors.csrf_token_mismatch()

    async def resolve(self, state: AsyncRequestSession) -> Session:
        """The session the request's cookie(s) name.

        Several values of our name (planted by a sibling subdomain, or set for another path)
        are resolved without trusting order: malformed ones are dropped, the last
        ``MAX_COOKIE_CANDIDATES`` distinct well-formed ones are looked up in one store call,
        and exactly one live session wins. Two live ones are ambiguous: the request is
        anonymous and may not write. None live: anonymous.
        """
        ip, ua = state.client_ip, state.request.header("user-agent")
        values = state.cookie_values
        try:
            if len(values) == 1 and values[0]:  # the usual request: no de-duplication
                return await self.manager.load(values[0], client_ip=ip, user_agent=ua)
            if not values and self.bearer is not None:
                token = guards.bearer_token(state.request)
                if token is not None:
                    bearer = await self.bearer.verify_bearer(token, client_ip=ip, user_agent=ua)
                    if bearer is not None:
                        return bearer
                    state.bearer_refused = True
            well_formed = self._well_formed
            candidates = list(dict.fromkeys(v for v in values if well_formed(v)))
            # The browser sends the newest cookie of the shortest path last: ours, just set
            # (docs/web.md, cookie tossing).
            del candidates[:-MAX_COOKIE_CANDIDATES]
            found = await self.manager.load_many(candidates, client_ip=ip, user_agent=ua)
            live = [session for session in found if not session.is_new]
            if len(live) == 1:
                return live[0]
            fresh = await self.manager.load(None, client_ip=ip, user_agent=ua)
        except StoreUnavailable as exc:
            raise errors.store_unavailable(exc) from exc
        if live:
            state.conflict = True
            fresh.expired_reason = Verdict.UNKNOWN
        elif values:
            # An expiry among the candidates is what the login page reports ("expired").
            expired = [s.expired_reason for s in found if s.expired_reason not in _NOT_EXPIRED]
            fresh.expired_reason = expired[0] if expired else Verdict.UNKNOWN
        return fresh

    async def finish(
        self,
        state: AsyncRequestSession,
        *,
        session: Session | None = None,
        saver: AsyncSaver | None = None,
        failed: bool = False,
    ) -> list[tuple[str, str]]:
        """Save what the request changed (one write at most) and return the headers to add.

        ``session``: the one to save in place of the request's own, for an adapter that keeps
        its own session object (Django's store replaces it on a flush). ``saver`` saves instead
        of ``manager.save`` (see :class:`AsyncSaver`). ``failed``: the response is a server
        error, so nothing is saved and no cookie is sent (Django's rule); a logout still
        expires the cookie, its session having ended already.

        Raises WebError when the change cannot be saved: the store is down (503), the session
        ended meanwhile (409), conflicting cookies (400) — never a silently dropped write.
        """
        if session is None:
            session = state._session
            if session is None:
                return []
        if session.read_only:  # a bearer session: nothing to save, no cookie
            if state.cacheable:
                return [VARY, VARY_AUTHORIZATION]
            return [VARY, VARY_AUTHORIZATION, NO_STORE]
        if session.ended or (state.ended and not session.modified and not session.token):
            ended = [("set-cookie", self.cookie.expire_cookie()), NO_STORE]
            if self.settings.clear_site_data:  # off by default: it reaches the whole domain
                ended.append(CLEAR_SITE_DATA)
            return ended
        if failed:
            return [VARY]
        if state.conflict and (session.modified or session.token):
            raise errors.conflicting_cookies()
        try:
            if saver is None:
                await self.manager.save(session)
            else:
                session = await saver(session)
        except StoreUnavailable as exc:
            raise errors.store_unavailable(exc) from exc
        except SessionTooLarge as exc:
            raise errors.session_too_large(exc) from exc
        except SessionGone as exc:
            raise errors.session_ended(self.cookie.expire_cookie()) from exc
        except SessionLimitReached as exc:  # a login at save time (saver), refused by the policy
            raise errors.session_limit_reached() from exc
        headers = [VARY]
        if session.token:
            try:
                cookie = self._set_cookie(session, session.token, state.persistent)
            except CookieTooLarge as exc:
                raise errors.session_too_large(exc) from exc
            headers += [("set-cookie", cookie), NO_STORE]
        elif session.record is None and len(state.cookie_values) == 1:  # a new session
            # The one value presented names no live session: the browser may forget it. Never
            # with several values: which cookie the browser would delete (the real one, or one
            # planted for another path or domain) is not ours to know.
            headers += [("set-cookie", self.cookie.expire_cookie()), NO_STORE]
        elif session.user_id is not None and not state.cacheable:
            headers.append(NO_STORE)  # a logged-in user's page (docs/security.md, caching)
        return headers

    def _set_cookie(self, session: Session, token: str, persistent: bool | None) -> str:
        """The Set-Cookie for ``token``. A persistent cookie lives as long as the session can;
        a "remember me" session's cookie is always persistent (it must outlive the browser)."""
        record, manager = session.record, self.manager
        if record is None:
            return self.cookie.set_cookie(token, persistent=persistent)
        max_age = manager.policy.cookie_max_age(record.created_at, manager.clock(), record.remember)
        return self.cookie.set_cookie(token, max_age, persistent=record.remember or persistent)
