"""The session service's client for other services, and the session backend that validates
cookies and API tokens through it (docs/client.md).

:class:`AsyncServiceClient` has one method per endpoint of the service's JSON API; with a
:class:`~coatcheck.client.cache.ClientCache` it answers repeated introspections of active
tokens from memory while the revocation stream keeps that memory honest.
:class:`AsyncRemoteSessions` is an ``AsyncSessionBackend`` over the client, for the web
layer's middleware (:mod:`coatcheck.client.middleware`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from ..client import events
from ..client.answers import count, decoded, flag, listing, revoked_by_id
from ..client.cache import ClientCache, cache_key
from ..client.errors import ServiceUnavailable, unreachable
from ..client.models import (
    CreatedSession,
    CreatedToken,
    Introspection,
    Refreshed,
    SessionInfo,
    token_info,
)
from ..client.remote import (
    anonymous,
    ip_address,
    login_elsewhere,
    refuse,
    refuse_changes,
    remote_bearer,
    remote_session,
    service_errors,
)
from ..core.apitokens import ApiTokenInfo, looks_like_api_token
from ..core.clock import Clock, system_clock
from ..core.errors import ConfigError
from ..core.policy import Policy, Verdict
from ..core.records import Kind
from ..core.session import Session
from ..core.tokens import is_well_formed

CREATED = (200, 201)


class AsyncServiceClient:
    """Calls the session service at ``base_url`` with a service key (``cck_...``).

    timeout: seconds for each call (connect, read, write, pool).
    http: an ``httpx`` client of your own (TLS settings, proxies, a test transport); it is
        not closed by :meth:`aclose`. Default: one made and closed here.
    cache: a :class:`ClientCache` for introspections (off by default; one cache per client).
        With one, the client listens to the service's revocation stream from the first
        introspection on (or from :meth:`start_events`).
    """

    def __init__(
        self,
        base_url: str,
        service_key: str,
        *,
        timeout: float = 5.0,
        http: httpx.AsyncClient | None = None,
        cache: ClientCache | None = None,
    ) -> None:
        parts = urlsplit(base_url) if isinstance(base_url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"base_url must be an http:// or https:// URL, got {base_url!r}")
        if not isinstance(service_key, str) or not service_key.strip():
            raise ConfigError("service_key must be the service key text (cck_...)")
        if cache is not None and cache.owner is not None:
            raise ConfigError("a ClientCache serves one client: give each client its own")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._headers = {"authorization": f"Bearer {service_key.strip()}"}
        self._http = http if http is not None else httpx.AsyncClient(timeout=timeout)
        self._owns_http = http is None
        self.cache = cache
        self.events: events.AsyncEventRunner | None = None
        if cache is not None:
            cache.owner = self
            url = self.base_url + events.EVENTS_PATH
            listener = events.EventListener(cache, url, self._headers, connect_timeout=timeout)
            self.events = events.AsyncEventRunner(listener)

    def __repr__(self) -> str:  # never the key
        return f"<{type(self).__name__} {self.base_url} cache={'on' if self.cache else 'off'}>"

    async def __aenter__(self) -> AsyncServiceClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop listening to the stream and close the connections this client made."""
        if self.events is not None:
            await self.events.stop()
        if self._owns_http:
            await self._http.aclose()

    async def start_events(self, wait: float = 5.0) -> bool:
        """Connect the revocation stream now (else it connects on the first introspection)
        and wait up to ``wait`` seconds: True once connected (the cache is live), False if
        not yet or if this client has no cache."""
        if self.events is None:
            return False
        return await self.events.wait_connected(wait)

    # -- sessions -------------------------------------------------------------------------

    async def create_session(
        self,
        user_id: str,
        *,
        kind: Kind = "browser",
        client_ip: str | None = None,
        user_agent: str | None = None,
        data: dict[str, Any] | None = None,
        remember: bool = False,
    ) -> CreatedSession:
        """A session for a user your app authenticated; the token is in the answer (once)."""
        body: dict[str, Any] = {"user_id": user_id, "kind": kind}
        optional = {"client_ip": client_ip, "user_agent": user_agent, "data": data}
        body.update((name, value) for name, value in optional.items() if value is not None)
        if remember:
            body["remember"] = True
        answer = await self._call("POST", "/v1/sessions", body)
        return decoded(answer, CreatedSession.from_json, ok=CREATED)

    async def introspect(
        self, token: str, *, touch: bool = False, client_ip: str | None = None
    ) -> Introspection:
        """Is this session or API token active, and whose is it? ``touch=True`` counts the
        call as activity (the idle timeout slides, within the policy's touch interval).
        ``client_ip``: the end user's address, for a service policy that binds sessions to
        addresses.

        With a live cache, a recent active answer (for the same ``client_ip``) is served from
        memory (no call, no touch).
        """
        if not isinstance(token, str):
            raise TypeError(f"token must be a str, not {type(token).__name__}")
        cache, key, ticket = self.cache, b"", 0
        if cache is not None:
            assert self.events is not None
            self.events.start()
            key = cache_key(token)
            hit = cache.get(key, client_ip)
            if hit is not None:
                return hit
            ticket = cache.ticket()
        body: dict[str, Any] = {"token": token, "touch": touch}
        if client_ip is not None:
            body["client_ip"] = client_ip
        answer = await self._call("POST", "/v1/sessions/introspect", body)
        result = decoded(answer, Introspection.from_json, secret=token)
        if cache is not None and result.active:
            cache.put(key, result, ticket, client_ip)
        return result

    async def refresh(self, token: str, *, client_ip: str | None = None) -> Refreshed:
        """Extend the session within its policy ("check session"); the new expiry."""
        body = {"token": token} if client_ip is None else {"token": token, "client_ip": client_ip}
        answer = await self._call("POST", "/v1/sessions/refresh", body)
        return decoded(answer, Refreshed.from_json, secret=token)

    async def revoke(self, token: str) -> bool:
        """End a session or API token by its token; True if it was live. A cached answer
        for it is dropped at once."""
        if self.cache is not None:
            self.cache.drop_key(cache_key(token))
        answer = await self._call("POST", "/v1/sessions/revoke", {"token": token})
        return flag(answer, "revoked", secret=token)

    async def list_sessions(self, user_id: str) -> list[SessionInfo]:
        """A user's live sessions (API tokens are listed by :meth:`list_tokens`)."""
        answer = await self._call("GET", f"/v1/users/{_segment(user_id)}/sessions")
        return listing(answer, "sessions", SessionInfo.from_json)

    async def revoke_user_sessions(
        self, user_id: str, *, except_token: str | None = None, include_tokens: bool = False
    ) -> int:
        """End every session of a user ("log out everywhere"), but the one of
        ``except_token``; with ``include_tokens`` the user's API tokens too. How many ended."""
        if self.cache is not None:
            keep = cache_key(except_token) if except_token is not None else None
            self.cache.drop(user_id=user_id, keep=keep)
        body: dict[str, Any] = {"include_tokens": include_tokens}
        if except_token is not None:
            body["except_token"] = except_token
        answer = await self._call("DELETE", f"/v1/users/{_segment(user_id)}/sessions", body)
        return count(answer, "revoked", secret=except_token)

    async def revoke_session(self, public_id: str) -> bool:
        """End a session by its public id (listings show it); False if there is no such
        live session."""
        if self.cache is not None:
            self.cache.drop(public_id=public_id)
        return revoked_by_id(await self._call("DELETE", f"/v1/sessions/{_segment(public_id)}"))

    # -- API tokens -----------------------------------------------------------------------

    async def create_token(
        self,
        user_id: str,
        name: str,
        *,
        scopes: Sequence[str] = (),
        expires_in: int | None = None,
    ) -> CreatedToken:
        """A new API token for a user; the token is in the answer (once)."""
        body: dict[str, Any] = {"user_id": user_id, "name": name, "scopes": list(scopes)}
        if expires_in is not None:
            body["expires_in"] = expires_in
        answer = await self._call("POST", "/v1/tokens", body)
        return decoded(answer, CreatedToken.from_json, ok=CREATED)

    async def list_tokens(self, user_id: str) -> list[ApiTokenInfo]:
        """A user's API tokens (metadata only)."""
        answer = await self._call("GET", f"/v1/users/{_segment(user_id)}/tokens")
        return listing(answer, "tokens", token_info)

    async def revoke_token(self, token_id: str) -> bool:
        """Revoke an API token by its id; False if there is no such live token."""
        if self.cache is not None:
            self.cache.drop(public_id=token_id)
        return revoked_by_id(await self._call("DELETE", f"/v1/tokens/{_segment(token_id)}"))

    async def health(self) -> bool:
        """True when the service and its store answer; False when either does not."""
        try:
            answer = await self._call("GET", "/healthz")
        except ServiceUnavailable:
            return False
        return answer.status_code == 200

    # -- the one way out ------------------------------------------------------------------

    async def _call(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> httpx.Response:
        """One request with the service key; a transport failure is ServiceUnavailable."""
        try:
            return await self._http.request(
                method, self.base_url + path, json=body, headers=self._headers, timeout=self.timeout
            )
        except httpx.HTTPError as exc:
            raise unreachable(method, path, exc) from exc


def _segment(value: str) -> str:
    """A user id or public id as one path segment (tokens never go into a URL)."""
    if not isinstance(value, str) or not value:
        raise ValueError("an id must be a non-empty str")
    return quote(value, safe="")


class AsyncRemoteSessions:
    """The web layer's session backend through the session service.

    ``load`` introspects the cookie's token with ``touch=True`` (so activity here keeps the
    session alive there); the session is read-only here (``SessionReadOnly`` on a
    write), logging in happens on the service, ``logout`` revokes there. The service down (or
    refusing the service key) is a store outage: the web layer answers 503.
    """

    def __init__(
        self,
        client: AsyncServiceClient,
        *,
        policy: Policy | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self.client = client
        self.policy = policy or Policy()
        self.clock = clock

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.client!r}>"

    async def load(
        self, token: str | None, *, client_ip: str | None = None, user_agent: str | None = None
    ) -> Session:
        if not token:
            return anonymous(client_ip, user_agent)
        if not is_well_formed(token):
            return anonymous(client_ip, user_agent, Verdict.UNKNOWN)
        with service_errors("validating a session"):
            answer = await self.client.introspect(
                token, touch=True, client_ip=ip_address(client_ip)
            )
        return remote_session(answer, token, client_ip, user_agent)

    async def load_many(
        self,
        tokens: Sequence[str | None],
        *,
        client_ip: str | None = None,
        user_agent: str | None = None,
    ) -> list[Session]:
        return [await self.load(t, client_ip=client_ip, user_agent=user_agent) for t in tokens]

    async def save(self, session: Session) -> None:
        refuse_changes(session)

    async def login(
        self,
        session: Session,
        user_id: str,
        *,
        carry: bool | Collection[str] = True,
        kind: Kind | None = None,
        remember: bool = False,
    ) -> str:
        raise login_elsewhere()

    async def rotate(self, session: Session, *, reauthenticated: bool = False) -> str:
        refuse("rotated")

    async def logout(self, session: Session) -> None:
        """Revoke the session on the service; the response then expires the cookie."""
        token = getattr(session, "presented", None)
        if session.record is not None and token:
            with service_errors("logging out"):
                await self.client.revoke(token)
        session.record = None
        session.ended = True

    async def logout_other_sessions(self, session: Session) -> int:
        token = getattr(session, "presented", None)
        if session.user_id is None or not token:
            return 0
        with service_errors("ending the other sessions"):
            return await self.client.revoke_user_sessions(session.user_id, except_token=token)

    async def revoke_session(
        self, public_id: str, *, user_id: str | None = None, reason: str = "revoked"
    ) -> bool:
        with service_errors("ending a session"):
            if user_id is not None:
                listed_ids = {s.id for s in await self.client.list_sessions(user_id)}
                if public_id not in listed_ids:
                    return False
            return await self.client.revoke_session(public_id)

    async def verify_bearer(
        self, token: str, *, client_ip: str | None, user_agent: str | None
    ) -> Session | None:
        """An ``Authorization: Bearer`` API token (on a request without a session cookie):
        the token user's read-only session if the service says it is active, else None (the
        guards answer 401). Malformed values are refused without a call."""
        if not looks_like_api_token(token):
            return None
        with service_errors("validating an API token"):
            answer = await self.client.introspect(
                token, touch=True, client_ip=ip_address(client_ip)
            )
        return remote_bearer(answer, client_ip, user_agent)

    async def close(self) -> None:
        await self.client.aclose()
