"""Refresh against the real provider: rotation, refusals once the provider's session ended,
the checks of a refreshed ID token (named after the OpenID conformance suite's
oidcc-client-test-refresh-token modules) and a provider that is down or slow."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from coatcheck import FakeClock
from coatcheck.oidc import (
    AsyncOIDCProvider,
    InvalidToken,
    OIDCSettings,
    ProviderRefused,
    ProviderUnavailable,
    TokenSet,
)

from .provider_harness import OidcProvider, Tamper, start_provider

pytestmark = pytest.mark.anyio

Login = Callable[..., Awaitable[TokenSet]]


async def test_oidcc_client_test_refresh_token(
    oidc_provider: OidcProvider, oidc_settings: OIDCSettings, rp_login: Login, clock: FakeClock
) -> None:
    async with AsyncOIDCProvider(oidc_settings, clock=clock) as op:
        tokens = await rp_login(op, "grace")
        assert tokens.identity is not None and tokens.refresh_token
        before = oidc_provider.counters()
        clock.advance(4)
        renewed = await op.refresh(tokens.refresh_token, identity=tokens.identity)
    assert oidc_provider.counters().grant("refresh_token") == before.grant("refresh_token") + 1
    assert renewed.access_token != tokens.access_token
    assert renewed.expires_at == clock() + 5
    # Rotation is on: a new refresh token, and a new ID token of the same person and session.
    assert renewed.refresh_token and renewed.refresh_token != tokens.refresh_token
    assert renewed.identity is not None
    assert (renewed.identity.sub, renewed.identity.sid) == ("grace", tokens.identity.sid)


async def test_a_replayed_refresh_token_is_refused_and_counted(
    oidc_provider: OidcProvider, oidc_settings: OIDCSettings, rp_login: Login
) -> None:
    async with AsyncOIDCProvider(oidc_settings) as op:
        tokens = await rp_login(op)
        assert tokens.identity is not None and tokens.refresh_token
        renewed = await op.refresh(tokens.refresh_token, identity=tokens.identity)
        before = oidc_provider.counters()
        with pytest.raises(ProviderRefused) as caught:
            await op.refresh(tokens.refresh_token, identity=tokens.identity)
        assert caught.value.error == "invalid_grant"
        assert tokens.refresh_token not in str(caught.value)
        after = oidc_provider.counters()
        assert after.refresh_replays == before.refresh_replays + 1
        assert after.error("refresh_token", "invalid_grant") == (
            before.error("refresh_token", "invalid_grant") + 1
        )
        # The replay revoked the chain: the rotated token is dead too.
        assert renewed.refresh_token
        with pytest.raises(ProviderRefused, match="invalid_grant"):
            await op.refresh(renewed.refresh_token, identity=tokens.identity)


async def test_refresh_after_the_provider_session_ended_is_refused(
    oidc_provider: OidcProvider, oidc_settings: OIDCSettings, rp_login: Login
) -> None:
    async with AsyncOIDCProvider(oidc_settings) as op:
        tokens = await rp_login(op)
        assert tokens.identity is not None and tokens.refresh_token
        assert oidc_provider.end_sessions() >= 1
        with pytest.raises(ProviderRefused) as caught:
            await op.refresh(tokens.refresh_token, identity=tokens.identity)
    assert caught.value.error == "invalid_grant"


async def test_without_rotation_the_refresh_token_stays(
    make_settings: Callable[..., OIDCSettings], rp_login: Login
) -> None:
    with start_provider(rotate_refresh_tokens=False) as provider:
        async with AsyncOIDCProvider(make_settings(provider)) as op:
            tokens = await rp_login(op, provider=provider)
            assert tokens.identity is not None and tokens.refresh_token
            for _ in range(2):
                renewed = await op.refresh(tokens.refresh_token, identity=tokens.identity)
                assert renewed.refresh_token == tokens.refresh_token


async def refused_refresh(
    provider: OidcProvider, settings: OIDCSettings, rp_login: Login, tamper: Tamper
) -> str:
    async with AsyncOIDCProvider(settings) as op:
        tokens = await rp_login(op)
        assert tokens.identity is not None and tokens.refresh_token
        with (
            provider.configured(refresh_id_token_tamper=tamper),
            pytest.raises(InvalidToken) as caught,
        ):
            await op.refresh(tokens.refresh_token, identity=tokens.identity)
    return caught.value.reason


async def test_oidcc_client_test_refresh_token_invalid_issuer(
    oidc_provider: OidcProvider, oidc_settings: OIDCSettings, rp_login: Login
) -> None:
    assert "iss" in await refused_refresh(oidc_provider, oidc_settings, rp_login, "iss")


async def test_oidcc_client_test_refresh_token_invalid_sub(
    oidc_provider: OidcProvider, oidc_settings: OIDCSettings, rp_login: Login
) -> None:
    assert "sub" in await refused_refresh(oidc_provider, oidc_settings, rp_login, "sub")


async def test_oidcc_client_test_refresh_token_invalid_aud(
    oidc_provider: OidcProvider, oidc_settings: OIDCSettings, rp_login: Login
) -> None:
    assert "aud" in await refused_refresh(oidc_provider, oidc_settings, rp_login, "aud")


async def test_oidcc_client_test_refresh_token_invalid_azp(
    oidc_provider: OidcProvider, oidc_settings: OIDCSettings, rp_login: Login
) -> None:
    assert "azp" in await refused_refresh(oidc_provider, oidc_settings, rp_login, "azp")


async def test_a_refreshed_id_token_with_a_bad_signature_is_refused(
    oidc_provider: OidcProvider, oidc_settings: OIDCSettings, rp_login: Login
) -> None:
    reason = await refused_refresh(oidc_provider, oidc_settings, rp_login, "sig-forged")
    assert reason == "bad signature"


async def test_an_outage_is_transient_and_the_refresh_token_survives_it(
    oidc_provider: OidcProvider, oidc_settings: OIDCSettings, rp_login: Login
) -> None:
    async with AsyncOIDCProvider(oidc_settings) as op:
        tokens = await rp_login(op)
        assert tokens.identity is not None and tokens.refresh_token
        with oidc_provider.configured(outage=True):
            with pytest.raises(ProviderUnavailable, match="HTTP 503") as caught:
                await op.refresh(tokens.refresh_token, identity=tokens.identity)
            assert tokens.refresh_token not in str(caught.value)
        renewed = await op.refresh(tokens.refresh_token, identity=tokens.identity)
    assert renewed.access_token


async def test_a_token_endpoint_slower_than_the_timeout_is_transient(
    oidc_provider: OidcProvider, make_settings: Callable[..., OIDCSettings], rp_login: Login
) -> None:
    async with AsyncOIDCProvider(make_settings(oidc_provider, http_timeout=0.5)) as op:
        tokens = await rp_login(op)
        assert tokens.identity is not None and tokens.refresh_token
        with (
            oidc_provider.configured(token_delay_ms=2000),
            pytest.raises(ProviderUnavailable, match="timed out"),
        ):
            await op.refresh(tokens.refresh_token, identity=tokens.identity)
