"""``flask.session``: a dict over the shared core's request session, plus coatcheck's extras."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import TYPE_CHECKING, Any

from flask.sessions import SessionMixin

from ..._sync.web.handler import FormState, RequestSession
from ...core.errors import SessionGone, StoreUnavailable
from ...core.records import encode_value
from ..errors import WebError, store_unavailable
from ..request import RequestInfo

if TYPE_CHECKING:
    from .interface import CoatCheckSessionInterface

ENVIRON_KEY = "coatcheck.flask_session"  # where a request's FlaskSession is kept
PERMANENT_KEY = "_permanent"  # where Flask's SessionMixin keeps ``session.permanent``


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

    def hand_over(self) -> RequestSession:
        """The shared-core session, for code that changes it directly (the OIDC relying party
        logs in, refreshes and logs out there): in-place changes are recorded first, and the
        values handed out so far are forgotten, since they may be stale afterwards."""
        state = self._writable()
        self._flush()
        self._forget_values()
        return state

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
        """End the session server-side. The response expires the cookie (and sends
        ``Clear-Site-Data`` if ``COATCHECK_CLEAR_SITE_DATA`` is on), unless the request goes on
        to store something (a flash, a new login): that goes into a fresh session under a new
        cookie."""
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
