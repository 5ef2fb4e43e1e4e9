"""The provider harness itself: what the OIDC work will rely on, checked against the real thing."""

from __future__ import annotations

import base64
import hashlib
import queue
import secrets
import threading
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet

from .provider_harness import OidcProvider, start_provider

POLL_LIMIT = 100  # introspection polls, 0.1 s apart, before a 1-s token must have expired


def authorization_url(
    provider: OidcProvider, *, nonce: str, verifier: str, prompt: str | None = None
) -> str:
    """The code flow with PKCE (S256), written out by hand: the harness is checked on its own,
    apart from coatcheck's relying party."""
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    query = {
        "client_id": provider.client_id,
        "response_type": "code",
        "scope": "openid profile email",
        "redirect_uri": provider.app.redirect_uri,
        "state": secrets.token_urlsafe(16),
        "nonce": nonce,
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
        **({"prompt": prompt} if prompt else {}),
    }
    return f"{provider.discovery()['authorization_endpoint']}?{urlencode(query)}"


def fetch_token(provider: OidcProvider, callback: str, verifier: str) -> dict[str, Any]:
    code = parse_qs(urlsplit(callback).query)["code"][0]
    response = httpx.post(
        provider.discovery()["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": provider.app.redirect_uri,
            "code_verifier": verifier,
        },
        auth=(provider.client_id, provider.client_secret),
    )
    response.raise_for_status()
    return dict(response.json())


def log_in(
    provider: OidcProvider, user: str = "alice", browser: httpx.Client | None = None
) -> tuple[dict[str, Any], str]:
    """The whole code flow with PKCE in `browser` (holding the provider's session cookie) or
    a throwaway client; returns the token response and the nonce sent."""
    if browser is None:
        with httpx.Client() as throwaway:
            return log_in(provider, user, throwaway)
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    callback = provider.login(
        browser, authorization_url(provider, nonce=nonce, verifier=verifier), user
    )
    return fetch_token(provider, callback, verifier), nonce


def introspect(provider: OidcProvider, token: str) -> dict[str, Any]:
    response = httpx.post(
        provider.discovery()["introspection_endpoint"],
        data={"token": token},
        auth=(provider.client_id, provider.client_secret),
    )
    response.raise_for_status()
    return dict(response.json())


def refresh(provider: OidcProvider, refresh_token: str) -> httpx.Response:
    return httpx.post(
        f"{provider.issuer}/token",  # not from discovery: it must work during an outage too
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=(provider.client_id, provider.client_secret),
    )


def test_discovery_has_what_the_oidc_issue_needs(oidc_provider: OidcProvider) -> None:
    meta = oidc_provider.discovery()
    assert meta["issuer"] == oidc_provider.issuer
    assert meta["issuer"].startswith("http://127.0.0.1:")
    assert meta["end_session_endpoint"] == f"{oidc_provider.issuer}/session/end"
    assert meta["backchannel_logout_supported"] is True
    assert meta["backchannel_logout_session_supported"] is True
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert "S256" in meta["code_challenge_methods_supported"]
    for endpoint in ("token", "introspection", "revocation", "jwks_uri", "userinfo"):
        key = endpoint if endpoint == "jwks_uri" else f"{endpoint}_endpoint"
        assert meta[key].startswith(oidc_provider.issuer + "/")


def test_login_without_a_browser_returns_code_state_and_iss(oidc_provider: OidcProvider) -> None:
    query = {
        "client_id": oidc_provider.client_id,
        "response_type": "code",
        "scope": "openid",
        "redirect_uri": oidc_provider.app.redirect_uri,
        "state": "s-123",
    }
    url = f"{oidc_provider.discovery()['authorization_endpoint']}?{urlencode(query)}"
    with httpx.Client() as browser:
        callback = oidc_provider.login(browser, url, "alice")
    parts = urlsplit(callback)
    params = parse_qs(parts.query)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == oidc_provider.app.redirect_uri
    assert params["state"] == ["s-123"]
    assert params["iss"] == [oidc_provider.issuer]
    assert len(params["code"][0]) > 20


def test_code_exchanges_for_tokens_with_a_refresh_token(oidc_provider: OidcProvider) -> None:
    token, nonce = log_in(oidc_provider, "bob")
    assert token["token_type"].lower() == "bearer"
    assert token["expires_in"] == 5
    assert token["refresh_token"]
    jwks = KeySet.import_key_set(httpx.get(oidc_provider.discovery()["jwks_uri"]).json())
    claims = jwt.decode(token["id_token"], jwks).claims
    assert claims["iss"] == oidc_provider.issuer
    assert claims["aud"] == oidc_provider.client_id
    assert claims["sub"] == "bob"
    assert claims["nonce"] == nonce
    assert claims["sid"]


def test_refresh_rotates_and_a_replayed_refresh_token_is_refused(
    oidc_provider: OidcProvider,
) -> None:
    token, _ = log_in(oidc_provider)
    first = refresh(oidc_provider, token["refresh_token"])
    assert first.status_code == 200
    assert first.json()["refresh_token"] != token["refresh_token"]
    replay = refresh(oidc_provider, token["refresh_token"])
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    # The replay revoked the whole chain, the rotated token included.
    assert refresh(oidc_provider, first.json()["refresh_token"]).json()["error"] == "invalid_grant"


def test_rotation_can_be_switched_off() -> None:
    with start_provider(rotate_refresh_tokens=False) as provider:
        token, _ = log_in(provider)
        for _ in range(2):
            again = refresh(provider, token["refresh_token"])
            assert again.status_code == 200
            assert again.json()["refresh_token"] == token["refresh_token"]


def test_access_token_expires_after_its_ttl_by_the_providers_clock() -> None:
    with start_provider(access_token_ttl=1) as provider:
        token, _ = log_in(provider)
        # Not "active at first": on a loaded machine one second may be gone before a look.
        assert token["expires_in"] == 1
        for _ in range(POLL_LIMIT):
            if not introspect(provider, token["access_token"])["active"]:
                break
            threading.Event().wait(0.1)
        else:
            pytest.fail(f"the 1-s access token was still active after {POLL_LIMIT} polls")


def test_ended_provider_sessions_refuse_refresh_and_silent_login(
    oidc_provider: OidcProvider,
) -> None:
    verifier = secrets.token_urlsafe(48)
    with httpx.Client() as browser:
        token, _ = log_in(oidc_provider, "carol", browser)
        silent = authorization_url(oidc_provider, nonce="n2", verifier=verifier, prompt="none")
        assert "code" in parse_qs(urlsplit(oidc_provider.login(browser, silent, "-")).query)

        assert oidc_provider.end_sessions() >= 1

        refused = refresh(oidc_provider, token["refresh_token"])
        assert refused.status_code == 400
        assert refused.json()["error"] == "invalid_grant"
        after = parse_qs(urlsplit(oidc_provider.login(browser, silent, "-")).query)
        assert after["error"] == ["login_required"]


def test_rp_initiated_logout_delivers_the_logout_token_to_loopback(
    oidc_provider: OidcProvider, backchannel: queue.Queue[dict[str, list[str]]]
) -> None:
    meta = oidc_provider.discovery()
    jwks = KeySet.import_key_set(httpx.get(meta["jwks_uri"]).json())
    with httpx.Client() as browser:
        token, _ = log_in(oidc_provider, "dave", browser)
        sid = jwt.decode(token["id_token"], jwks).claims["sid"]
        page = browser.get(
            meta["end_session_endpoint"],
            params={
                "id_token_hint": token["id_token"],
                "post_logout_redirect_uri": oidc_provider.app.post_logout_redirect_uri,
                "state": "bye",
            },
        )
        assert page.status_code == 200
        xsrf = page.text.split('name="xsrf" value="', 1)[1].split('"', 1)[0]
        done = browser.post(
            f"{oidc_provider.issuer}/session/end/confirm", data={"xsrf": xsrf, "logout": "yes"}
        )
    assert done.status_code in (302, 303)
    assert done.headers["location"] == f"{oidc_provider.app.post_logout_redirect_uri}?state=bye"
    try:
        posted = backchannel.get(timeout=10)
    except queue.Empty:
        pytest.fail(f"no logout token arrived:\n{oidc_provider.log_path.read_text()}")
    logout = jwt.decode(posted["logout_token"][0], jwks)
    assert logout.header["typ"] == "logout+jwt"
    assert logout.claims["iss"] == oidc_provider.issuer
    assert logout.claims["aud"] == oidc_provider.client_id
    assert logout.claims["sid"] == sid
    assert "http://schemas.openid.net/event/backchannel-logout" in logout.claims["events"]
    assert "nonce" not in logout.claims


def test_outage_answers_503_and_keeps_the_providers_state(oidc_provider: OidcProvider) -> None:
    token, _ = log_in(oidc_provider)
    with oidc_provider.configured(outage=True):
        assert refresh(oidc_provider, token["refresh_token"]).status_code == 503
    assert refresh(oidc_provider, token["refresh_token"]).status_code == 200


def test_token_delay_holds_token_requests_only(oidc_provider: OidcProvider) -> None:
    token, _ = log_in(oidc_provider)
    finished: list[str] = []
    with oidc_provider.configured(token_delay_ms=3000):
        slow = threading.Thread(
            target=lambda: finished.append(str(refresh(oidc_provider, token["refresh_token"])))
        )
        slow.start()
        assert introspect(oidc_provider, token["access_token"])["active"] is True
        finished.append("introspection")
        slow.join()
    assert finished[0] == "introspection"
    assert finished[1] == "<Response [200 OK]>"


def test_counters_count_grants_replays_and_fetches(oidc_provider: OidcProvider) -> None:
    before = oidc_provider.counters()
    token, _ = log_in(oidc_provider)
    assert refresh(oidc_provider, token["refresh_token"]).status_code == 200
    assert refresh(oidc_provider, token["refresh_token"]).status_code == 400  # a replay
    httpx.get(oidc_provider.discovery()["jwks_uri"])
    after = oidc_provider.counters()
    assert after.grant("authorization_code") == before.grant("authorization_code") + 1
    assert after.grant("refresh_token") == before.grant("refresh_token") + 1
    assert after.error("refresh_token", "invalid_grant") == (
        before.error("refresh_token", "invalid_grant") + 1
    )
    assert after.refresh_replays == before.refresh_replays + 1
    assert after.token_requests == before.token_requests + 3
    assert after.jwks_requests == before.jwks_requests + 1
    assert after.discovery_requests > before.discovery_requests


def test_counters_reset() -> None:
    with start_provider() as provider:
        provider.discovery()
        assert provider.counters(reset=True).discovery_requests == 1
        assert provider.counters().discovery_requests == 0


def test_sign_signs_exactly_the_claims_given(oidc_provider: OidcProvider) -> None:
    jwks = KeySet.import_key_set(httpx.get(oidc_provider.discovery()["jwks_uri"]).json())
    claims = {"iss": "anyone", "nonce": "n", "nested": {"a": [1, 2]}}
    signed = jwt.decode(oidc_provider.sign(claims, typ="logout+jwt"), jwks)
    assert signed.claims == claims
    assert signed.header == {"alg": "RS256", "kid": jwks.keys[0].kid, "typ": "logout+jwt"}
    assert "kid" not in jwt.decode(oidc_provider.sign(claims, kid=None), jwks).header
    with pytest.raises(BadSignatureError):
        jwt.decode(oidc_provider.sign(claims, key="forged"), jwks)
    unsigned = oidc_provider.sign(claims, alg="none")
    assert unsigned.endswith(".") and unsigned.count(".") == 2


def test_a_rotated_key_is_published_beside_the_providers_own() -> None:
    with start_provider() as provider:
        jwks_uri = provider.discovery()["jwks_uri"]
        first = [key["kid"] for key in httpx.get(jwks_uri).json()["keys"]]
        kid = provider.rotate_key()
        assert [key["kid"] for key in httpx.get(jwks_uri).json()["keys"]] == [*first, kid]
        jwks = KeySet.import_key_set(httpx.get(jwks_uri).json())
        assert jwt.decode(provider.sign({"a": 1}, key="rotated"), jwks).header["kid"] == kid
        # Tokens the provider itself issues still verify against the grown key set.
        token, _ = log_in(provider)
        assert jwt.decode(token["id_token"], jwks).claims["sub"] == "alice"


def test_the_refresh_tamper_spoils_only_refreshed_id_tokens(oidc_provider: OidcProvider) -> None:
    jwks = KeySet.import_key_set(httpx.get(oidc_provider.discovery()["jwks_uri"]).json())
    with oidc_provider.configured(refresh_id_token_tamper="iss"):
        token, _ = log_in(oidc_provider)
        assert jwt.decode(token["id_token"], jwks).claims["iss"] == oidc_provider.issuer
        renewed = refresh(oidc_provider, token["refresh_token"]).json()
    claims = jwt.decode(renewed["id_token"], jwks).claims  # still the provider's signature
    assert claims["iss"] == "https://other-issuer.example"
    assert claims["sub"] == "alice"


def test_admin_endpoints_need_the_admin_token(oidc_provider: OidcProvider) -> None:
    for path in ("/__harness/sign", "/__harness/counters", "/__harness/keys/rotate"):
        answer = httpx.post(oidc_provider.issuer + path, json={"claims": {}})
        assert answer.status_code == 401
    wrong = httpx.post(
        oidc_provider.issuer + "/__harness/settings",
        json={"id_token_tamper": "everything"},
        headers={"Authorization": f"Bearer {oidc_provider.admin_token}"},
    )
    assert wrong.status_code == 400
