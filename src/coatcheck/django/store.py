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

from datetime import UTC, datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY
from django.contrib.auth import SESSION_KEY as USER_SESSION_KEY
from django.contrib.auth.signals import user_logged_in
from django.contrib.sessions.backends.base import CreateError, UpdateError
from django.core.signing import JSONSerializer
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils import timezone

from .._sync.web.handler import RequestSession
from ..core.errors import SessionGone
from ..core.policy import Verdict
from ..core.records import SessionRecord
from ..core.session import Session
from ..core.tokens import is_well_formed
from ..web import csrf
from .bound import BoundSession, auth_user_of
from .conf import Config, get_config, get_manager
from .expiry import EXPIRY_KEY, epoch, own_limits

AUTH_KEYS = (USER_SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY)


class SessionStore(BoundSession):
    """A Django session kept by coatcheck. See the module docstring for the differences."""

    serializer = JSONSerializer  # encode()/decode() too: JSON, never pickle

    def __init__(
        self,
        session_key: str | None = None,
        *,
        request: RequestSession | None = None,
        config: Config | None = None,
    ) -> None:
        # SessionBase.__init__ is not called: it imports SESSION_SERIALIZER by name and checks
        # the key through the property below on every request. Its other attributes
        # (``accessed``, ``modified``, ``serializer``) start as the class's, as do ours.
        if session_key is not None:
            self._session_key = session_key
        self._config = config or get_config()
        self.manager = self._config.manager
        self._request = request

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
        """Save now (Django's contract); ``UpdateError`` if the session ended meanwhile (logged
        out elsewhere), as Django's backends raise. In a request the middleware saves once, at
        its end: views need not call this."""
        core = self._get_session(no_load=must_create)
        if must_create and core.record is not None:
            raise CreateError("this session is already stored")
        try:
            self._persist(create_empty=True)
        except SessionGone as exc:
            raise UpdateError("the session ended before this change was saved") from exc

    def _persist(self, session: Session | None = None, *, create_empty: bool = False) -> Session:
        """Save what this request changed, in one store write or none; return the session (the
        saver of :meth:`finish`: ``session`` is this store's own).

        A first login (``_auth_user_id`` set, the record not yet that user's) becomes
        ``SessionManager.login`` (the returned session is then the new one); a new session is
        stored only once it holds data (or when Django's ``save()`` asks for it); otherwise the
        patch is applied, or the idle deadline slid when loading found the touch interval
        passed (``modified``). A new cookie ends with the browser if ``set_expiry(0)`` asked.
        Raises ``SessionGone`` if the session ended meanwhile.
        """
        core = session if session is not None else self._get_session()
        user = auth_user_of(core)
        if user is not None and (user != core.user_id or self._logging_in):
            core = self._login(core, user)
        elif core.record is None:
            if core.modified or create_empty:
                self.manager.rotate(core)  # rotating a session never stored inserts it
        elif self.modified or core.modified:  # else a read inside the touch interval
            self.manager.save(core)
        if core.token is not None:
            self._token = core.token
            if self._request is not None:  # a set_expiry() value, else the cookie settings
                expiry = core.get(EXPIRY_KEY)
                self._request.persistent = None if expiry is None else expiry != 0
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
            return epoch(moment)
        return self.manager.clock()

    def _deadline(self, now: float, kwargs: dict[str, Any]) -> float:
        """When the session dies if its last request is ``now``: the policy's deadline, or an
        earlier one set with ``set_expiry()`` (``expiry`` in ``kwargs`` stands in for it)."""
        idle, end = own_limits(kwargs["expiry"] if "expiry" in kwargs else self.get(EXPIRY_KEY))
        record: SessionRecord | None = self._session_cache.record if self.loaded else None
        created = record.created_at if record is not None and not self._logging_in else now
        policy = self.manager.policy
        return policy.deadline(created, now, self._remembered(), idle_timeout=idle, ends_at=end)[0]


@receiver(user_logged_in, dispatch_uid="coatcheck.django.login")
def _logged_in(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    """``auth.login()`` ran: the next save is a login (:meth:`SessionStore.mark_login`)."""
    store = getattr(request, "session", None)
    if isinstance(store, SessionStore):
        store.mark_login()
