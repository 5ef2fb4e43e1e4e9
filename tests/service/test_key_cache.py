"""The API's memory of verified service keys (``RememberedKeys``): a live key is accepted
again without a store call for ``KEY_MAX_AGE`` seconds, so a key revoked elsewhere is refused
at the latest that much later (on a moved clock); unknown and revoked keys are never
remembered."""

from __future__ import annotations

import asyncio

from coatcheck.service.api.remembered import KEY_MAX_AGE, REMEMBERED_KEYS, RememberedKeys
from coatcheck.service.data import MemoryServiceData
from coatcheck.service.keys import ServiceKeyInfo, ServiceKeys


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class CountingKeys(ServiceKeys):
    """Counts the look-ups that reach the store's keys."""

    lookups = 0

    async def authenticate(self, key: object) -> ServiceKeyInfo | None:
        self.lookups += 1
        return await super().authenticate(key)


def test_a_live_key_is_remembered_then_asked_about_again() -> None:
    async def run() -> None:
        keys = CountingKeys(MemoryServiceData("memory://"))
        clock = Clock()
        remembered = RememberedKeys(keys, clock=clock)
        key, info = await keys.create("billing", "introspect")
        assert [await remembered.authenticate(key) for _ in range(3)] == [info] * 3
        assert keys.lookups == 1
        clock.now += KEY_MAX_AGE
        assert await remembered.authenticate(key) == info
        assert keys.lookups == 2

    asyncio.run(run())


def test_a_key_revoked_elsewhere_is_refused_after_max_age() -> None:
    async def run() -> None:
        data = MemoryServiceData("memory://")
        clock = Clock()
        remembered = RememberedKeys(ServiceKeys(data), clock=clock)
        elsewhere = ServiceKeys(data)  # the CLI, or another service process
        key, info = await elsewhere.create("billing", "admin")
        assert await remembered.authenticate(key) == info
        assert await elsewhere.revoke("billing")
        clock.now += KEY_MAX_AGE - 0.5
        assert await remembered.authenticate(key) == info
        clock.now += 0.5
        assert await remembered.authenticate(key) is None
        clock.now -= 1  # a refusal is not remembered: the store answers again, the same
        assert await remembered.authenticate(key) is None

    asyncio.run(run())


def test_unknown_and_malformed_keys_are_looked_up_every_time_or_never() -> None:
    async def run() -> None:
        keys = CountingKeys(MemoryServiceData("memory://"))
        remembered = RememberedKeys(keys)
        unknown = "cck_" + "a" * 43
        assert await remembered.authenticate(unknown) is None
        assert await remembered.authenticate(unknown) is None
        assert keys.lookups == 2
        assert await remembered.authenticate("cck_short") is None
        assert keys.lookups == 2

    asyncio.run(run())


def test_past_the_limit_every_key_is_forgotten() -> None:
    async def run() -> None:
        keys = CountingKeys(MemoryServiceData("memory://"))
        remembered = RememberedKeys(keys)
        made = [await keys.create(f"svc{i}", "introspect") for i in range(REMEMBERED_KEYS + 1)]
        for key, info in made:
            assert await remembered.authenticate(key) == info
        assert keys.lookups == REMEMBERED_KEYS + 1
        assert await remembered.authenticate(made[-1][0]) == made[-1][1]  # kept: the newest
        assert await remembered.authenticate(made[0][0]) == made[0][1]  # forgotten: asked again
        assert keys.lookups == REMEMBERED_KEYS + 2

    asyncio.run(run())
