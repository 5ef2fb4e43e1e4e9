"""Which keys of a JWKS document are used, and which key a token's header picks: the pure
rules under every signature check (joserfc keys, no provider needed)."""

from __future__ import annotations

from typing import Any

import pytest
from joserfc.jwk import ECKey, RSAKey

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
