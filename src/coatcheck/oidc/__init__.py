"""OpenID Connect for coatcheck: log in through any OpenID Provider, keep its tokens on the
server, refresh them silently, and end the session when the provider says so (docs/oidc.md).

This package holds the protocol's pure parts (settings, errors, validated values, token
checks, caching rules); :class:`AsyncOIDCProvider` / :class:`OIDCProvider` talk to the
provider over HTTP::

    from coatcheck.oidc import OIDCProvider, OIDCSettings

    settings = OIDCSettings(issuer="https://id.example", client_id="app", client_secret=secret)
    with OIDCProvider(settings) as provider:
        url = provider.authorization_url(redirect_uri=..., state=..., nonce=..., code_verifier=...)

Needs ``pip install 'coatcheck[oidc]'`` (Authlib, joserfc, httpx).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .._extras import missing_extra

try:
    import authlib as authlib
    import httpx as httpx
    import joserfc as joserfc
except ModuleNotFoundError as exc:
    raise missing_extra("oidc", "coatcheck.oidc needs Authlib, joserfc and httpx", exc) from exc

from .errors import (
    INTERACTION_ERRORS,
    InvalidLogoutToken,
    InvalidToken,
    OIDCConfigError,
    OIDCError,
    ProviderRefused,
    ProviderUnavailable,
)
from .logouttoken import BACKCHANNEL_LOGOUT_EVENT, LOGOUT_TOKEN_MAX_AGE
from .models import Identity, LogoutClaims, TokenSet
from .secrets import new_login_secrets
from .settings import OIDCSettings, read_oidc_settings

if TYPE_CHECKING:
    from .._async.oidc.provider import AsyncOIDCProvider
    from .._sync.oidc.provider import OIDCProvider

__all__ = [
    "BACKCHANNEL_LOGOUT_EVENT",
    "INTERACTION_ERRORS",
    "LOGOUT_TOKEN_MAX_AGE",
    "AsyncOIDCProvider",
    "Identity",
    "InvalidLogoutToken",
    "InvalidToken",
    "LogoutClaims",
    "OIDCConfigError",
    "OIDCError",
    "OIDCProvider",
    "OIDCSettings",
    "ProviderRefused",
    "ProviderUnavailable",
    "TokenSet",
    "new_login_secrets",
    "read_oidc_settings",
]

# The two faces import this package's modules, so they are loaded on first use (importing
# either face first, or this package first, then works alike).
_FACES = {
    "AsyncOIDCProvider": "coatcheck._async.oidc.provider",
    "OIDCProvider": "coatcheck._sync.oidc.provider",
}


def __getattr__(name: str) -> Any:
    module = _FACES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
