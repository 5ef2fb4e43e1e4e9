"""The generated blocking face, `OIDCProvider`, end to end against the real provider: the
same protocol as the async source, through httpx.Client."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from coatcheck import FakeClock
from coatcheck.oidc import (
    BACKCHANNEL_LOGOUT_EVENT,
    InvalidLogoutToken,
    InvalidToken,
    OIDCProvider,
    OIDCSettings,
    ProviderRefused,
    ProviderUnavailable,
    TokenSet,
    new_login_secrets,
)

from .conftest import callback_params
from .provider_harness import OidcProvider


@pytest.fixture
def op(oidc_settings: OIDCSettings, clock: FakeClock) -> Iterator[OIDCProvider]:
    with OIDCProvider(oidc_settings, clock=clock) as provider:
        yield provider


def log_in(op: OIDCProvider, provider: OidcProvider, user: str) -> TokenSet:
    state, nonce, verifier = new_login_secrets()
    redirect_uri = provider.app.redirect_uri
    url = op.authorization_url(
        redirect_uri=redirect_uri, state=state, nonce=nonce, code_verifier=verifier
    )
    with httpx.Client() as browser:
        params = callback_params(provider.login(browser, url, user))
    assert params["state"] == state
    op.check_callback_iss(op.metadata(), params["iss"])
    return op.exchange_code(
        code=params["code"], redirect_uri=redirect_uri, code_verifier=verifier, nonce=nonce
    )


def test_login_refresh_and_refusals_through_the_blocking_face(
    oidc_provider: OidcProvider, op: OIDCProvider
) -> None:
    tokens = log_in(op, oidc_provider, "ivan")
    assert tokens.identity is not None and tokens.refresh_token
    assert tokens.identity.sub == "ivan"
    renewed = op.refresh(tokens.refresh_token, identity=tokens.identity)
    assert renewed.refresh_token and renewed.refresh_token != tokens.refresh_token
    with pytest.raises(ProviderRefused, match="invalid_grant"):
        op.refresh(tokens.refresh_token, identity=tokens.identity)


def test_refreshed_id_tokens_are_checked_through_the_blocking_face(
    oidc_provider: OidcProvider, op: OIDCProvider
) -> None:
    tokens = log_in(op, oidc_provider, "judy")
    assert tokens.identity is not None and tokens.refresh_token
    with (
        oidc_provider.configured(refresh_id_token_tamper="sub"),
        pytest.raises(InvalidToken, match="sub"),
    ):
        op.refresh(tokens.refresh_token, identity=tokens.identity)


def test_an_outage_is_transient_through_the_blocking_face(
    oidc_provider: OidcProvider, op: OIDCProvider
) -> None:
    tokens = log_in(op, oidc_provider, "mallory")
    assert tokens.identity is not None and tokens.refresh_token
    with oidc_provider.configured(outage=True), pytest.raises(ProviderUnavailable):
        op.refresh(tokens.refresh_token, identity=tokens.identity)
    assert op.refresh(tokens.refresh_token, identity=tokens.identity).access_token


def test_logout_tokens_and_end_session_through_the_blocking_face(
    oidc_provider: OidcProvider, op: OIDCProvider, clock: FakeClock
) -> None:
    now = int(clock())
    claims = {
        "iss": oidc_provider.issuer,
        "aud": oidc_provider.client_id,
        "iat": now,
        "jti": f"jti-{time.monotonic_ns()}",
        "sid": "s-1",
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
    }
    accepted = op.validate_logout_token(oidc_provider.sign(claims, typ="logout+jwt"))
    assert (accepted.sid, accepted.sub, accepted.exp) == ("s-1", None, None)
    with pytest.raises(InvalidLogoutToken, match="nonce"):
        op.validate_logout_token(oidc_provider.sign({**claims, "nonce": "n"}))
    url = op.end_session_url(
        id_token_hint="t", post_logout_redirect_uri="http://x.test/", state="s"
    )
    assert url is not None
    assert url.startswith(f"{oidc_provider.issuer}/session/end?")
