"""Everything one service process works with, built once from its settings and shared by the
API, the pages and the CLI. It holds no state of its own: every object here reads and writes
the store, so any number of processes on one store agree. The one exception is the optional
introspection cache (off by default), which follows the store's revocation events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .._async.apitokens import AsyncApiTokens
from .._async.manager import AsyncSessionManager
from .._async.stores.by_url import open_async_store
from ..client.cache import ClientCache
from ..core.clock import Clock, system_clock
from ..core.errors import ConfigError
from ..core.records import SessionRecord
from ..core.tokens import SessionKey
from ..stores.kinds import scheme_of
from .actions import announce_ended
from .data import ServiceData, open_service_data
from .events import RevocationEvents
from .introspection_cache import MAX_ENTRIES, IntrospectionCache, LocallyDroppingEvents
from .keys import ServiceKeys
from .lookups import COALESCED_KINDS, CoalescedInspections
from .metrics import InstrumentedStore, ServiceMetrics
from .settings import ServiceSettings
from .throttle import LoginThrottle
from .users import LocalUsers

if TYPE_CHECKING:
    from .._async.oidc.flow import AsyncOIDCFlow

SEALED_REFUSED = (
    "the session service keeps sessions server-side only (it must be able to list and revoke "
    "them): COATCHECK_SESSION_MODE=sealed is not supported here; unset it or set it to 'server'"
)


@dataclass(eq=False, slots=True)
class ServiceContext:
    """The service's parts, on one store URL (sessions and service data side by side)."""

    settings: ServiceSettings
    sessions: AsyncSessionManager
    tokens: AsyncApiTokens
    data: ServiceData
    users: LocalUsers
    service_keys: ServiceKeys
    throttle: LoginThrottle
    events: RevocationEvents
    metrics: ServiceMetrics
    inspections: CoalescedInspections
    """``sessions.inspect`` for the introspection endpoint: concurrent calls in one round trip
    on the store kinds where that was measured to help (``lookups.COALESCED_KINDS``)."""
    introspection_cache: IntrospectionCache | None = None
    """With ``settings.introspection_cache`` only: this process's cache of introspections."""
    oidc: AsyncOIDCFlow | None = None
    """With OpenID Connect login on (``settings.oidc_login``): the relying party, whose
    provider client :meth:`close` closes. Every session it ends is announced."""

    @classmethod
    def build(cls, settings: ServiceSettings, *, clock: Clock = system_clock) -> ServiceContext:
        """Every part, without any I/O (stores connect on first use, so the service starts
        while its store is down and reports that on ``/healthz``). ``clock`` is the sessions'
        (tests move it instead of sleeping). Sealed mode is refused with a ConfigError."""
        library = settings.library
        if library.session_mode != "server":
            raise ConfigError(SEALED_REFUSED)
        metrics = ServiceMetrics()
        data = open_service_data(settings.store_url)
        cache = None
        if settings.introspection_cache > 0:
            cache = ClientCache(settings.introspection_cache, MAX_ENTRIES, clock=clock)
            events: RevocationEvents = LocallyDroppingEvents(data, cache)
        else:
            events = RevocationEvents(data)

        async def evicted(keys: Sequence[SessionKey]) -> None:
            await announce_ended(events, keys)

        store = InstrumentedStore(open_async_store(settings.store_url), metrics, evicted)
        sessions = AsyncSessionManager(
            store,
            library.policy,
            clock=clock,
            log_key=library.log_key,
            token_key=library.token_key,
        )
        tokens = AsyncApiTokens(sessions)
        oidc = None
        if settings.oidc_login:
            from .._async.oidc.flow import AsyncOIDCFlow

            async def revoked(record: SessionRecord, reason: str) -> None:
                await announce_ended(events, [record.key])

            assert settings.oidc is not None
            oidc = AsyncOIDCFlow(sessions, settings.oidc, on_revoked=revoked)
        return cls(
            settings=settings,
            sessions=sessions,
            tokens=tokens,
            data=data,
            users=LocalUsers(data),
            service_keys=ServiceKeys(data),
            throttle=LoginThrottle(
                data,
                per_account=settings.login_limit_account,
                per_ip=settings.login_limit_ip,
            ),
            events=events,
            metrics=metrics,
            inspections=CoalescedInspections(
                sessions, coalesce=scheme_of(settings.store_url) in COALESCED_KINDS
            ),
            introspection_cache=None
            if cache is None
            else IntrospectionCache(
                cache,
                events,
                session_touch=library.policy.touch_interval,
                token_touch=tokens.touch_interval,
            ),
            oidc=oidc,
        )

    async def ping(self) -> None:
        """One round trip to the session store and one to the service data;
        :class:`~coatcheck.core.errors.StoreUnavailable` if either is down."""
        await self.sessions.store.load(PING_KEY)
        await self.data.ping()

    async def close(self) -> None:
        """Close both connections (pools, files) and the OpenID Provider's HTTP client; the
        context is not used afterwards."""
        try:
            if self.oidc is not None:
                await self.oidc.aclose()
        finally:
            try:
                await self.sessions.close()
            finally:
                await self.data.close()


PING_KEY = SessionKey(bytes(4), bytes(32))
"""A store key no token can have (an all-zero digest): loading it is a pure round trip."""
