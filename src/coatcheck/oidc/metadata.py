"""The provider's discovery document: what it must say before coatcheck trusts it, and how
long a fetched copy is kept (``metadata_ttl``, over a clock: pure, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from authlib.oidc.discovery import OpenIDProviderMetadata

from ..core.clock import Clock
from .errors import OIDCConfigError
from .settings import url_problem

REQUIRED_ENDPOINTS = ("authorization_endpoint", "token_endpoint", "jwks_uri")
OPTIONAL_ENDPOINTS = ("end_session_endpoint", "userinfo_endpoint", "revocation_endpoint")
# Authlib's checks of the members that are not URLs (its URL checks would refuse a
# loopback test provider on older releases; coatcheck checks URLs itself, like the issuer).
AUTHLIB_CHECKS = (
    "validate_response_types_supported",
    "validate_subject_types_supported",
    "validate_id_token_signing_alg_values_supported",
)


def checked_metadata(document: Mapping[str, Any], issuer: str) -> dict[str, Any]:
    """The discovery document once it fits ``issuer`` (exactly: OpenID Connect Discovery 1.0,
    section 4.3) and the code flow; :class:`OIDCConfigError` saying what does not."""
    found = document.get("issuer")
    if found != issuer:
        shown = found if isinstance(found, str) and len(found) <= 200 else "?"
        raise OIDCConfigError(
            f"the provider's discovery document names issuer {shown!r}, not {issuer!r} as "
            "configured: the issuer setting must be exactly the provider's issuer",
            field="issuer",
        )
    for name in (*REQUIRED_ENDPOINTS, *OPTIONAL_ENDPOINTS):
        url = document.get(name)
        if url is None and name in OPTIONAL_ENDPOINTS:
            continue
        problem = url_problem(url) if isinstance(url, str) else "is missing"
        if problem:
            raise OIDCConfigError(f"the provider's {name} {problem}")
    metadata = OpenIDProviderMetadata(dict(document))
    for check in AUTHLIB_CHECKS:
        try:
            getattr(metadata, check)()
        except ValueError as exc:
            raise OIDCConfigError(f"the provider's discovery document: {exc}") from None
    if "code" not in document["response_types_supported"]:
        raise OIDCConfigError("the provider does not offer the authorization code flow")
    methods = document.get("code_challenge_methods_supported")
    if isinstance(methods, list) and "S256" not in methods:
        raise OIDCConfigError("the provider does not offer PKCE with S256")
    return dict(document)


def issuer_in_callback_required(metadata: Mapping[str, Any]) -> bool:
    """Whether the provider promises the RFC 9207 ``iss`` authorization response parameter."""
    return metadata.get("authorization_response_iss_parameter_supported") is True


class Expiring:
    """One fetched document and its age: fresh for ``ttl`` seconds of ``clock``."""

    def __init__(self, ttl: float, clock: Clock) -> None:
        self.ttl = ttl
        self.clock = clock
        self.value: dict[str, Any] | None = None
        self.fetched_at = float("-inf")

    def fresh(self) -> dict[str, Any] | None:
        if self.value is not None and self.clock() - self.fetched_at < self.ttl:
            return self.value
        return None

    def store(self, value: dict[str, Any]) -> None:
        self.value = value
        self.fetched_at = self.clock()
