"""The authorization code flow against the real provider: the URL (PKCE S256, state, nonce),
the RFC 9207 iss check, the code exchange and how the token endpoint's refusals surface."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from coatcheck import FakeClock
from coatcheck.oidc import (
    AsyncOIDCProvider,
    InvalidToken,
    OIDCSettings,
    ProviderRefused,
    TokenSet,
    new_login_secrets,
)
from coatcheck.oidc.answers import basic_auth

from .conftest import callback_params
from .provider_harness import OidcProvider

pytestmark = pytest.mark.anyio

Login = Callable[..., Awaitable[TokenSet]]


async def test_the_authorization_url_asks_for_the_code_flow_with_pkce(
    oidc_provider: OidcProvider, oidc_settings: OIDCSettings
) -> None:
    state, nonce, verifier = new_login_secrets()
    async with AsyncOIDCProvider(oidc_settings) as op:
        url = await op.authorization_url(
            redirect_uri=oidc_provider.app.redirect_uri,
            state=state,
            nonce=nonce,
            code_verifier=verifier,
            prompt="none",
        )
        endpoint = (await op.metadata())["authorization_endpoint"]
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == endpoint
    params = {name: values for name, values in parse_qs(parts.query).items()}
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    assert params == {
        "response_type": ["code"],
        "client_id": [oidc_provider.client_id],
        "redirect_uri": [oidc_provider.app.redirect_uri],
        "scope": ["openid profile email"],
        "state": [state],
        "nonce": [nonce],
        "code_challenge": [challenge.decode()],
        "code_challenge_method": ["S256"],
        "prompt": ["none"],
    }
    assert verifier not in url


async def test_a_malformed_code_verifier_is_refused(oidc_settings: OIDCSettings) -> None:
    async with AsyncOIDCProvider(oidc_settings) as op:
        with pytest.raises(ValueError, match="code_verifier"):
            await op.authorization_url(
                redirect_uri="http://127.0.0.1/cb", state="s", nonce="n", code_verifier="short"
            )


async def test_oidcc_client_test_login_and_code_exchange(
    oidc_provider: OidcProvider, oidc_settings: OIDCSettings, rp_login: Login, clock: FakeClock
) -> None:
    """The happy path of oidcc-client-test: login, code exchange, a validated ID token."""
    async with AsyncOIDCProvider(oidc_settings, clock=clock) as op:
        before = oidc_provider.counters().grant("authorization_code")
        tokens = await rp_login(op, "erin")
    assert oidc_provider.counters().grant("authorization_code") == before + 1
    assert tokens.token_type.lower() == "bearer"
    assert tokens.expires_at == clock() + 5
    assert tokens.refresh_token and tokens.id_token and tokens.access_token
    assert tokens.scope is not None and "openid" in tokens.scope.split()
    identity = tokens.identity
    assert identity is not None
    assert (identity.iss, identity.sub) == (oidc_provider.issuer, "erin")
    assert identity.sid
    assert identity.claims["aud"] == oidc_provider.client_id
    for secret in (tokens.access_token, tokens.refresh_token, tokens.id_token):
        assert secret not in repr(tokens)


async def test_rfc_9207_the_callback_iss_must_be_the_issuer(
    oidc_provider: OidcProvider, oidc_settings: OIDCSettings
) -> None:
    async with AsyncOIDCProvider(oidc_settings) as op:
        metadata = await op.metadata()
        assert metadata["authorization_response_iss_parameter_supported"] is True
        op.check_callback_iss(metadata, oidc_provider.issuer)
        with pytest.raises(InvalidToken, match="another issuer"):
            op.check_callback_iss(metadata, "https://attacker.example")
        with pytest.raises(InvalidToken, match="lacks iss"):
            op.check_callback_iss(metadata, None)
        unadvertised = {**metadata, "authorization_response_iss_parameter_supported": False}
        op.check_callback_iss(unadvertised, None)
        with pytest.raises(InvalidToken, match="another issuer"):
            op.check_callback_iss(unadvertised, "https://attacker.example")


async def _callback(
    op: AsyncOIDCProvider, provider: OidcProvider
) -> tuple[dict[str, str], str, str]:
    state, nonce, verifier = new_login_secrets()
    url = await op.authorization_url(
        redirect_uri=provider.app.redirect_uri, state=state, nonce=nonce, code_verifier=verifier
    )
    with httpx.Client() as browser:
        return callback_params(provider.login(browser, url, "frank")), nonce, verifier


async def test_a_wrong_code_verifier_is_refused_by_the_provider(
    oidc_provider: OidcProvider, oidc_settings: OIDCSettings
) -> None:
    async with AsyncOIDCProvider(oidc_settings) as op:
        params, nonce, _verifier = await _callback(op, oidc_provider)
        _, _, other = new_login_secrets()
        with pytest.raises(ProviderRefused) as caught:
            await op.exchange_code(
                code=params["code"],
                redirect_uri=oidc_provider.app.redirect_uri,
                code_verifier=other,
                nonce=nonce,
            )
    assert caught.value.error == "invalid_grant"


async def test_a_code_is_redeemed_once(
    oidc_provider: OidcProvider, oidc_settings: OIDCSettings
) -> None:
    async with AsyncOIDCProvider(oidc_settings) as op:
        params, nonce, verifier = await _callback(op, oidc_provider)
        redeem = {
            "code": params["code"],
            "redirect_uri": oidc_provider.app.redirect_uri,
            "code_verifier": verifier,
            "nonce": nonce,
        }
        await op.exchange_code(**redeem)
        with pytest.raises(ProviderRefused) as caught:
            await op.exchange_code(**redeem)
    assert caught.value.error == "invalid_grant"
    assert params["code"] not in str(caught.value)


async def test_a_wrong_client_secret_is_refused(
    oidc_provider: OidcProvider, make_settings: Callable[..., OIDCSettings]
) -> None:
    settings = make_settings(oidc_provider, client_secret="not-the-secret")
    async with AsyncOIDCProvider(settings) as op:
        params, nonce, verifier = await _callback(op, oidc_provider)
        with pytest.raises(ProviderRefused) as caught:
            await op.exchange_code(
                code=params["code"],
                redirect_uri=oidc_provider.app.redirect_uri,
                code_verifier=verifier,
                nonce=nonce,
            )
    assert caught.value.error == "invalid_client"
    assert "not-the-secret" not in str(caught.value)


def test_client_secret_basic_form_encodes_before_base64() -> None:
    """RFC 6749, 2.3.1: id and secret are form-urlencoded, then joined by ':'."""
    header = basic_auth("my client", "p:w+/é")
    scheme, _, encoded = header.partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode() == "my+client:p%3Aw%2B%2F%C3%A9"
