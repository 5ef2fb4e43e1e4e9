"""The OpenID Provider the OIDC tests run against: one per test session, on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .provider_harness import OidcProvider, start_provider


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[OidcProvider]:
    """The shared provider (5-s access tokens, rotating refresh tokens). Tests that need other
    TTLs or switches start their own with `start_provider(...)`."""
    with start_provider() as provider:
        yield provider
