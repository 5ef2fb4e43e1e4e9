"""The OpenID Provider the OIDC tests run against: one per test session, on loopback; and the
relying party's side of a login through it, for the protocol tests."""

from __future__ import annotations

import queue
import threading
from collections.abc import Awaitable, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from coatcheck.oidc import AsyncOIDCProvider, OIDCSettings, TokenSet, new_login_secrets

from .provider_harness import OidcProvider, start_provider

AsyncLogin = Callable[..., Awaitable[TokenSet]]


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[OidcProvider]:
    """The shared provider (5-s access tokens, rotating refresh tokens). Tests that need other
    TTLs or switches start their own with `start_provider(...)`."""
    with start_provider() as provider:
        yield provider


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def settings_for(provider: OidcProvider, **changes: object) -> OIDCSettings:
    """Relying-party settings for `provider`'s one client."""
    arguments: dict[str, object] = {
        "issuer": provider.issuer,
        "client_id": provider.client_id,
        "client_secret": provider.client_secret,
        **changes,
    }
    return OIDCSettings(**arguments)  # type: ignore[arg-type]


@pytest.fixture
def oidc_settings(oidc_provider: OidcProvider) -> OIDCSettings:
    return settings_for(oidc_provider)


@pytest.fixture
def make_settings() -> Callable[..., OIDCSettings]:
    """`make_settings(provider, metadata_ttl=60, ...)`: settings for another provider."""
    return settings_for


def callback_params(url: str) -> dict[str, str]:
    """The query of the URL the provider sent the browser back to."""
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


@pytest.fixture
def rp_login(oidc_provider: OidcProvider) -> AsyncLogin:
    """`await rp_login(op, user="alice", provider=...)`: the whole code flow of an
    `AsyncOIDCProvider` through the provider's login form, ending in `exchange_code`."""

    async def log_in(
        op: AsyncOIDCProvider, user: str = "alice", provider: OidcProvider | None = None
    ) -> TokenSet:
        provider = provider or oidc_provider
        state, nonce, verifier = new_login_secrets()
        redirect_uri = provider.app.redirect_uri
        url = await op.authorization_url(
            redirect_uri=redirect_uri, state=state, nonce=nonce, code_verifier=verifier
        )
        with httpx.Client() as browser:
            params = callback_params(provider.login(browser, url, user))
        assert params["state"] == state
        op.check_callback_iss(await op.metadata(), params.get("iss"))
        return await op.exchange_code(
            code=params["code"], redirect_uri=redirect_uri, code_verifier=verifier, nonce=nonce
        )

    return log_in


@pytest.fixture
def backchannel(oidc_provider: OidcProvider) -> Iterator[queue.Queue[dict[str, list[str]]]]:
    """A listener at the client's back-channel logout URI: the app under test's stand-in."""
    received: queue.Queue[dict[str, list[str]]] = queue.Queue()

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.put(parse_qs(self.rfile.read(length).decode()))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", oidc_provider.app.port), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()
