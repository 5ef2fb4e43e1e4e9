"""The session service's client, for the other services of an organisation (docs/client.md).

``ServiceClient`` (blocking) and ``AsyncServiceClient`` (asyncio) call every endpoint of the
service's JSON API with a service key; ``ClientCache`` (off by default) keeps recent active
introspections while the service's revocation stream keeps it honest. Middleware mode
(:mod:`coatcheck.client.middleware`) validates this app's cookies and bearer API tokens
through the service::

    from coatcheck.client import ServiceClient

    with ServiceClient("https://sessions.internal", key) as client:
        answer = client.introspect(token)
        if answer.active:
            print(answer.user_id, answer.expires_at)

Needs ``pip install 'coatcheck[client]'`` (httpx).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .._extras import missing_extra

try:
    import httpx as httpx
except ModuleNotFoundError as exc:
    raise missing_extra("client", "coatcheck.client needs httpx", exc) from exc

from ..core.apitokens import ApiTokenInfo
from .cache import ClientCache
from .errors import ServiceAuthError, ServiceError, ServiceUnavailable
from .models import (
    CreatedSession,
    CreatedToken,
    Introspection,
    Refreshed,
    SessionInfo,
)

if TYPE_CHECKING:
    from .._async.client import AsyncRemoteSessions, AsyncServiceClient
    from .._sync.client import RemoteSessions, ServiceClient

__all__ = [
    "ApiTokenInfo",
    "AsyncRemoteSessions",
    "AsyncServiceClient",
    "ClientCache",
    "CreatedSession",
    "CreatedToken",
    "Introspection",
    "Refreshed",
    "RemoteSessions",
    "ServiceAuthError",
    "ServiceClient",
    "ServiceError",
    "ServiceUnavailable",
    "SessionInfo",
]

# The two faces import this package's modules, so they are loaded on first use (importing
# either face first, or this package first, then works alike).
_FACES = {
    "AsyncServiceClient": "coatcheck._async.client",
    "AsyncRemoteSessions": "coatcheck._async.client",
    "ServiceClient": "coatcheck._sync.client",
    "RemoteSessions": "coatcheck._sync.client",
}


def __getattr__(name: str) -> Any:
    module = _FACES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
