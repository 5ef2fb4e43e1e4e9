"""Which keys of a JWKS document are used, which key a token's header picks, and the claim
rules that need no provider: the pure parts under every check (joserfc keys)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from joserfc.jwk import ECKey, RSAKey

from coatcheck.oidc import Identity, InvalidToken
from coatcheck.oidc.idtoken import check_access_token_hash, check_refreshed_claims
from coatcheck.oidc.jwks import allowed_algorithms, find_key, parse_key_set


def public(key: RSAKey | ECKey, **members: Any) -> dict[str, Any]:
    return {**key.as_dict(private=False), **members}


RSA = RSAKey.generate_key(2048)
EC = ECKey.generate_key("P-256")


def test_oidcc_client_test_ignores_unparseable_key_in_jwks() -> None:
    keys = parse_key_set(
        {
            "keys": [
                {"kty": "RSA", "kid": "broken", "n": "!!!", "e": "AQAB"},
                {"kty": "oct", "kid": "secret", "k": "c2VjcmV0"},
                {"kty": "XYZ", "kid": "future"},
                public(RSA, kid="enc", use="enc"),
                "not even an object",
                public(RSA, kid="good", use="sig"),
            ]
        }
    )
    assert [key.kid for key in keys.keys] == ["good"]


@pytest.mark.parametrize("document", [{}, {"keys": "x"}, {"keys": [{"kty": "oct", "k": "AA"}]}])
def test_a_document_without_usable_keys_is_an_error(document: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="JWKS document"):
        parse_key_set(document)


def test_the_header_picks_a_key_of_the_right_type_and_algorithm() -> None:
    keys = parse_key_set(
        {"keys": [public(RSA, kid="r", alg="RS256"), public(EC, kid="e", alg="ES256")]}
    )
    assert find_key(keys, {"kid": "r"}, "RS256") is keys.keys[0]
    assert find_key(keys, {"kid": "e"}, "ES256") is keys.keys[1]
    assert find_key(keys, {"kid": "r"}, "ES256") is None  # an RSA key cannot check ES256
    assert find_key(keys, {"kid": "r"}, "PS256") is None  # the key says RS256 only
    assert find_key(keys, {"kid": "unknown"}, "RS256") is None
    assert find_key(keys, {"kid": 7}, "RS256") is None
    assert find_key(keys, {}, "ES256") is keys.keys[1]  # no kid: the one key that fits


def test_only_asymmetric_advertised_algorithms_are_allowed() -> None:
    advertised = {"id_token_signing_alg_values_supported": ["RS256", "HS256", "none", "ES256"]}
    assert allowed_algorithms(advertised) == {"RS256", "ES256"}
    assert allowed_algorithms({}) == {"RS256"}


def test_at_hash_binds_the_id_token_to_its_access_token() -> None:
    digest = hashlib.sha256(b"the-access-token").digest()
    at_hash = base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
    check_access_token_hash({"at_hash": at_hash}, "RS256", "the-access-token")
    check_access_token_hash({}, "RS256", "anything")  # optional in the code flow
    with pytest.raises(InvalidToken, match="at_hash"):
        check_access_token_hash({"at_hash": at_hash}, "RS256", "another-access-token")


def test_a_refreshed_id_token_keeps_what_it_leaves_out() -> None:
    now = 1_800_000_000
    login = {
        "iss": "https://id.example",
        "sub": "u1",
        "aud": "app",
        "sid": "s1",
        "auth_time": now - 60,
        "amr": ["pwd"],
        "acr": "1",
        "iat": now - 60,
        "exp": now + 600,
        "nonce": "n",
    }
    original = Identity.from_claims(login)
    refreshed = {
        "iss": "https://id.example",
        "sub": "u1",
        "aud": "app",
        "iat": now,
        "exp": now + 600,
    }
    identity = check_refreshed_claims(
        refreshed, original=original, client_id="app", now=now, leeway=0
    )
    assert (identity.sid, identity.auth_time, identity.amr, identity.acr) == (
        "s1",
        now - 60,
        ("pwd",),
        "1",
    )
    with pytest.raises(InvalidToken, match="auth_time"):
        check_refreshed_claims(
            {**refreshed, "auth_time": now}, original=original, client_id="app", now=now, leeway=0
        )
    with pytest.raises(InvalidToken, match="nonce"):
        check_refreshed_claims(
            {**refreshed, "nonce": "m"}, original=original, client_id="app", now=now, leeway=0
        )
