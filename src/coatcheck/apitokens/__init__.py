"""API tokens for scripts and other systems: ``cc_`` + random + checksum, stored hashed in the
session store (records of kind ``api``), with a name, scopes, optional expiry, last-used time
and revocation. Sent as ``Authorization: Bearer``; docs/api-tokens.md."""

from __future__ import annotations

from .._async.apitokens import AsyncApiTokens
from .._async.web.bearer import AsyncBearerVerifier, AsyncLocalBearerVerifier
from .._sync.apitokens import ApiTokens
from .._sync.web.bearer import BearerVerifier, LocalBearerVerifier
from ..core.apitokens import (
    API_TOKEN_KEY,
    API_TOKEN_LENGTH,
    API_TOKEN_PREFIX,
    MAX_SCOPES,
    NO_EXPIRY_HORIZON,
    ApiTokenError,
    ApiTokenInfo,
    is_api_token,
    looks_like_api_token,
)
from ..core.session import BearerSession, SessionReadOnly, bearer_session

__all__ = [
    "API_TOKEN_KEY",
    "API_TOKEN_LENGTH",
    "API_TOKEN_PREFIX",
    "MAX_SCOPES",
    "NO_EXPIRY_HORIZON",
    "ApiTokenError",
    "ApiTokenInfo",
    "ApiTokens",
    "AsyncApiTokens",
    "AsyncBearerVerifier",
    "AsyncLocalBearerVerifier",
    "BearerSession",
    "BearerVerifier",
    "LocalBearerVerifier",
    "SessionReadOnly",
    "bearer_session",
    "is_api_token",
    "looks_like_api_token",
]
