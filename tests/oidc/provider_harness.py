"""A real OpenID Provider (npm `oidc-provider`, tests/oidc/provider) run on loopback for tests.

`start_provider()` installs the pinned package on first use (`npm ci`), starts
`node provider.mjs` on a free port, waits for its `READY <issuer>` line and stops it at the
end. Without node/npm the test is skipped with how to install them, or fails in CI.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urljoin

import httpx
import pytest
from servers import free_port, missing, stop_process

PROVIDER_DIR = Path(__file__).resolve().parent / "provider"
NPM_CI_TIMEOUT = 300.0  # seconds; a first install downloads about 40 small packages
READY_TIMEOUT = 30.0  # seconds for `node provider.mjs` to print its ready line
HOW_TO_INSTALL_NODE = "apt-get install nodejs npm (Node 20 or newer)"


@dataclass(frozen=True)
class AppUrls:
    """Where the provider sends browsers and logout tokens: the app under test (not started
    here). Tests that run an app bind it to `port`, so these URLs reach it."""

    port: int
    callback_path: str = "/oidc/callback"
    logged_out_path: str = "/oidc/logged-out"
    backchannel_path: str = "/oidc/backchannel-logout"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def redirect_uri(self) -> str:
        return self.base + self.callback_path

    @property
    def post_logout_redirect_uri(self) -> str:
        return self.base + self.logged_out_path

    @property
    def backchannel_logout_uri(self) -> str:
        return self.base + self.backchannel_path


# What the provider can get wrong in the ID tokens it returns (provider.mjs, TAMPERS): a claim
# (re-signed with its own key) or the signature.
Tamper = Literal[
    "",
    "iss",
    "sub",
    "aud",
    "azp",
    "nonce",
    "missing-sub",
    "missing-aud",
    "missing-iat",
    "expired",
    "iat-future",
    "auth-time-old",
    "email-unverified",
    "kid-absent",
    "sig-forged",
    "sig-none",
    "sig-hs256",
    "sig-es256",
    "sig-rotated",
]
SigningKey = Literal["provider", "rotated", "forged", "forged-ec", "client-secret"]


@dataclass(frozen=True)
class Counters:
    """The provider's counts (`OidcProvider.counters()`); compare two readings in a test."""

    token_requests: int
    grants: dict[str, int]
    errors: dict[str, int]
    refresh_replays: int
    discovery_requests: int
    jwks_requests: int

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Counters:
        return cls(
            token_requests=int(body["token_requests"]),
            grants={str(k): int(v) for k, v in body["grants"].items()},
            errors={str(k): int(v) for k, v in body["errors"].items()},
            refresh_replays=int(body["refresh_replays"]),
            discovery_requests=int(body["discovery_requests"]),
            jwks_requests=int(body["jwks_requests"]),
        )

    def grant(self, grant_type: str) -> int:
        """Successful grants of `grant_type` (`authorization_code`, `refresh_token`)."""
        return self.grants.get(grant_type, 0)

    def error(self, grant_type: str, error: str) -> int:
        """Token-endpoint errors `error` (e.g. `invalid_grant`) for `grant_type`."""
        return self.errors.get(f"{grant_type}:{error}", 0)


@dataclass
class OidcProvider:
    """A running provider: its issuer, the one confidential client, and test controls."""

    issuer: str
    client_id: str
    client_secret: str
    app: AppUrls
    admin_token: str = field(repr=False)
    log_path: Path

    def discovery(self) -> dict[str, Any]:
        response = httpx.get(f"{self.issuer}/.well-known/openid-configuration")
        response.raise_for_status()
        return dict(response.json())

    def end_sessions(self) -> int:
        """End every provider session silently (no back-channel logout); returns how many."""
        return int(self._admin("/__harness/sessions/end", {})["ended"])

    @contextmanager
    def configured(
        self,
        *,
        token_delay_ms: int | None = None,
        outage: bool | None = None,
        jwks_outage: bool | None = None,
        id_token_tamper: Tamper | None = None,
        refresh_id_token_tamper: Tamper | None = None,
    ) -> Iterator[None]:
        """Within the block, slow the token endpoint down (ms before it handles a request),
        answer every protocol request with 503 (`outage=True`) while the provider keeps its
        state, or the key set's only (`jwks_outage=True`), or spoil the ID token of every
        code answer (`id_token_tamper`) or refresh answer (`refresh_id_token_tamper`): a
        claim made wrong and re-signed with the provider's own key (`iss`, `sub`, `aud`, `azp`
        naming another client, `nonce`, `missing-*`, `expired`, `iat-future`, `kid-absent`,
        `auth-time-old`: an hour before the login, `email-unverified`), a bad signature
        (`sig-forged`, `sig-none`, `sig-hs256` with the client secret, `sig-es256` with an
        unpublished key) or a good one by the newest key `rotate_key` published
        (`sig-rotated`). All are back to the start values afterwards."""
        changes: dict[str, Any] = {}
        if token_delay_ms is not None:
            changes["token_delay_ms"] = token_delay_ms
        if outage is not None:
            changes["outage"] = outage
        if jwks_outage is not None:
            changes["jwks_outage"] = jwks_outage
        if id_token_tamper is not None:
            changes["id_token_tamper"] = id_token_tamper
        if refresh_id_token_tamper is not None:
            changes["refresh_id_token_tamper"] = refresh_id_token_tamper
        before = self._admin("/__harness/settings", {})
        self._admin("/__harness/settings", changes)
        try:
            yield
        finally:
            self._admin("/__harness/settings", before)

    def counters(self, *, reset: bool = False) -> Counters:
        """What the provider counted since it started (or the last reset): token requests,
        successful grants and errors by grant type, refresh-token replays, discovery and JWKS
        fetches. `reset=True` zeroes them after reading."""
        seen = Counters.from_json(self._admin("/__harness/counters", {}))
        if reset:
            self._admin("/__harness/counters", {"reset": True})
        return seen

    def sign(self, claims: dict[str, Any], *, key: SigningKey = "provider", **header: Any) -> str:
        """`claims` as a compact JWS, exactly as given (nothing added). `key`: the provider's
        own (`provider`), the newest published by `rotate_key` (`rotated`), one never
        published (`forged`, RSA; `forged-ec`, P-256) or the client secret (`client-secret`,
        HS256). The header is the key's alg and the provider key's kid (forged keys claim it
        too) updated with `header` (`typ="logout+jwt"`, `alg="none"`, `kid=None` drops it)."""
        body = {"claims": claims, "key": key, "header": header}
        return str(self._admin("/__harness/sign", body)["token"])

    def rotate_key(self) -> str:
        """Publish a new signing key in the JWKS (beside the provider's own); returns its kid.
        `sign(..., key="rotated")` signs with it."""
        return str(self._admin("/__harness/keys/rotate", {})["kid"])

    def _admin(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = httpx.post(
            self.issuer + path,
            json=body,
            headers={"Authorization": f"Bearer {self.admin_token}"},
        )
        response.raise_for_status()
        return dict(response.json())

    def login(self, client: httpx.Client, authorization_url: str, user: str) -> str:
        """Log `user` in through the provider's interaction pages, as a browser would, with a
        cookie-keeping `client`; returns the URL the provider sends back to the app (with
        `code`, `state` and `iss`, or `error`). The app's callback itself is not requested."""
        response = self._follow(client, client.get(authorization_url))
        if response.is_redirect:
            return str(response.headers["location"])
        form = {"prompt": "login", "login": user, "password": "anything"}
        response = self._follow(client, client.post(str(response.url), data=form))
        if not response.is_redirect:
            raise AssertionError(f"login at the provider did not finish: {response.status_code}")
        return str(response.headers["location"])

    def logout(self, client: httpx.Client, end_session_url: str) -> str:
        """Confirm an RP-initiated logout as a browser would, with the `client` that logged
        in: GET the end-session URL (a confirm form), POST the confirmation; returns where the
        provider sends the browser back (the post-logout redirect URI with `state`). The
        provider posts the logout token to the back-channel URI before answering."""
        page = client.get(end_session_url)
        if page.status_code != 200 or 'name="xsrf" value="' not in page.text:
            raise AssertionError(f"no logout confirmation form: {page.status_code}")
        xsrf = page.text.split('name="xsrf" value="', 1)[1].split('"', 1)[0]
        done = client.post(
            f"{self.issuer}/session/end/confirm", data={"xsrf": xsrf, "logout": "yes"}
        )
        if not done.is_redirect:
            raise AssertionError(f"logout at the provider did not finish: {done.status_code}")
        return str(done.headers["location"])

    def _follow(self, client: httpx.Client, response: httpx.Response) -> httpx.Response:
        """Follow redirects within the provider; stop at one that leaves it (to the app)."""
        for _ in range(10):
            if not response.is_redirect:
                return response
            target = urljoin(str(response.url), response.headers["location"])
            if not target.startswith(self.issuer + "/"):
                return response
            response = client.get(target)
        raise AssertionError("the provider redirected more than 10 times")


def ensure_installed() -> None:
    """`npm ci` in tests/oidc/provider unless the pinned oidc-provider is already there."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        missing(f"node and npm are needed for the OIDC provider tests: {HOW_TO_INSTALL_NODE}")
    pinned = json.loads((PROVIDER_DIR / "package.json").read_text())["dependencies"]
    installed = PROVIDER_DIR / "node_modules" / "oidc-provider" / "package.json"
    if (
        installed.exists()
        and json.loads(installed.read_text())["version"] == pinned["oidc-provider"]
    ):
        return
    result = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"],
        cwd=PROVIDER_DIR,
        capture_output=True,
        text=True,
        timeout=NPM_CI_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"npm ci in {PROVIDER_DIR} failed:\n{result.stdout}\n{result.stderr}")


@contextmanager
def start_provider(
    *,
    access_token_ttl: int = 5,
    session_ttl: int = 3600,
    rotate_refresh_tokens: bool = True,
    token_delay_ms: int = 0,
    rp_initiated_logout: bool = True,
    app: AppUrls | None = None,
    id_token_claims: bool = False,
) -> Iterator[OidcProvider]:
    """A provider of its own (TTLs in whole seconds), stopped when the block ends; without
    `rp_initiated_logout` it advertises no end_session_endpoint; with `id_token_claims` its ID
    tokens carry the scopes' claims (`name`, `email`), not only the userinfo endpoint."""
    ensure_installed()
    app = app or AppUrls(port=free_port())
    client_id, client_secret = "coatcheck-test", secrets.token_urlsafe(32)
    admin_token = secrets.token_urlsafe(32)
    env = {
        **os.environ,
        "OIDC_PORT": "0",
        "OIDC_CLIENT_ID": client_id,
        "OIDC_CLIENT_SECRET": client_secret,
        "OIDC_REDIRECT_URIS": app.redirect_uri,
        "OIDC_POST_LOGOUT_REDIRECT_URIS": app.post_logout_redirect_uri,
        "OIDC_BACKCHANNEL_LOGOUT_URI": app.backchannel_logout_uri,
        "OIDC_ACCESS_TOKEN_TTL": str(access_token_ttl),
        "OIDC_SESSION_TTL": str(session_ttl),
        "OIDC_ROTATE_REFRESH_TOKENS": "1" if rotate_refresh_tokens else "0",
        "OIDC_TOKEN_DELAY_MS": str(token_delay_ms),
        "OIDC_ADMIN_TOKEN": admin_token,
        "OIDC_RP_INITIATED_LOGOUT": "1" if rp_initiated_logout else "0",
        "OIDC_ID_TOKEN_CLAIMS": "1" if id_token_claims else "0",
    }
    with tempfile.TemporaryDirectory(prefix="coatcheck-oidc-") as tmp:
        log_path = Path(tmp) / "provider.log"
        with log_path.open("w") as log:
            process = subprocess.Popen(
                ["node", "provider.mjs"], cwd=PROVIDER_DIR, env=env, stdout=log, stderr=log
            )
        try:
            issuer = _wait_ready(process, log_path)
            yield OidcProvider(issuer, client_id, client_secret, app, admin_token, log_path)
        finally:
            stop_process(process, timeout=10)


def _wait_ready(process: subprocess.Popen[bytes], log_path: Path) -> str:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        for line in log_path.read_text().splitlines():
            if line.startswith("READY "):
                return line.removeprefix("READY ").strip()
        if process.poll() is not None:
            break
        time.sleep(0.05)
    pytest.fail(f"node provider.mjs did not get ready:\n{log_path.read_text()}", pytrace=False)
