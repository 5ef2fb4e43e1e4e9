"""The provider's signing keys: which JWT signatures coatcheck accepts, the key a token names,
and the caching rule (keep the key set ``metadata_ttl`` seconds; a token naming an unknown
key may refetch it, at most once every ``jwks_refetch_interval``, so a key rotation is seen
at once while a flood of forged key ids cannot make coatcheck hammer the provider)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry, Key, KeySet

from ..core.clock import Clock
from .errors import OIDCError

Reject = Callable[[str], OIDCError]
"""The error a failed check raises: ``InvalidToken`` or ``InvalidLogoutToken``."""

# Signatures by the provider's own private key only. "none" proves nothing and the HMAC
# algorithms would be keyed with the client secret (or, in the classic confusion attack,
# with the provider's public key), so neither is ever accepted.
ASYMMETRIC = {
    "RS256": "RSA",
    "RS384": "RSA",
    "RS512": "RSA",
    "PS256": "RSA",
    "PS384": "RSA",
    "PS512": "RSA",
    "ES256": "EC",
    "ES384": "EC",
    "ES512": "EC",
    "EdDSA": "OKP",
    "Ed25519": "OKP",
}
DEFAULT_ALGORITHM = "RS256"  # OpenID Connect's default for ID tokens (Core 1.0, 3.1.3.7)
MAX_TOKEN_CHARS = 16_384  # longer "tokens" are refused before any parsing


def allowed_algorithms(metadata: Mapping[str, Any]) -> frozenset[str]:
    """The signature algorithms accepted for this provider's ID and logout tokens: those it
    advertises for ID tokens that are asymmetric (RS256 when it advertises none)."""
    advertised = metadata.get("id_token_signing_alg_values_supported")
    if not isinstance(advertised, list):
        return frozenset({DEFAULT_ALGORITHM})
    return frozenset(alg for alg in advertised if alg in ASYMMETRIC)


def parse_key_set(document: Mapping[str, Any]) -> KeySet:
    """The signing keys of a JWKS document. Keys that cannot be used (encryption keys, key
    types or curves joserfc does not know, malformed members) are skipped, as OpenID
    conformance expects; ValueError when no usable key is left."""
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise ValueError("the JWKS document has no list of keys")
    keys: list[Key] = []
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        if entry.get("kty") not in ("RSA", "EC", "OKP"):
            continue
        try:
            keys.append(JWKRegistry.import_key(entry))
        except (JoseError, ValueError, TypeError, KeyError):
            continue
    if not keys:
        raise ValueError("the JWKS document has no usable signing key")
    return KeySet(keys)


def read_header(token: object, reject: Reject) -> dict[str, Any]:
    """The JOSE header of a compact JWS, unverified: only to choose the key and algorithm."""
    if not isinstance(token, str) or not token:
        raise reject("no token")
    if len(token) > MAX_TOKEN_CHARS:
        raise reject(f"longer than {MAX_TOKEN_CHARS} characters")
    if token.count(".") != 2:
        raise reject("not a signed JWT (compact JWS)")
    try:
        header = jws.extract_compact(token.encode("ascii")).headers()
    except (JoseError, ValueError, TypeError, UnicodeError):
        raise reject("not a signed JWT (compact JWS)") from None
    return dict(header)


def check_algorithm(header: Mapping[str, Any], allowed: frozenset[str], reject: Reject) -> str:
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in allowed:
        shown = alg if isinstance(alg, str) and len(alg) <= 20 else "?"
        raise reject(f"signature algorithm {shown!r} is not accepted (allowed: {sorted(allowed)})")
    if "crit" in header:
        raise reject("critical header parameters are not understood")
    return alg


def find_key(keys: KeySet, header: Mapping[str, Any], alg: str) -> Key | None:
    """The key the token's header names; None when no key fits (unknown ``kid``, or no
    ``kid`` and not exactly one key of the algorithm's type): then a refetch may help."""
    kid = header.get("kid")
    if isinstance(kid, str):
        candidates: Iterable[Key] = (key for key in keys.keys if key.kid == kid)
    elif kid is None:
        candidates = keys.keys
    else:
        return None
    fitting = [key for key in candidates if _fits(key, alg)]
    return fitting[0] if len(fitting) == 1 else None


def _fits(key: Key, alg: str) -> bool:
    return key.key_type == ASYMMETRIC[alg] and key.alg in (None, alg)


def verified_claims(token: str, key: Key, alg: str, reject: Reject) -> dict[str, Any]:
    """The claims of ``token`` once its signature checks out with ``key`` and ``alg``."""
    try:
        claims = jwt.decode(token, key, algorithms=[alg]).claims
    except (JoseError, ValueError, TypeError):
        raise reject("bad signature") from None
    if not isinstance(claims, dict):
        raise reject("the payload is not a JSON object")
    return claims


class KeyCache:
    """The key set and when it was fetched, over a clock: pure bookkeeping, no I/O."""

    def __init__(self, ttl: float, refetch_interval: float, clock: Clock) -> None:
        self.ttl = ttl
        self.refetch_interval = refetch_interval
        self.clock = clock
        self.keys: KeySet | None = None
        self.fetched_at = float("-inf")
        self.attempted_at = float("-inf")

    def fresh(self) -> KeySet | None:
        """The cached keys while younger than the TTL, else None (fetch them)."""
        if self.keys is not None and self.clock() - self.fetched_at < self.ttl:
            return self.keys
        return None

    def stale(self) -> KeySet | None:
        """The last keys fetched, however old (None: none yet): what a token is checked with
        while the provider's key set cannot be fetched again."""
        return self.keys

    def may_refetch(self) -> bool:
        """Whether an unknown key id may trigger a fetch now (rate limit)."""
        return self.clock() - self.attempted_at >= self.refetch_interval

    def attempt(self) -> None:
        """A fetch starts: it counts against the rate limit whether or not it succeeds."""
        self.attempted_at = self.clock()

    def store(self, keys: KeySet) -> None:
        self.keys = keys
        self.fetched_at = self.clock()
