"""RP-initiated logout's URL and back-channel logout tokens: one the real provider delivers,
and ones it signs wrong on purpose, each test named after the OpenID conformance suite's RP
back-channel logout module it mirrors (oidcc-client-test-rp-backchannel-rpinitlogout-*)."""

from __future__ import annotations

import base64
import json
import queue
import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from coatcheck import FakeClock
from coatcheck.oidc import (
    BACKCHANNEL_LOGOUT_EVENT,
    LOGOUT_TOKEN_MAX_AGE,
    AsyncOIDCProvider,
    InvalidLogoutToken,
    LogoutClaims,
    OIDCSettings,
    TokenSet,
)

from .provider_harness import OidcProvider, SigningKey, start_provider

pytestmark = pytest.mark.anyio

Login = Callable[..., Awaitable[TokenSet]]
LEEWAY = 30.0  # OIDCSettings' default clock_leeway


def claims_for(provider: OidcProvider, now: float, **changes: Any) -> dict[str, Any]:
    """A valid logout token's claims; a change to None leaves that claim out."""
    claims: dict[str, Any] = {
        "iss": provider.issuer,
        "aud": provider.client_id,
        "iat": int(now),
        "exp": int(now) + 120,
        "jti": secrets.token_hex(16),
        "sub": "alice",
        "sid": "sid-of-alice",
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
        "ignored_claim": "logout tokens may carry claims nobody understands",
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


class Logout:
    """Signs logout tokens at the provider and validates them with the relying party."""

    def __init__(self, provider: OidcProvider, op: AsyncOIDCProvider, clock: FakeClock) -> None:
        self.provider, self.op, self.clock = provider, op, clock

    def token(
        self, key: SigningKey = "provider", header: dict[str, Any] | None = None, **changes: Any
    ) -> str:
        claims = claims_for(self.provider, self.clock(), **changes)
        return self.provider.sign(claims, key=key, **{"typ": "logout+jwt", **(header or {})})

    async def accepted(self, token: str) -> LogoutClaims:
        return await self.op.validate_logout_token(token)

    async def refused(self, token: str) -> str:
        with pytest.raises(InvalidLogoutToken) as caught:
            await self.op.validate_logout_token(token)
        return caught.value.reason


@pytest.fixture
async def logout(oidc_provider: OidcProvider, oidc_settings: OIDCSettings, clock: FakeClock) -> Any:
    async with AsyncOIDCProvider(oidc_settings, clock=clock) as op:
        yield Logout(oidc_provider, op, clock)


async def test_oidcc_client_test_rp_backchannel_rpinitlogout(
    oidc_provider: OidcProvider,
    oidc_settings: OIDCSettings,
    rp_login: Login,
    backchannel: queue.Queue[dict[str, list[str]]],
) -> None:
    """The real thing: log in, log out at the provider through end_session_url, and the
    logout token it posts to the back-channel URI is accepted and names that session."""
    async with AsyncOIDCProvider(oidc_settings) as op:
        state, nonce, verifier = (
            secrets.token_urlsafe(32),
            secrets.token_urlsafe(32),
            secrets.token_urlsafe(32),
        )
        url = await op.authorization_url(
            redirect_uri=oidc_provider.app.redirect_uri,
            state=state,
            nonce=nonce,
            code_verifier=verifier,
        )
        with httpx.Client() as browser:
            callback = oidc_provider.login(browser, url, "heidi")
            code = parse_qs(urlsplit(callback).query)["code"][0]
            tokens = await op.exchange_code(
                code=code,
                redirect_uri=oidc_provider.app.redirect_uri,
                code_verifier=verifier,
                nonce=nonce,
            )
            assert tokens.identity is not None
            end = await op.end_session_url(
                id_token_hint=tokens.id_token,
                post_logout_redirect_uri=oidc_provider.app.post_logout_redirect_uri,
                state="bye-123",
            )
            assert end is not None
            back = oidc_provider.logout(browser, end)
        assert back == f"{oidc_provider.app.post_logout_redirect_uri}?state=bye-123"
        posted = backchannel.get(timeout=10)
        claims = await op.validate_logout_token(posted["logout_token"][0])
    assert claims.iss == oidc_provider.issuer
    assert claims.sid == tokens.identity.sid
    assert claims.sub == "heidi"
    assert claims.jti


async def test_end_session_url_carries_the_hint_the_return_uri_and_state(
    oidc_provider: OidcProvider, oidc_settings: OIDCSettings
) -> None:
    async with AsyncOIDCProvider(oidc_settings) as op:
        url = await op.end_session_url(
            id_token_hint=None, post_logout_redirect_uri="http://127.0.0.1:1/out", state="s-1"
        )
    assert url is not None
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{oidc_provider.issuer}/session/end"
    assert parse_qs(parts.query) == {
        "client_id": [oidc_provider.client_id],
        "post_logout_redirect_uri": ["http://127.0.0.1:1/out"],
        "state": ["s-1"],
    }


async def test_no_end_session_url_when_the_provider_has_no_endpoint(
    make_settings: Callable[..., OIDCSettings],
) -> None:
    with start_provider(rp_initiated_logout=False) as provider:
        async with AsyncOIDCProvider(make_settings(provider)) as op:
            assert "end_session_endpoint" not in await op.metadata()
            url = await op.end_session_url(
                id_token_hint="x", post_logout_redirect_uri="http://127.0.0.1:1/out", state="s"
            )
    assert url is None


async def test_a_valid_logout_token_signed_by_the_provider(logout: Logout) -> None:
    claims = await logout.accepted(logout.token())
    assert (claims.sub, claims.sid) == ("alice", "sid-of-alice")
    assert claims.iat == int(logout.clock())
    assert claims.exp == int(logout.clock()) + 120


async def test_oidcc_client_test_rp_backchannel_rpinitlogout_alg_none(logout: Logout) -> None:
    token = logout.token(header={"alg": "none"})
    assert "'none' is not accepted" in await logout.refused(token)


async def test_oidcc_client_test_rp_backchannel_rpinitlogout_wrong_alg(logout: Logout) -> None:
    """Signed with ES256 (an unpublished EC key claiming the provider's kid) instead of the
    RS256 the provider uses; and HS256 keyed with the client secret."""
    assert "'ES256' is not accepted" in await logout.refused(logout.token("forged-ec"))
    assert "'HS256' is not accepted" in await logout.refused(logout.token("client-secret"))


async def test_oidcc_client_test_rp_backchannel_rpinitlogout_wrong_iss(logout: Logout) -> None:
    assert "iss" in await logout.refused(logout.token(iss="https://other-issuer.example"))


async def test_oidcc_client_test_rp_backchannel_rpinitlogout_wrong_aud(logout: Logout) -> None:
    assert "aud" in await logout.refused(logout.token(aud="another-client"))
    assert "aud" in await logout.refused(logout.token(aud=None))
    # Several audiences are fine as long as this client is one of them.
    await logout.accepted(logout.token(aud=["another-client", logout.provider.client_id]))


async def test_oidcc_client_test_rp_backchannel_rpinitlogout_no_event(logout: Logout) -> None:
    assert "event" in await logout.refused(logout.token(events=None))


async def test_oidcc_client_test_rp_backchannel_rpinitlogout_wrong_event(logout: Logout) -> None:
    wrong = {"http://schemas.openid.net/event/foobar": {}}
    assert "event" in await logout.refused(logout.token(events=wrong))
    assert "JSON object" in await logout.refused(
        logout.token(events={BACKCHANNEL_LOGOUT_EVENT: "yes"})
    )
    assert "event" in await logout.refused(logout.token(events=[BACKCHANNEL_LOGOUT_EVENT]))


async def test_oidcc_client_test_rp_backchannel_rpinitlogout_with_nonce(logout: Logout) -> None:
    assert "nonce" in await logout.refused(logout.token(nonce="n-1"))


async def test_a_forged_signature_is_refused(logout: Logout) -> None:
    """An RSA key the provider never published, under the provider key's kid."""
    assert await logout.refused(logout.token("forged")) == "bad signature"


async def test_a_token_of_another_type_is_refused(logout: Logout) -> None:
    for typ in ("at+jwt", "secevent+jwt", "id_token"):
        assert "typ" in await logout.refused(logout.token(header={"typ": typ}))
    for typ in ("logout+jwt", "application/logout+jwt", "JWT", None):
        await logout.accepted(logout.token(header={"typ": typ}))


async def test_sid_or_sub_must_name_the_session(logout: Logout) -> None:
    assert "neither sid nor sub" in await logout.refused(logout.token(sid=None, sub=None))
    assert (await logout.accepted(logout.token(sub=None))).sub is None
    assert (await logout.accepted(logout.token(sid=None))).sid is None
    assert "sid" in await logout.refused(logout.token(sid=7))
    assert "sub" in await logout.refused(logout.token(sub=""))


async def test_a_jti_is_required(logout: Logout) -> None:
    assert "jti" in await logout.refused(logout.token(jti=None))
    assert "jti" in await logout.refused(logout.token(jti="x" * 1025))


async def test_iat_neither_in_the_future_nor_too_old(logout: Logout) -> None:
    now = logout.clock()
    reason = await logout.refused(logout.token(iat=int(now + LEEWAY + 60), exp=None))
    assert "future" in reason or "not valid yet" in reason  # joserfc's words differ by release
    await logout.accepted(logout.token(iat=int(now + LEEWAY - 1)))
    too_old = int(now - LOGOUT_TOKEN_MAX_AGE - LEEWAY - 1)
    assert "issued more than" in await logout.refused(logout.token(iat=too_old, exp=None))
    await logout.accepted(logout.token(iat=int(now - LOGOUT_TOKEN_MAX_AGE + 1), exp=None))
    assert "iat" in await logout.refused(logout.token(iat=None))
    assert "iat" in await logout.refused(logout.token(iat="yesterday"))


async def test_an_expired_logout_token_is_refused(logout: Logout) -> None:
    now = logout.clock()
    assert "expired" in await logout.refused(
        logout.token(iat=int(now - 200), exp=int(now - LEEWAY - 1))
    )


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not-a-token",
        "a.b",
        "a.b.c.d.e",
        "!!.??.**",
        "x" * 20_000,
    ],
)
async def test_garbage_is_refused_clearly(logout: Logout, token: str) -> None:
    reason = await logout.refused(token)
    assert reason in ("no token", "not a signed JWT (compact JWS)") or "longer than" in reason


async def test_a_payload_that_is_not_an_object_is_refused(logout: Logout) -> None:
    """Correctly signed, but the payload is a JSON array."""
    token = logout.token()
    header, _payload, _sig = token.split(".")
    array = base64.urlsafe_b64encode(json.dumps([1, 2]).encode()).rstrip(b"=").decode()
    assert await logout.refused(f"{header}.{array}.{_sig}") in (
        "bad signature",
        "the payload is not a JSON object",
    )
