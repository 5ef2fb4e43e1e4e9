"""Every error of the OpenID Connect relying party, so callers can tell a provider that is
down (retry later, keep the session) from one that said no (the session at the provider is
over) and from a token that must not be trusted."""

from __future__ import annotations

from ..core.errors import CoatcheckError, ConfigError

INTERACTION_ERRORS = frozenset(
    {"login_required", "interaction_required", "consent_required", "account_selection_required"}
)
"""The errors a ``prompt=none`` authorization answers with when the user must act: the
provider's session is over (or needs consent), not a fault."""

TRANSIENT_ERRORS = frozenset({"server_error", "temporarily_unavailable"})
"""The authorization endpoint's answers for a provider that is not well (RFC 6749, 4.1.2.1:
its 500 and 503): nothing is over, try again later."""

_DESCRIPTION_LIMIT = 200  # characters of a provider's error_description kept in messages


class OIDCError(CoatcheckError):
    """Base class of the OpenID Connect errors."""


class OIDCConfigError(OIDCError, ConfigError):
    """A bad OIDC setting, or a provider whose discovery document does not fit the settings.

    ``field`` names the :class:`~coatcheck.oidc.OIDCSettings` field at fault, when there is one.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ProviderUnavailable(OIDCError):
    """The provider could not be asked or gave no usable answer (network error, timeout, 5xx,
    an answer that is not JSON): transient, so a session must not end because of it."""


class ProviderRefused(OIDCError):
    """The provider answered with an OAuth error (``invalid_grant``, ``login_required``, ...).

    ``error`` is the provider's error code, ``description`` its ``error_description``
    (shortened, printable characters only), or None.
    """

    def __init__(self, error: str, description: str | None = None) -> None:
        self.error = _printable(error, 64) or "unknown_error"
        self.description = _printable(description, _DESCRIPTION_LIMIT) if description else None
        detail = f": {self.description}" if self.description else ""
        super().__init__(f"the OpenID Provider refused ({self.error}){detail}")


class InvalidToken(OIDCError):
    """An ID token (from a login or a refresh) that fails validation; ``reason`` says which
    check, never the token."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid ID token: {reason}")
        self.reason = reason


class InvalidLogoutToken(OIDCError):
    """A back-channel logout token that fails validation; ``reason`` says which check."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid logout token: {reason}")
        self.reason = reason


def _printable(text: object, limit: int) -> str:
    """``text`` as a short one-line string: the provider's words may end up in logs."""
    if not isinstance(text, str):
        return ""
    kept = "".join(c for c in text if c.isprintable())
    return kept if len(kept) <= limit else kept[: limit - 1] + "…"
