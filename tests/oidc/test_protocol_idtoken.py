"""ID-token validation at login, against ID tokens the real provider returns spoiled (the
harness's `id_token_tamper`): each test is named after the OpenID conformance suite's RP
test module it mirrors (oidcc-client-test-*), where there is one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from coatcheck.oidc import AsyncOIDCProvider, InvalidToken, OIDCSettings, TokenSet

from .provider_harness import OidcProvider, Tamper, start_provider

pytestmark = pytest.mark.anyio

Login = Callable[..., Awaitable[TokenSet]]


async def login_with(
    provider: OidcProvider, settings: OIDCSettings, rp_login: Login, tamper: Tamper
) -> TokenSet:
    with provider.configured(id_token_tamper=tamper):
        async with AsyncOIDCProvider(settings) as op:
            return await rp_login(op, provider=provider)


async def refused(
    provider: OidcProvider, settings: OIDCSettings, rp_login: Login, tamper: Tamper
) -> str:
    with pytest.raises(InvalidToken) as caught:
        await login_with(provider, settings, rp_login, tamper)
    return caught.value.reason


async def test_oidcc_client_test_invalid_iss(
    oidc_provider: OidcProvider, oidc_settings: OIDCSettings, rp_login: Login
) -> None:
    assert "iss" in await refused(oidc_provider, oidc_settings, rp_login, "iss")


async def test_oidcc_client_test_invalid_aud(
    oidc_provider: OidcProvider, oidc_settings: OIDCSettings, rp_login: Login
) -> None:
    assert "aud" in await refused(oidc_provider, oidc_settings, rp_login, "aud")


async def test_oidcc_client_test_missing_aud(
    oidc_provider: OidcProvider, oidc_settings: OIDCSettings, rp_login: Login
) -> None:
    assert "aud" in await refused(oidc_provider, oidc_settings, rp_login, "missing-aud")


async def test_several_audiences_need_an_azp_naming_this_client(
    oidc_provider: OidcProvider, oidc_settings: OIDCSettings, rp_login: Login
) -> None:
    assert "azp" in await refused(oidc_provider, oidc_settings, rp_login, "azp")


async def test_oidcc_client_test_missing_iat(
    oidc_provider: OidcProvider, oidc_settings: OIDCSettings, rp_login: Login
) -> None:
    assert "iat" in await refused(oidc_provider, oidc_settings, rp_login, "missing-iat")


async def test_oidcc_client_test_missing_sub(
    oidc_provider: OidcProvider, oidc_settings: OIDCSettings, rp_login: Login
) -> None:
    assert "sub" in await refused(oidc_provider, oidc_settings, rp_login, "missing-sub")


async def test_oidcc_client_test_nonce_invalid(
    oidc_provider: OidcProvider, oidc_settings: OIDCSettings, rp_login: Login
) -> None:
    assert "nonce" in await refused(oidc_provider, oidc_settings, rp_login, "nonce")


async def test_an_expired_id_token_is_refused(
    oidc_provider: OidcProvider, oidc_settings: OIDCSettings, rp_login: Login
) -> None:
    assert "expired" in await refused(oidc_provider, oidc_settings, rp_login, "expired")


async def test_an_id_token_issued_in_the_future_is_refused(
    oidc_provider: OidcProvider, oidc_settings: OIDCSettings, rp_login: Login
) -> None:
    reason = await refused(oidc_provider, oidc_settings, rp_login, "iat-future")
    assert "future" in reason or "not valid yet" in reason  # joserfc's words differ by release


async def test_oidcc_client_test_idtoken_sig_none(
    oidc_provider: OidcProvider, oidc_settings: OIDCSettings, rp_login: Login
) -> None:
    reason = await refused(oidc_provider, oidc_settings, rp_login, "sig-none")
    assert "'none' is not accepted" in reason


async def test_oidcc_client_test_invalid_sig_rs256(
    oidc_provider: OidcProvider, oidc_settings: OIDCSettings, rp_login: Login
) -> None:
    """Signed by a key the provider never published, under the provider key's kid."""
    assert await refused(oidc_provider, oidc_settings, rp_login, "sig-forged") == "bad signature"


async def test_oidcc_client_test_invalid_sig_hs256(
    oidc_provider: OidcProvider, oidc_settings: OIDCSettings, rp_login: Login
) -> None:
    """HMAC keyed with the client secret: never accepted for ID tokens."""
    reason = await refused(oidc_provider, oidc_settings, rp_login, "sig-hs256")
    assert "'HS256' is not accepted" in reason


async def test_oidcc_client_test_invalid_sig_es256(
    oidc_provider: OidcProvider, oidc_settings: OIDCSettings, rp_login: Login
) -> None:
    """ES256 by an unpublished key that claims the provider's RSA kid: the provider
    advertises RS256 only for ID tokens, so the algorithm alone is refused."""
    reason = await refused(oidc_provider, oidc_settings, rp_login, "sig-es256")
    assert "'ES256' is not accepted" in reason


async def test_oidcc_client_test_kid_absent_single_jwks(
    oidc_provider: OidcProvider, oidc_settings: OIDCSettings, rp_login: Login
) -> None:
    """No kid, one key in the provider's JWKS: that key is the one."""
    tokens = await login_with(oidc_provider, oidc_settings, rp_login, "kid-absent")
    assert tokens.identity is not None
    assert tokens.identity.sub == "alice"


async def test_oidcc_client_test_idtoken_sig_rs256(
    oidc_provider: OidcProvider, oidc_settings: OIDCSettings, rp_login: Login
) -> None:
    tokens = await login_with(oidc_provider, oidc_settings, rp_login, "")
    assert tokens.identity is not None
    assert tokens.identity.iss == oidc_provider.issuer


async def test_oidcc_client_test_kid_absent_multiple_jwks(
    make_settings: Callable[..., OIDCSettings], rp_login: Login
) -> None:
    """No kid and two RSA keys published: the suite allows refusing, and coatcheck does
    rather than guess."""
    with start_provider() as provider:
        provider.rotate_key()
        with pytest.raises(InvalidToken, match="no key of the provider"):
            await login_with(provider, make_settings(provider), rp_login, "kid-absent")
