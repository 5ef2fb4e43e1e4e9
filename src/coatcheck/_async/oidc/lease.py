"""Single-flight refresh of a session's provider tokens, across every process on one store.

With refresh-token rotation, a refresh token used twice makes the provider revoke the whole
chain: two requests (or tabs, or processes) that refresh one session at the same moment log
its user out. So one request refreshes and the others wait for its result:

1. **Take the lease.** The lease is a value in the session record itself
   (``coatcheck.oidc.lease``: a random holder id and an expiry), written with the store's
   optimistic ``update(..., expected_version=)``: of two requests that saw the same version,
   exactly one writes it. A lease that lapsed (its holder stalled or died) may be taken over.
2. **Look again.** With the lease held, the record is read once more, and refreshed only if
   its tokens still need it: another request may have refreshed it in between.
3. **Refresh, renewing.** While the provider call is in flight, the lease is extended every
   third of its duration, so a provider slower than the lease does not let a second request
   take it over and replay the refresh token.
4. **Fenced write.** The new tokens are written, and the lease released, in one write
   conditional on the version in which the lease is still this holder's (tried again for up
   to ``wait`` seconds while the store is down: the new refresh token exists nowhere
   else). A holder whose lease was taken over cannot write: its result is dropped and the
   request reads what the new holder wrote instead. (A lease that lapsed without being taken
   over is still its holder's: nobody else can have started a refresh without writing a lease
   of their own first, which the version check sees.)

Waiters read the record every ``poll`` seconds until the lease is gone (then they use the
tokens it holds) or ``wait`` seconds have passed (:class:`RefreshWaitExpired`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from typing import Any, Protocol

from ...core.clock import Clock, system_clock
from ...core.errors import CoatcheckError, SessionConflict, SessionGone, StoreUnavailable
from ...core.policy import WritePlan
from ...core.records import Patch, SessionRecord, encode_value
from ...core.tokens import SessionKey
from ...oidc.record import (
    LEASE_KEY,
    OIDC_KEY,
    Lease,
    RefreshWaitExpired,
    holds,
    new_lease,
    read_lease,
)
from ...oidc.renewing import log, poll_pause, run_renewing
from ..stores.base import AsyncStore

DEFAULT_POLL = 0.05
"""Seconds between two looks at a session another request is refreshing."""
STORE_RETRY_PAUSE = 0.25
"""Seconds between two tries to write a refresh's result while the store is down."""


class AsyncRefreshCall(Protocol):
    """Refreshes tokens: given the session's current ``coatcheck.oidc`` value (read under the
    lease), returns the value to store in its place."""

    async def __call__(self, oidc: dict[str, Any]) -> dict[str, Any]: ...


class AsyncRefreshLease:
    """Runs refreshes of one store's sessions one at a time per session (see the module)."""

    def __init__(
        self,
        store: AsyncStore,
        *,
        lease: float,
        wait: float,
        clock: Clock = system_clock,
        poll: float = DEFAULT_POLL,
        renew: bool = True,
    ) -> None:
        """``lease``: seconds a lease lasts unless renewed (every ``lease / 3`` while the call
        is in flight; ``renew=False`` turns that off, for tests of a stalled holder).
        ``wait``: how long a request waits for another's refresh."""
        if not lease > 0 or not wait > 0 or not poll > 0:
            raise ValueError("lease, wait and poll must be positive")
        self.store = store
        self.lease = lease
        self.wait = wait
        self.clock = clock
        self.poll = poll
        self.renew = renew

    async def refresh(
        self,
        key: SessionKey,
        needed: Callable[[Mapping[str, Any]], bool],
        call: AsyncRefreshCall,
    ) -> SessionRecord:
        """The session's record once its tokens no longer need a refresh: refreshed by this
        request (``call``, under the lease) or by another one it waited for.

        ``needed(data)`` says whether a record's data still needs a refresh. Raises what
        ``call`` raises (the lease released first), :class:`SessionGone` when the session ended
        meanwhile, :class:`RefreshWaitExpired` after ``wait`` seconds of waiting.
        """
        deadline = time.monotonic() + self.wait
        while True:
            record = await self._load(key)
            if not needed(record.data):
                return record
            lease = read_lease(record.data)
            if lease is None or lease.lapsed(self.clock()):
                mine = new_lease(self.clock(), self.lease)
                try:
                    await self._write(record, {LEASE_KEY: mine.value()})
                except SessionConflict:
                    continue  # another write came first: look again
                done = await self._holding(key, mine, needed, call)
                if done is not None:
                    return done
                continue  # the lease was taken over: the result was dropped; look again
            if time.monotonic() >= deadline:
                raise RefreshWaitExpired(
                    f"another request's refresh of this session's tokens did not finish within "
                    f"{self.wait:g} s (refresh_wait)"
                )
            await poll_pause(self.poll)

    async def _holding(
        self,
        key: SessionKey,
        mine: Lease,
        needed: Callable[[Mapping[str, Any]], bool],
        call: AsyncRefreshCall,
    ) -> SessionRecord | None:
        """With the lease taken: look again, refresh if still needed, write fenced. None when
        the lease was taken over before the result could be written."""
        try:
            record = await self._load(key)
            if not holds(record.data, mine.holder):
                return None
            if not needed(record.data):
                return await self._release(key, mine)
            current = record.data.get(OIDC_KEY)
            oidc = dict(current) if isinstance(current, Mapping) else {}

            async def renew() -> bool:
                return await self._extend(key, mine)

            async def refresh_now() -> dict[str, Any]:
                return await call(oidc)

            if self.renew:
                fresh = await run_renewing(refresh_now, renew, self.lease / 3)
            else:
                fresh = await refresh_now()
        except BaseException:
            await self._release_quietly(key, mine)
            raise
        return await self._kept(key, mine, {OIDC_KEY: fresh})

    async def _kept(
        self, key: SessionKey, mine: Lease, values: dict[str, Any]
    ) -> SessionRecord | None:
        """The fenced write of a refresh's result, tried again while the store is down (for up
        to ``wait`` seconds): with rotation the old refresh token is spent, and the new one
        exists nowhere else, so dropping it would end the session at the next refresh."""
        deadline = time.monotonic() + self.wait
        while True:
            try:
                return await self._fenced(key, mine, values)
            except StoreUnavailable:
                if time.monotonic() >= deadline:
                    raise
                log.warning("the session store failed to take refreshed OIDC tokens; retrying")
                await poll_pause(STORE_RETRY_PAUSE)

    async def _extend(self, key: SessionKey, mine: Lease) -> bool:
        """Push the lease's end ``lease`` seconds ahead; False once it is no longer ours."""
        while True:
            record = await self.store.load(key)
            if record is None or not holds(record.data, mine.holder):
                return False
            until = self.clock() + self.lease
            try:
                await self._write(record, {LEASE_KEY: Lease(mine.holder, until).value()})
                return True
            except SessionConflict:
                continue
            except SessionGone:
                return False

    async def _fenced(
        self, key: SessionKey, mine: Lease, values: dict[str, Any]
    ) -> SessionRecord | None:
        """Write ``values`` and release the lease, in the version where the lease is ours; None
        if it is not ours any more (nothing written)."""
        while True:
            record = await self._load(key)
            if not holds(record.data, mine.holder):
                return None
            try:
                return await self._write(record, values, release=True)
            except SessionConflict:
                continue

    async def _release(self, key: SessionKey, mine: Lease) -> SessionRecord | None:
        """Give the lease up (nothing refreshed); the record as written, or None if the lease
        is not ours any more."""
        return await self._fenced(key, mine, {})

    async def _release_quietly(self, key: SessionKey, mine: Lease) -> None:
        """Release after a failed refresh, so waiters need not sit out the lease; the failure
        itself is what the caller hears about (a store still down only delays the waiters)."""
        with suppress(CoatcheckError):
            await self._release(key, mine)

    async def _load(self, key: SessionKey) -> SessionRecord:
        record = await self.store.load(key)
        if record is None:
            raise SessionGone("the session ended while its tokens were being refreshed")
        return record

    async def _write(
        self, record: SessionRecord, values: dict[str, Any], *, release: bool = False
    ) -> SessionRecord:
        """One write conditional on ``record``'s version, leaving its deadlines as they are
        (the request's own save slides them); ``record`` updated to match the store."""
        patch = Patch(
            {name: encode_value(name, value) for name, value in values.items()},
            frozenset({LEASE_KEY}) if release else frozenset(),
        )
        plan = WritePlan(patch, record.last_seen_at, record.expires_at)
        record.version = await self.store.update(record.key, plan, expected_version=record.version)
        patch.apply_in_place(record.data)
        return record
