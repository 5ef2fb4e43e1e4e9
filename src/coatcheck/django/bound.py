"""The coatcheck half of a Django session: the request it is bound to, lazy loading through the
shared web core, coatcheck's additions (user, CSRF token, forms, logouts, remember me) and the
end of the request. :class:`~coatcheck.django.store.SessionStore` adds Django's contract.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth import SESSION_KEY as USER_SESSION_KEY
from django.contrib.sessions.backends.base import SessionBase

from .._sync.manager import SessionManager
from .._sync.web.handler import RequestSession
from ..core.errors import InvalidToken
from ..core.policy import Verdict
from ..core.records import SessionRecord
from ..core.session import Session
from ..core.tokens import token_digest
from ..web import caching, csrf
from ..web.forms import FormState, form_state
from .conf import Config
from .expiry import EXPIRY_KEY, own_limits


class BoundSession(SessionBase):
    """What :class:`~coatcheck.django.store.SessionStore` is beyond Django's contract."""

    _session_cache: Session  # Django's name for the loaded data; absent until first use
    # Set by SessionStore.__init__:
    _config: Config
    manager: SessionManager
    _request: RequestSession | None
    # Until changed (class attributes: a store is made for every request):
    accessed = False  # Django's
    modified = False  # Django's
    _token: str | None = None
    _resolved = False  # has the request's cookie been looked up yet?
    logged_out = False
    _logging_in = False  # django.contrib.auth.login() ran; the login is not saved yet
    _remember = False  # set_remember() for that login

    # -- coatcheck's additions ------------------------------------------------------------

    @property
    def request_state(self) -> RequestSession | None:
        """The web core's view of the request (cookies presented, client IP), if bound."""
        return self._request

    @property
    def exempt(self) -> bool:
        """True on ``COATCHECK_EXEMPT_PATHS``: the session is off there (using it raises)."""
        return self._request is not None and self._request.exempt

    @property
    def loaded(self) -> bool:
        """True once the session was used in this request (only then is anything saved)."""
        return hasattr(self, "_session_cache")

    @property
    def core(self) -> Session:
        """The coatcheck session behind this Django session (loads it)."""
        return self._get_session()

    @property
    def expired_reason(self) -> str | None:
        """Why the presented cookie was refused: ``expired_idle``, ``expired_absolute``,
        ``ip_mismatch``, ``unknown`` (malformed, revoked, never issued) — or None."""
        reason = self.core.expired_reason
        return None if reason is None else reason.value

    @property
    def user_id(self) -> str | None:
        """The user the stored session belongs to (set when a login is saved)."""
        return self.core.user_id

    @property
    def authenticated_at(self) -> float | None:
        """When the user of this session last proved who they are (epoch seconds)."""
        return self.core.authenticated_at

    @property
    def is_new(self) -> bool:
        return self.core.is_new

    @property
    def auth_user(self) -> str | None:
        """The Django user id the data names (``_auth_user_id``), if any."""
        return auth_user_of(self._get_session())

    def csrf_token(self) -> str:
        """This session's synchronizer token for forms (created on first use)."""
        token = self.get(csrf.SESSION_KEY)
        if not isinstance(token, str):
            token = csrf.new_token()
            self[csrf.SESSION_KEY] = token
        return token

    def form_state(self, name: str) -> FormState:
        """Per-form (wizard) state kept across requests until ``complete()``."""
        self.modified = True
        return form_state(self.core, name)

    def logout_other_sessions(self) -> int:
        """End every other session of this user (after a password change)."""
        return self.manager.logout_other_sessions(self.core)

    def logout_session(self, public_id: str) -> bool:
        """End one of this user's own sessions by its public id (``record.public_id``, the
        ``id`` of ``get_manager().list_user(...)``), for a "your sessions" page.

        False when this user has no live session with that id: another user's (never ended
        from here), one already ended, a value that is not an id, or no one logged in (a login
        of this request counts once it is saved). Ending the current session this way is a
        logout: the record ends now, and the response expires the cookie and clears site
        data, as after ``django.contrib.auth.logout()`` (``request.user`` keeps its value for
        the rest of this request: prefer ``logout()`` for the current session).
        """
        state = self._request
        if state is None:
            raise RuntimeError(
                "logout_session() needs the session of a request (coatcheck's "
                "SessionMiddleware); elsewhere use get_manager().revoke_session(id, user_id=...)"
            )
        user = self.core.user_id
        # The request state still holds the session the cookie named; after a flush() or a
        # change of hands in this request it speaks for nobody here.
        if user is None or state.session.user_id != user:
            return False
        ended_before = state.ended
        ended = state.logout_session(public_id)
        if state.ended and not ended_before:  # it was the current session: a logout
            self.logged_out = True
            self._start_over()
        return ended

    def mark_logout(self) -> None:
        """The next ``flush()`` is a logout: the response clears the browser's cookies for the
        site. Called for ``django.contrib.auth.logout`` (``user_logged_out``)."""
        self.logged_out = True

    def mark_login(self) -> None:
        """``django.contrib.auth.login()`` ran in this request (``user_logged_in``): the save
        is a login (``SessionManager.login``), even for the user already logged in."""
        self._logging_in = True
        self._remember = False

    def set_remember(self, remember: bool = True) -> None:
        """Remember me for the login of this request: call it after
        ``django.contrib.auth.login()``. ``True`` gives the session the policy's longer
        limits (``Policy.remember_absolute_lifetime`` / ``remember_idle_timeout``) and a
        persistent cookie, whatever ``SESSION_EXPIRE_AT_BROWSER_CLOSE`` says; ``False`` (the
        default of every login) the normal ones.

        Raises ``RuntimeError`` in a request that logged nobody in (remember me never extends
        a session that exists) and :class:`~coatcheck.ConfigError` if the policy has remember
        me off.
        """
        if not self._logging_in:
            raise RuntimeError(
                "set_remember() applies to a login: call it after django.contrib.auth.login() "
                "in the request that logs the user in"
            )
        self.manager.policy.check_remember(remember, "set_remember(True)")
        self._remember = bool(remember)

    def _remembered(self) -> bool:
        """Does this session get the remember limits (its record's flag, or this request's
        login's)?"""
        if self._logging_in:
            return self._remember
        record = self._session_cache.record if self.loaded else None
        return record is not None and record.remember

    # -- loading ----------------------------------------------------------------------------

    def _get_session(self, no_load: bool = False) -> Session:
        self.accessed = True
        # Not ``self._session_cache`` in a try: the AttributeError of the first use costs more
        # than the rest of this method (getattr with a default raises none).
        cached: Session | None = getattr(self, "_session_cache", None)
        if cached is None:
            if no_load or (self._request is None and self._token is None):
                cached = self._fresh()
            else:
                cached = self._load()
            self._session_cache = cached
        return cached

    _session = property(_get_session)

    def __getitem__(self, key: str) -> Any:
        return self._get_session()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._get_session().get(key, default)

    async def _aget_session(self, no_load: bool = False) -> Session:
        return await sync_to_async(self._get_session)(no_load)

    def load(self) -> dict[str, Any]:
        """Load (again) from the store and return the data as a plain dict."""
        self._session_cache = self._load()
        return self._session_cache.snapshot()

    def adopt(self) -> None:
        """Take the request's session as the shared web core holds it now, for code that works
        on it there before Django's does (the OIDC relying party, :mod:`coatcheck.django.oidc`,
        refreshes, logs in and ends sessions through the core's request session).

        A login made there is complete: a ``user_logged_in`` signal sent for it afterwards does
        not make the save a second login (call this after sending it)."""
        state = self._request
        if state is None or not state.loaded:
            return
        core = state.session
        self._resolved = True
        self._logging_in = self._remember = False
        self._token = core.token or _presented_token(state.cookie_values, core)
        known = getattr(self, "_session_cache", None) is core  # checked when it was loaded
        self._session_cache = core if known else self._checked(core)

    def _load(self) -> Session:
        request = self._request
        manager = self.manager
        if request is not None and not self._resolved:
            # The shared core resolves the request's cookie(s); a 503 WebError if the store is down.
            core = request.load().session
            self._resolved = True
            values = request.cookie_values
            if core.record is None:
                self._token = None
            elif len(values) == 1:  # the only value presented is the one that resolved
                self._token = values[0]
            else:
                self._token = _presented_token(values, core)
        else:
            ip, agent = self._client()
            core = manager.load(self._token, client_ip=ip, user_agent=agent)
            if core.is_new:
                self._token = None
        return self._checked(core)

    def _checked(self, core: Session) -> Session:
        """A loaded session with this adapter's own limits applied: a ``set_expiry()`` deadline,
        and the touch that slides the idle timeout (saved at the end)."""
        manager = self.manager
        record = core.record
        if record is None:
            return core
        now = manager.clock()
        if EXPIRY_KEY in record.data:
            core = self._apply_expiry(core, record, now)
            if core.record is None:
                return core
        if manager.policy.needs_touch(record, now):
            # Saved at the end (persist); also what makes Django's own middleware save.
            self.modified = True
        return core

    def _client(self) -> tuple[str | None, str | None]:
        """Client IP and user agent recorded on sessions this request creates."""
        if self._request is None:
            return None, None
        return self._request.client_ip, self._request.request.header("user-agent")

    def _fresh(self, verdict: Verdict | None = None) -> Session:
        ip, agent = self._client()
        return Session(None, verdict=verdict, client_ip=ip, user_agent=agent)

    def _apply_expiry(self, core: Session, record: SessionRecord, now: float) -> Session:
        """Enforce a shorter per-session expiry set with ``set_expiry()`` (the policy's own
        limits were checked by the load)."""
        idle, end = own_limits(record.data.get(EXPIRY_KEY))
        deadline, verdict = self.manager.policy.deadline(
            record.created_at, record.last_seen_at, record.remember, idle_timeout=idle, ends_at=end
        )
        if now < deadline:
            return core
        # An expiry the application set (set_expiry), not a revocation: no tombstone.
        self.manager.revoke_key(record.key, reason=verdict.value, by=None)
        self._token = None
        return self._fresh(verdict)

    # -- the end of the request -------------------------------------------------------------

    def finish(self, *, failed: bool = False, view: object = None) -> list[tuple[str, str]] | None:
        """End the request this store is bound to: save once through the shared web core and
        return the headers the response needs. None when the response is none of its business:
        the session was not used, the path is exempt, or the store is not bound to a request (a
        view made it: whoever made it saves it, as outside views).

        ``failed``: a server error saves nothing. ``view``: the view that answered; marked
        ``@cacheable``, a logged-in session's response may be cached. Raises the core's
        ``WebError`` when the change cannot be saved.
        """
        state = self._request
        session: Session | None = getattr(self, "_session_cache", None)
        if session is None or state is None or state.exempt:
            return None
        if self.logged_out:
            state.ended = True
        if session.user_id is not None and not state.cacheable and caching.is_cacheable(view):
            state.cacheable = True
        return state.handler.finish(state, session=session, saver=self._persist, failed=failed)

    def _persist(self, session: Session | None = None, *, create_empty: bool = False) -> Session:
        raise NotImplementedError  # SessionStore: the save (finish's saver)

    def _start_over(self) -> None:
        """An empty session (no token yet) in place of one that has ended."""
        self._session_cache = self._fresh()
        self._token = None
        self._logging_in = self._remember = False
        self.modified = True


def auth_user_of(core: Session) -> str | None:
    """The Django user id the data names (``_auth_user_id``), if any."""
    value = core.get(USER_SESSION_KEY)
    return None if value is None else str(value)


def _presented_token(values: list[str], core: Session) -> str | None:
    """Which of the request's cookie values is the token of the session it resolved to."""
    key = core.key
    if key is None:
        return None
    if len(values) == 1:  # the only value presented is the one that resolved
        return values[0]
    for value in values:
        try:
            if token_digest(value) == key.digest:
                return value
        except InvalidToken:
            continue
    return None
