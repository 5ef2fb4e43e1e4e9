"""The OpenID Provider as coatcheck talks to it over HTTP: discovery, the authorization URL,
the token endpoint (code exchange and refresh), RP-initiated logout and the checks of the
tokens it signs (docs/oidc.md, "Protocol").

Everything transient (network errors, timeouts, 5xx, an answer that is not JSON) becomes
:class:`ProviderUnavailable`, so a session never ends because the provider was down; an
OAuth error answer becomes :class:`ProviderRefused`. Tokens never appear in messages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

import httpx
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc.jwk import KeySet

from ...core.clock import Clock, system_clock
from ...oidc.answers import (
    basic_auth,
    json_object,
    token_answer,
    token_set,
    unreachable,
    with_query,
)
from ...oidc.errors import InvalidLogoutToken, InvalidToken, OIDCConfigError, ProviderUnavailable
from ...oidc.idtoken import check_access_token_hash, check_login_claims, check_refreshed_claims
from ...oidc.jwks import (
    KeyCache,
    Reject,
    allowed_algorithms,
    check_algorithm,
    find_key,
    parse_key_set,
    read_header,
    verified_claims,
)
from ...oidc.logouttoken import check_logout_claims, check_logout_header
from ...oidc.metadata import Expiring, checked_metadata, issuer_in_callback_required
from ...oidc.models import Identity, LogoutClaims, TokenSet
from ...oidc.secrets import check_code_verifier
from ...oidc.settings import OIDCSettings

JSON = {"Accept": "application/json"}
log = logging.getLogger("coatcheck.oidc")


class AsyncOIDCProvider:
    """One OpenID Provider (``settings.issuer``) and this app's client there.

    http: an ``httpx`` client of your own (TLS settings, proxies); it is not closed by
        :meth:`aclose`. Default: one made here with ``settings.http_timeout``.
    clock: seconds since the epoch, for token times and the caches (tests move it).

    The discovery document and the key set are kept ``metadata_ttl`` seconds; a token naming
    a key id the cached set lacks refetches the set, at most once every
    ``jwks_refetch_interval`` seconds.
    """

    def __init__(
        self,
        settings: OIDCSettings,
        *,
        http: httpx.AsyncClient | None = None,
        clock: Clock = system_clock,
    ) -> None:
        if not isinstance(settings, OIDCSettings):
            raise OIDCConfigError("settings must be an OIDCSettings")
        self.settings = settings
        self.clock = clock
        self._own_http = http is None
        self._http = http or httpx.AsyncClient(timeout=settings.http_timeout)
        self._metadata = Expiring(settings.metadata_ttl, clock)
        self._keys = KeyCache(settings.metadata_ttl, settings.jwks_refetch_interval, clock)

    async def __aenter__(self) -> AsyncOIDCProvider:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if it was made here."""
        if self._own_http:
            await self._http.aclose()

    async def metadata(self) -> Mapping[str, Any]:
        """The provider's discovery document, fetched at most once per ``metadata_ttl``; its
        ``issuer`` must be exactly ``settings.issuer`` (:class:`OIDCConfigError` if not)."""
        cached = self._metadata.fresh()
        if cached is not None:
            return cached
        document = await self._get_json(self.settings.discovery_url, "discovery")
        metadata = checked_metadata(document, self.settings.issuer)
        self._metadata.store(metadata)
        return metadata

    async def authorization_url(
        self,
        *,
        redirect_uri: str,
        state: str,
        nonce: str,
        code_verifier: str,
        prompt: str | None = None,
        max_age: int | None = None,
    ) -> str:
        """Where to send the browser: the code flow with PKCE (S256), ``state`` and ``nonce``
        (and ``prompt`` and ``max_age`` when given)."""
        check_code_verifier(code_verifier)
        params = {
            "response_type": "code",
            "client_id": self.settings.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(self.settings.scopes),
            "state": state,
            "nonce": nonce,
            "code_challenge": create_s256_code_challenge(code_verifier),
            "code_challenge_method": "S256",
        }
        if prompt is not None:
            params["prompt"] = prompt
        if max_age is not None:
            params["max_age"] = str(max_age)
        endpoint = (await self.metadata())["authorization_endpoint"]
        return with_query(endpoint, params)

    def check_callback_iss(self, metadata: Mapping[str, Any], iss: str | None) -> None:
        """RFC 9207: the callback's ``iss`` must be the issuer when given, and must be given
        when the provider advertises it; :class:`InvalidToken` otherwise (a mix-up attack)."""
        if iss is None:
            if issuer_in_callback_required(metadata):
                raise InvalidToken("the authorization response lacks iss (RFC 9207)")
            return
        if iss != metadata.get("issuer"):
            raise InvalidToken("the authorization response comes from another issuer (RFC 9207)")

    async def exchange_code(
        self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str
    ) -> TokenSet:
        """Redeem the callback's code; the answer must carry an ID token, which is validated
        (signature, algorithm, iss, aud, azp, exp, iat, nonce, sub, at_hash)."""
        answer = await self._token_request(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": code_verifier,
            }
        )
        id_token = answer.get("id_token")
        if not isinstance(id_token, str):
            raise InvalidToken("the token endpoint answered without an ID token")
        claims, alg = await self._verified(id_token, InvalidToken)
        identity = check_login_claims(
            claims,
            issuer=self.settings.issuer,
            client_id=self.settings.client_id,
            nonce=nonce,
            now=self.clock(),
            leeway=self.settings.clock_leeway,
        )
        check_access_token_hash(claims, alg, answer["access_token"])
        return self._token_set(answer, identity=identity, refresh_token=None)

    async def refresh(self, refresh_token: str, *, identity: Identity) -> TokenSet:
        """New tokens for ``refresh_token``. A new ID token must belong to ``identity`` (same
        iss, sub, aud); without a new refresh token the old one stays. ``identity`` of the
        answer is None when no new ID token came.

        The key set is made sure of before the refresh token is spent. Should it still be
        unreachable afterwards (a new key to fetch), the answer is kept without its ID token:
        with rotation the old refresh token is spent, and dropping the new one would end the
        session at the next refresh."""
        await self._current_keys()
        answer = await self._token_request(
            {"grant_type": "refresh_token", "refresh_token": refresh_token}
        )
        id_token = answer.get("id_token")
        refreshed: Identity | None = None
        if isinstance(id_token, str):
            try:
                claims, alg = await self._verified(id_token, InvalidToken)
            except ProviderUnavailable as exc:
                log.warning("refreshed ID token not checked, not kept: %s", exc)
                answer = {name: value for name, value in answer.items() if name != "id_token"}
            else:
                refreshed = check_refreshed_claims(
                    claims,
                    original=identity,
                    client_id=self.settings.client_id,
                    now=self.clock(),
                    leeway=self.settings.clock_leeway,
                )
                check_access_token_hash(claims, alg, answer["access_token"])
        elif id_token is not None:
            raise InvalidToken("the refreshed id_token is not a string")
        return self._token_set(answer, identity=refreshed, refresh_token=refresh_token)

    async def end_session_url(
        self, *, id_token_hint: str | None, post_logout_redirect_uri: str, state: str
    ) -> str | None:
        """The provider's RP-initiated logout URL, or None when it advertises no
        ``end_session_endpoint``."""
        endpoint = (await self.metadata()).get("end_session_endpoint")
        if endpoint is None:
            return None
        params = {"client_id": self.settings.client_id}
        if id_token_hint:
            params["id_token_hint"] = id_token_hint
        params["post_logout_redirect_uri"] = post_logout_redirect_uri
        params["state"] = state
        return with_query(endpoint, params)

    async def validate_logout_token(self, token: str) -> LogoutClaims:
        """A back-channel logout token, checked completely but for ``jti`` replay (the
        caller's, with a store): :class:`InvalidLogoutToken` saying which check failed."""
        claims, _alg = await self._verified(token, InvalidLogoutToken, check_logout_header)
        return check_logout_claims(
            claims,
            issuer=self.settings.issuer,
            client_id=self.settings.client_id,
            now=self.clock(),
            leeway=self.settings.clock_leeway,
        )

    async def _verified(
        self,
        token: str,
        reject: Reject,
        check_header: Callable[[Mapping[str, Any]], None] | None = None,
    ) -> tuple[dict[str, Any], str]:
        """The claims of a token the provider signed, and the algorithm it used."""
        header = read_header(token, reject)
        if check_header is not None:
            check_header(header)
        alg = check_algorithm(header, allowed_algorithms(await self.metadata()), reject)
        keys = await self._current_keys()
        key = find_key(keys, header, alg)
        if key is None and self._keys.may_refetch():
            key = find_key(await self._fetch_keys(), header, alg)
        if key is None:
            raise reject("no key of the provider fits the token's key id (kid) and algorithm")
        return verified_claims(token, key, alg, reject), alg

    async def _current_keys(self) -> KeySet:
        """The key set: the cached one while fresh, else fetched again. When that fetch fails
        (or failed within ``jwks_refetch_interval``), the last one fetched: a provider whose
        key set is down for a while does not end sessions or refuse logins signed with keys
        already known. ProviderUnavailable only when no key set was ever fetched."""
        fresh = self._keys.fresh()
        if fresh is not None:
            return fresh
        stale = self._keys.stale()
        if stale is not None and not self._keys.may_refetch():
            return stale
        try:
            return await self._fetch_keys()
        except ProviderUnavailable as exc:
            if stale is None:
                raise
            log.warning("using the OpenID Provider's last key set: %s", exc)
            return stale

    async def _fetch_keys(self) -> KeySet:
        self._keys.attempt()
        document = await self._get_json((await self.metadata())["jwks_uri"], "JWKS")
        try:
            keys = parse_key_set(document)
        except ValueError as exc:
            raise ProviderUnavailable(f"the OpenID Provider's keys are unusable: {exc}") from None
        self._keys.store(keys)
        return keys

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            response = await self._http.get(url, headers=JSON)
        except httpx.HTTPError as exc:
            raise unreachable(what, exc) from None
        if response.status_code != 200:
            raise ProviderUnavailable(
                f"{what}: the OpenID Provider answered HTTP {response.status_code}"
            )
        return json_object(response, what)

    async def _token_request(self, form: dict[str, str]) -> dict[str, Any]:
        """POST to the token endpoint with client_secret_basic (or as a public client when
        there is no secret); the answer, or ProviderRefused / ProviderUnavailable."""
        endpoint = (await self.metadata())["token_endpoint"]
        headers = dict(JSON)
        if self.settings.client_secret:
            headers["Authorization"] = basic_auth(
                self.settings.client_id, self.settings.client_secret
            )
        else:
            form = {**form, "client_id": self.settings.client_id}
        try:
            response = await self._http.post(endpoint, data=form, headers=headers)
        except httpx.HTTPError as exc:
            raise unreachable("token endpoint", exc) from None
        return token_answer(response)

    def _token_set(
        self, answer: Mapping[str, Any], *, identity: Identity | None, refresh_token: str | None
    ) -> TokenSet:
        return token_set(answer, now=self.clock(), identity=identity, refresh_token=refresh_token)
