"""Discovery and the signing keys: fetched from the real provider, kept for their TTL, the
key set refetched on an unknown key id at most once per interval, failures told apart."""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from servers import free_port

from coatcheck import FakeClock
from coatcheck.oidc import (
    BACKCHANNEL_LOGOUT_EVENT,
    AsyncOIDCProvider,
    InvalidLogoutToken,
    OIDCConfigError,
    OIDCSettings,
    ProviderUnavailable,
)

from .provider_harness import OidcProvider, start_provider

pytestmark = pytest.mark.anyio

MakeSettings = Callable[..., OIDCSettings]


def logout_token(
    provider: OidcProvider, key: str = "provider", now: float | None = None, **header: Any
) -> str:
    """A valid logout token, issued at `now` (default: the real time)."""
    now = int(time.time() if now is None else now)
    claims = {
        "iss": provider.issuer,
        "aud": provider.client_id,
        "iat": now,
        "exp": now + 120,
        "jti": secrets.token_hex(8),
        "sid": "sid-1",
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
    }
    return provider.sign(claims, key=key, typ="logout+jwt", **header)  # type: ignore[arg-type]


async def test_discovery_is_fetched_once_per_ttl(
    oidc_provider: OidcProvider, make_settings: MakeSettings, clock: FakeClock
) -> None:
    settings = make_settings(oidc_provider, metadata_ttl=600)
    async with AsyncOIDCProvider(settings, clock=clock) as op:
        before = oidc_provider.counters().discovery_requests
        metadata = await op.metadata()
        assert metadata["issuer"] == oidc_provider.issuer
        assert metadata["token_endpoint"] == f"{oidc_provider.issuer}/token"
        clock.advance(599)
        assert await op.metadata() is metadata
        assert oidc_provider.counters().discovery_requests == before + 1
        clock.advance(1)
        await op.metadata()
        assert oidc_provider.counters().discovery_requests == before + 2


async def test_oidcc_client_test_discovery_issuer_mismatch(
    oidc_provider: OidcProvider, make_settings: MakeSettings
) -> None:
    # The same discovery URL, but the document names the issuer without the slash.
    settings = make_settings(oidc_provider, issuer=oidc_provider.issuer + "/")
    async with AsyncOIDCProvider(settings) as op:
        with pytest.raises(OIDCConfigError, match="names issuer") as caught:
            await op.metadata()
    assert caught.value.field == "issuer"


async def test_an_outage_at_discovery_is_transient(
    oidc_provider: OidcProvider, oidc_settings: OIDCSettings
) -> None:
    async with AsyncOIDCProvider(oidc_settings) as op:
        with oidc_provider.configured(outage=True), pytest.raises(ProviderUnavailable, match="503"):
            await op.metadata()
        assert (await op.metadata())["issuer"] == oidc_provider.issuer


async def test_no_provider_listening_is_transient() -> None:
    settings = OIDCSettings(issuer=f"http://127.0.0.1:{free_port()}", client_id="app")
    async with AsyncOIDCProvider(settings) as op:
        with pytest.raises(ProviderUnavailable, match="could not be reached"):
            await op.metadata()


@pytest.fixture
def broken_provider() -> Iterator[tuple[str, dict[str, bytes]]]:
    """An HTTP server on loopback answering each path with the bytes the test puts in the
    dict (a provider gone wrong: an HTML error page, a wrong document) and 404 otherwise."""
    answers: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = answers.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(body or b"<h1>not found</h1>")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", answers
    finally:
        server.shutdown()
        server.server_close()


async def test_an_answer_that_is_not_json_is_transient(
    broken_provider: tuple[str, dict[str, bytes]],
) -> None:
    issuer, answers = broken_provider
    answers["/.well-known/openid-configuration"] = b"<html>maintenance</html>"
    async with AsyncOIDCProvider(OIDCSettings(issuer=issuer, client_id="app")) as op:
        with pytest.raises(ProviderUnavailable, match="not a JSON object"):
            await op.metadata()
        answers.pop("/.well-known/openid-configuration")
        with pytest.raises(ProviderUnavailable, match="HTTP 404"):
            await op.metadata()


async def test_a_document_without_the_code_flow_or_with_plain_http_is_refused(
    broken_provider: tuple[str, dict[str, bytes]],
) -> None:
    issuer, answers = broken_provider
    document = {
        "issuer": issuer,
        "authorization_endpoint": "http://id.example/authorize",
        "token_endpoint": f"{issuer}/token",
        "jwks_uri": f"{issuer}/jwks",
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }
    path = "/.well-known/openid-configuration"
    settings = OIDCSettings(issuer=issuer, client_id="app")
    cases = [
        ({}, "authorization_endpoint must use https"),
        (
            {"authorization_endpoint": f"{issuer}/auth", "response_types_supported": ["id_token"]},
            "authorization code flow",
        ),
        (
            {
                "authorization_endpoint": f"{issuer}/auth",
                "code_challenge_methods_supported": ["plain"],
            },
            "PKCE",
        ),
        ({"authorization_endpoint": f"{issuer}/auth", "jwks_uri": None}, "jwks_uri is missing"),
        (
            {"authorization_endpoint": f"{issuer}/auth", "subject_types_supported": ["x"]},
            "subject_types_supported",
        ),
    ]
    for changes, message in cases:
        answers[path] = _json({**document, **changes})
        async with AsyncOIDCProvider(settings) as op:
            with pytest.raises(OIDCConfigError, match=message):
                await op.metadata()


async def test_a_slow_provider_times_out_as_transient() -> None:
    """A listener that never answers: the HTTP timeout turns into ProviderUnavailable."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        settings = OIDCSettings(
            issuer=f"http://127.0.0.1:{silent.getsockname()[1]}", client_id="app", http_timeout=0.3
        )
        async with AsyncOIDCProvider(settings) as op:
            with pytest.raises(ProviderUnavailable, match="timed out"):
                await op.metadata()


async def test_keys_are_kept_for_the_ttl(
    oidc_provider: OidcProvider, make_settings: MakeSettings, clock: FakeClock
) -> None:
    settings = make_settings(oidc_provider, metadata_ttl=300)
    async with AsyncOIDCProvider(settings, clock=clock) as op:
        before = oidc_provider.counters().jwks_requests
        for _ in range(3):
            await op.validate_logout_token(logout_token(oidc_provider, now=clock()))
        assert oidc_provider.counters().jwks_requests == before + 1
        clock.advance(300)
        await op.validate_logout_token(logout_token(oidc_provider, now=clock()))
        assert oidc_provider.counters().jwks_requests == before + 2


async def test_an_unknown_kid_refetches_the_keys_at_most_once_per_interval(
    oidc_provider: OidcProvider, make_settings: MakeSettings, clock: FakeClock
) -> None:
    settings = make_settings(oidc_provider, jwks_refetch_interval=60)
    async with AsyncOIDCProvider(settings, clock=clock) as op:
        await op.validate_logout_token(logout_token(oidc_provider, now=clock()))
        fetched = oidc_provider.counters().jwks_requests
        clock.advance(60)
        for _ in range(5):  # a flood of tokens naming keys the provider never had
            forged = logout_token(oidc_provider, "forged", now=clock(), kid=secrets.token_hex(8))
            with pytest.raises(InvalidLogoutToken, match="no key of the provider"):
                await op.validate_logout_token(forged)
        assert oidc_provider.counters().jwks_requests == fetched + 1
        clock.advance(59)
        with pytest.raises(InvalidLogoutToken):
            await op.validate_logout_token(forged)
        assert oidc_provider.counters().jwks_requests == fetched + 1
        clock.advance(1)
        with pytest.raises(InvalidLogoutToken):
            await op.validate_logout_token(forged)
        assert oidc_provider.counters().jwks_requests == fetched + 2


async def test_oidcc_client_test_signing_key_rotation(
    make_settings: MakeSettings, clock: FakeClock
) -> None:
    """The provider publishes a new key and signs with it: the cached key set lacks the new
    kid, so it is fetched again (once the refetch interval since the last fetch has passed)."""
    with start_provider() as provider:
        settings = make_settings(provider, jwks_refetch_interval=30)
        async with AsyncOIDCProvider(settings, clock=clock) as op:
            await op.validate_logout_token(logout_token(provider, now=clock()))
            kid = provider.rotate_key()
            rotated = logout_token(provider, "rotated", now=clock())
            with pytest.raises(InvalidLogoutToken, match="no key of the provider"):
                await op.validate_logout_token(rotated)  # within the interval: not refetched
            clock.advance(30)
            claims = await op.validate_logout_token(rotated)
            assert claims.sid == "sid-1"
            # The old key still works, and the new one now without a fetch.
            fetched = provider.counters().jwks_requests
            await op.validate_logout_token(logout_token(provider, now=clock()))
            await op.validate_logout_token(logout_token(provider, "rotated", now=clock()))
            assert provider.counters().jwks_requests == fetched
            assert kid


def _json(value: dict[str, Any]) -> bytes:
    import json

    return json.dumps({k: v for k, v in value.items() if v is not None}).encode()
