"""Django's session contract (``SessionBase``) kept by coatcheck.

``SESSION_ENGINE = "coatcheck.django"`` imports :class:`SessionStore` from here.

What changes against Django's own backends, and why:

* ``session_key`` is the coatcheck token (``cc2_...``, 256 random bits); the store keeps only its
  SHA-256, so a leaked table cannot be replayed. Keys coatcheck did not issue are refused before
  any store call.
* The data is a coatcheck :class:`~coatcheck.core.session.Session`: every value is checked for
  JSON when it is set (never pickle), and a request saves only the keys it set or deleted, so
  two concurrent requests that change different keys both keep their change.
* ``cycle_key()`` (called by ``django.contrib.auth.login``) rotates through the manager: the old
  token is dead at once. When the data names a user (``_auth_user_id``) the next save turns the
  session into that user's (``SessionManager.login``): a new token again, ``authenticated_at``
  set, the per-user limit applied — so coatcheck's "log out everywhere" and session lists work
  for Django users. The same happens when ``login()`` is called for the user already logged in
  (a re-login: Django neither flushes nor cycles then; ``user_logged_in`` tells us).
* Timeouts are the coatcheck :class:`~coatcheck.Policy`'s; ``set_expiry()`` can shorten them
  for one session, never extend them. ``set_remember(True)`` after ``login()`` gives that login
  the policy's longer "remember me" limits and a persistent cookie.

Used with :class:`coatcheck.django.middleware.SessionMiddleware`, a store is bound to the
request: the cookie is resolved by the shared web core (several cookies of our name are
resolved safely), lazily, on first use.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY
from django.contrib.auth import SESSION_KEY as USER_SESSION_KEY
from django.contrib.auth.signals import user_logged_in
from django.contrib.sessions.backends.base import CreateError, SessionBase, UpdateError
from django.core.signing import JSONSerializer
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils import timezone

from .._sync.manager import SessionManager
from ..core.errors import ConfigError, InvalidToken, SessionGone
from ..core.policy import Verdict
from ..core.records import SessionRecord
from ..core.session import Session
from ..core.tokens import is_well_formed, token_digest
from ..web import csrf
from ..web._sync.handler import FORM_PREFIX, FormState, RequestSession
from .conf import Config, get_config, get_manager

EXPIRY_KEY = "_session_expiry"  # where Django's set_expiry() keeps a per-session expiry
AUTH_KEYS = (USER_SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY)


class SessionStore(SessionBase):
    """A Django session kept by coatcheck. See the module docstring for the differences."""

    _session_cache: Session  # Django's name for the loaded data; absent until first use
    serializer = JSONSerializer  # encode()/decode() too: JSON, never pickle

    def __init__(
        self,
        session_key: str | None = None,
        *,
        request: RequestSession | None = None,
        config: Config | None = None,
    ) -> None:
        # SessionBase.__init__ is not called: it imports SESSION_SERIALIZER by name and checks
        # the key through the property below on every request. These are its attributes
        # (``serializer`` is the class's).
        self._token: str | None = None
        if session_key is not None:
            self._session_key = session_key
        self.accessed = False
        self.modified = False
        self._resolved = False  # has the request's cookie been looked up yet?
        self._config = config or get_config()
        self.manager: SessionManager = self._config.manager
        self._request = request
        self.logged_out = False
        self._logging_in = False  # django.contrib.auth.login() ran; the login is not saved yet
        self._remember = False  # set_remember() for that login

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
        return _auth_user(self._get_session())

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
        return FormState(self.core, FORM_PREFIX + name)

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
        if remember and not self.manager.policy.remember_enabled:
            raise ConfigError(
                "set_remember(True) needs remember me turned on: set "
                "COATCHECK_POLICY['remember_absolute_lifetime'] and/or ['remember_idle_timeout']"
            )
        self._remember = bool(remember)

    def _remembered(self) -> bool:
        """Does this session get the remember limits (its record's flag, or this request's
        login's)?"""
        if self._logging_in:
            return self._remember
        record = self._session_cache.record if self.loaded else None
        return record is not None and record.remember

    # -- the key ----------------------------------------------------------------------------

    def _validate_session_key(self, key: object) -> bool:
        """Only tokens coatcheck could have issued (shape checked, no store call)."""
        return is_well_formed(key)

    @property
    def session_key(self) -> str | None:
        """The token; bound to a request it is known once the cookie was looked up."""
        if self._request is not None and not self.loaded:
            self._get_session()
        return self._token

    @property
    def _session_key(self) -> str | None:
        return self._token

    @_session_key.setter
    def _session_key(self, value: str | None) -> None:
        self._token = value if self._validate_session_key(value) else None

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

    def _load(self) -> Session:
        request = self._request
        manager = self.manager
        if request is not None and not self._resolved:
            # The shared core resolves the request's cookie(s); a 503 WebError if the store is down.
            core = request.load().session
            self._resolved = True
            self._token = _presented_token(request.cookie_values, core)
        else:
            ip, agent = self._client()
            core = manager.load(self._token, client_ip=ip, user_agent=agent)
            if core.is_new:
                self._token = None
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
        idle, end = _own_limits(record.data.get(EXPIRY_KEY))
        deadline, verdict = self.manager.policy.deadline(
            record.created_at, record.last_seen_at, record.remember, idle_timeout=idle, ends_at=end
        )
        if now < deadline:
            return core
        # An expiry the application set (set_expiry), not a revocation: no tombstone.
        self.manager.revoke_key(record.key, reason=verdict.value, by=None)
        self._token = None
        return self._fresh(verdict)

    # -- Django's contract ------------------------------------------------------------------

    def exists(self, session_key: str) -> bool:
        verdict, _ = self.manager.inspect(session_key)
        return verdict is Verdict.VALID

    def create(self) -> None:
        """A new stored session with a new token, holding this object's current data."""
        data = self._session_cache.snapshot() if self.loaded else {}
        core = self._fresh()
        core.update(data)
        self.manager.rotate(core)  # rotating a session never stored inserts it
        self._session_cache = core
        self._token = core.token
        self.modified = True

    def save(self, must_create: bool = False) -> None:
        core = self._get_session(no_load=must_create)
        if must_create and core.record is not None:
            raise CreateError("this session is already stored")
        self.persist(create_empty=True)

    def persist(self, *, create_empty: bool = False) -> Session:
        """Save what this request changed, in one store write or none; return the session.

        A first login (``_auth_user_id`` set, the record not yet that user's) becomes
        ``SessionManager.login`` (the returned session is then the new one); a new session is
        stored only once it holds data (or when Django's ``save()`` asks for it); otherwise the
        patch is applied, or the idle deadline slid when loading found the touch interval
        passed (``modified``). Raises ``UpdateError`` if the session ended meanwhile (logged
        out elsewhere), as Django's backends do.
        """
        core = self._get_session()
        user = _auth_user(core)
        if user is not None and (user != core.user_id or self._logging_in):
            core = self._login(core, user)
        elif core.record is None:
            if core.modified or create_empty:
                self.manager.rotate(core)  # rotating a session never stored inserts it
        elif self.modified or core.modified:  # else a read inside the touch interval
            try:
                self.manager.save(core)
            except SessionGone as exc:
                raise UpdateError("the session ended before this change was saved") from exc
        self._token = core.token or self._token
        return core

    def _login(self, core: Session, user: str) -> Session:
        if core.user_id is not None and core.user_id != user:
            # The session changed hands without flush(): none of the previous user's data moves.
            kept = {k: core[k] for k in AUTH_KEYS if k in core}
            self.manager.logout(core)
            core = self._fresh()
            core.update(kept)
            self._session_cache = core
        self.manager.login(core, user, carry=True, remember=self._remember)
        self._logging_in = self._remember = False
        return core

    def delete(self, session_key: str | None = None) -> None:
        if session_key is None:
            session_key = self.session_key
            if session_key is None:
                return
        self.manager.revoke(session_key)

    def cycle_key(self) -> None:
        """A new token, the old one dead at once (``django.contrib.auth.login`` calls this).

        Cycling an anonymous session is a login in progress: the pre-login session's CSRF
        token dies with it, and with ``COATCHECK_LOGIN_CARRY`` only the keys listed move on.
        """
        core = self._session
        if core.user_id is None and self.auth_user is None:
            carry = self._config.login_carry
            for key in list(core):
                if key == csrf.SESSION_KEY or (carry is not None and key not in carry):
                    del core[key]
        if core.record is not None:
            self.manager.rotate(core)
            self._token = core.token
        self.modified = True

    async def acycle_key(self) -> None:
        await sync_to_async(self.cycle_key)()

    def flush(self) -> None:
        """End the session in the store now and start an empty one (no token yet)."""
        core = self._session
        if core.record is not None:
            self.manager.logout(core)
        self._start_over()

    def _start_over(self) -> None:
        """An empty session (no token yet) in place of one that has ended."""
        self._session_cache = self._fresh()
        self._token = None
        self._logging_in = self._remember = False
        self.modified = True

    async def aflush(self) -> None:
        await sync_to_async(self.flush)()

    def clear(self) -> None:
        """Delete every key, recorded key by key (concurrent writers keep theirs)."""
        self._session.clear()
        self.modified = True

    def is_empty(self) -> bool:
        if self._token:
            return False
        return not self.loaded or len(self._session_cache) == 0

    @classmethod
    def clear_expired(cls) -> None:
        get_manager().purge()

    # -- expiry: the Policy's, optionally shortened per session ----------------------------

    def get_session_cookie_age(self) -> int:
        """The longest a session can live (the Policy's absolute lifetime, or its remember
        lifetime for a remembered session): a new session's cookie ``Max-Age``."""
        # Created and sent at one moment; 0.0, as a real clock reading would round.
        return self.manager.policy.cookie_max_age(0.0, 0.0, self._remembered())

    def get_expiry_age(self, **kwargs: Any) -> int:
        """Seconds from ``modification`` (default: now) until the session dies if unused."""
        now = self._timestamp(kwargs.get("modification"))
        return max(0, int(self._deadline(now, kwargs) - now))

    async def aget_expiry_age(self, **kwargs: Any) -> int:
        return await sync_to_async(self.get_expiry_age)(**kwargs)

    def get_expiry_date(self, **kwargs: Any) -> datetime:
        now = self._timestamp(kwargs.get("modification"))
        moment = datetime.fromtimestamp(self._deadline(now, kwargs), tz=UTC)
        return moment if settings.USE_TZ else timezone.make_naive(moment)

    async def aget_expiry_date(self, **kwargs: Any) -> datetime:
        return await sync_to_async(self.get_expiry_date)(**kwargs)

    def _timestamp(self, moment: object) -> float:
        if isinstance(moment, datetime):
            return _epoch(moment)
        return self.manager.clock()

    def _deadline(self, now: float, kwargs: dict[str, Any]) -> float:
        """When the session dies if its last request is ``now``: the policy's deadline, or an
        earlier one set with ``set_expiry()`` (``expiry`` in ``kwargs`` stands in for it)."""
        idle, end = _own_limits(kwargs["expiry"] if "expiry" in kwargs else self.get(EXPIRY_KEY))
        record: SessionRecord | None = self._session_cache.record if self.loaded else None
        created = record.created_at if record is not None and not self._logging_in else now
        policy = self.manager.policy
        return policy.deadline(created, now, self._remembered(), idle_timeout=idle, ends_at=end)[0]


def _auth_user(core: Session) -> str | None:
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


def _epoch(moment: datetime) -> float:
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment.timestamp()


def _own_limits(expiry: object) -> tuple[float | None, float | None]:
    """A ``set_expiry()`` value as the limits it sets for its session (``Policy.deadline``):
    (seconds without a request, a fixed end); None where it sets none.

    Seconds count from the last activity (an idle timeout); a datetime (stored by Django as an
    ISO string) is a fixed end. ``0`` only makes the cookie end with the browser.
    """
    if isinstance(expiry, bool):
        return None, None
    if isinstance(expiry, int | float):
        return (expiry if expiry > 0 else None), None
    moment: object = expiry
    if isinstance(expiry, str):
        try:
            moment = datetime.fromisoformat(expiry)
        except ValueError:
            return None, None
    if isinstance(moment, datetime):
        return None, _epoch(moment)
    return None, None


@receiver(user_logged_in, dispatch_uid="coatcheck.django.login")
def _logged_in(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    """``auth.login()`` ran: the next save is a login (:meth:`SessionStore.mark_login`)."""
    store = getattr(request, "session", None)
    if isinstance(store, SessionStore):
        store.mark_login()
