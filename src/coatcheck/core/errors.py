"""Every error coatcheck raises, so callers can catch one family and tell each case apart."""

from __future__ import annotations


class CoatcheckError(Exception):
    """Base class of every coatcheck error."""


class ConfigError(CoatcheckError, ValueError):
    """A setting or store URL is malformed; the message says which and why."""


class InvalidToken(CoatcheckError, ValueError):
    """A presented token is not one coatcheck could have issued (rejected before any store call)."""


class InvalidSessionId(CoatcheckError, ValueError):
    """A public session id is malformed (it must be the 16 hex digits listings show)."""


class SessionDataError(CoatcheckError, TypeError):
    """A session value cannot be stored as JSON; the message names the key."""


class SessionTooLarge(CoatcheckError, ValueError):
    """Serialized session data exceeds the configured limit; nothing was truncated or written."""


class SessionGone(CoatcheckError):
    """The session was deleted (logout, revocation, rotation, expiry) before this write.

    Raised instead of silently re-creating the record: deleting is final.
    """


class SessionConflict(CoatcheckError):
    """A version-checked write lost to a concurrent write of the same session."""


class SessionLimitReached(CoatcheckError):
    """The user already has the maximum number of browser sessions and the policy refuses more."""


class StoreUnavailable(CoatcheckError):
    """The store's server cannot be reached or failed (cause chained); retrying later works."""


class InvalidMarker(CoatcheckError, ValueError):
    """A store marker's name, value or lifetime is outside the limits every store keeps
    (:mod:`coatcheck.stores.markers`); the message says which. Nothing was sent to the store."""
