"""coatcheck's pytest plugin (entry point ``pytest11: coatcheck``): fixtures for logged-in tests.

Loading the plugin changes nothing: every fixture acts only in the test that asks for it, and
nothing global is set unless the ini option ``coatcheck_testing = true`` says so. Disable the
plugin with ``-p no:coatcheck``.

Fixtures:

``coatcheck_clock``                 a :class:`FakeClock` (``.advance(seconds)``)
``coatcheck_policy``                the :class:`Policy` of the managers below; override it in a
                                    conftest to test other timeouts
``coatcheck_memory_manager``        a :class:`SessionManager` on ``memory://`` with that clock
``coatcheck_async_memory_manager``  the same for :class:`AsyncSessionManager`
``coatcheck_login``                 ``coatcheck_login(client, "alice", manager=..., cookie=...)``
                                    logs a test client in; returns the token (the manager
                                    defaults to the memory manager the test uses)
``coatcheck_alogin``                the same, awaited, for async tests
``coatcheck_testing_enabled``       sets ``COATCHECK_TESTING=1`` for one test (an autosession
                                    door built in that test may then open)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from .._async.manager import AsyncSessionManager
from .._sync.manager import SessionManager
from ..cookies import CookieSettings
from ..core.clock import FakeClock
from ..core.policy import Policy
from ..core.records import Kind
from ..stores import open_async_store, open_store
from .clients import alog_in, log_in
from .guard import ENABLE_VAR, TestingNotAllowed, ensure_testing_allowed
from .login import AnyLoginManager, AsyncLoginManager

INI_ENABLE = "coatcheck_testing"
SYNC_MANAGER = "coatcheck_memory_manager"
ASYNC_MANAGER = "coatcheck_async_memory_manager"
_SAVED_ENV = pytest.StashKey[str | None]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        INI_ENABLE,
        type="bool",
        default=False,
        help="coatcheck: set COATCHECK_TESTING=1 for the whole run, so that test servers the "
        "tests start (and inherit the environment) may open the autosession door",
    )


def pytest_configure(config: pytest.Config) -> None:
    if not config.getini(INI_ENABLE):
        return
    try:
        ensure_testing_allowed(explicit=True)
    except TestingNotAllowed as exc:
        raise pytest.UsageError(str(exc)) from exc
    config.stash[_SAVED_ENV] = os.environ.get(ENABLE_VAR)
    os.environ[ENABLE_VAR] = "1"


def pytest_unconfigure(config: pytest.Config) -> None:
    if _SAVED_ENV not in config.stash:
        return
    previous = config.stash[_SAVED_ENV]
    if previous is None:
        os.environ.pop(ENABLE_VAR, None)
    else:
        os.environ[ENABLE_VAR] = previous


@pytest.fixture
def coatcheck_clock() -> FakeClock:
    """A clock that moves only when told to (``coatcheck_clock.advance(3600)``)."""
    return FakeClock()


@pytest.fixture
def coatcheck_policy() -> Policy:
    """The policy of the memory managers; override this fixture to change it."""
    return Policy()


@pytest.fixture
def coatcheck_memory_manager(
    coatcheck_clock: FakeClock, coatcheck_policy: Policy
) -> Iterator[SessionManager]:
    """A private in-memory :class:`SessionManager` on the fake clock."""
    manager = SessionManager(open_store("memory://"), coatcheck_policy, clock=coatcheck_clock)
    yield manager
    manager.close()


@pytest.fixture
def coatcheck_async_memory_manager(
    coatcheck_clock: FakeClock, coatcheck_policy: Policy
) -> AsyncSessionManager:
    """A private in-memory :class:`AsyncSessionManager` on the fake clock (the memory store
    holds no connection, so there is nothing to close)."""
    return AsyncSessionManager(
        open_async_store("memory://"), coatcheck_policy, clock=coatcheck_clock
    )


@pytest.fixture
def coatcheck_testing_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    """``COATCHECK_TESTING=1`` for this test only (still refused in a production config)."""
    ensure_testing_allowed(explicit=True)
    monkeypatch.setenv(ENABLE_VAR, "1")


class Login:
    """The ``coatcheck_login`` callable: log a test client in as a user, in one line."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request

    def __call__(
        self,
        client: Any,
        user_id: str,
        manager: AnyLoginManager | None = None,
        cookie: CookieSettings | None = None,
        *,
        kind: Kind = "browser",
        data: dict[str, Any] | None = None,
        base_url: str | None = None,
    ) -> str:
        """Returns the token. ``manager`` defaults to the plugin's memory manager this test
        uses (``coatcheck_async_memory_manager`` if it uses only that one, else
        ``coatcheck_memory_manager``); ``cookie`` to the secure defaults (pass the app's
        ``CookieSettings`` if it has its own)."""
        ensure_testing_allowed(explicit=True)  # a fixture is test-only by construction
        if manager is None:
            used = self._request.fixturenames
            only_async = ASYNC_MANAGER in used and SYNC_MANAGER not in used
            manager = self._request.getfixturevalue(ASYNC_MANAGER if only_async else SYNC_MANAGER)
        return log_in(
            client, manager, user_id, cookie=cookie, kind=kind, data=data, base_url=base_url
        )


class AsyncLogin:
    """The ``coatcheck_alogin`` callable: :class:`Login` for async tests."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request

    async def __call__(
        self,
        client: Any,
        user_id: str,
        manager: AsyncLoginManager | None = None,
        cookie: CookieSettings | None = None,
        *,
        kind: Kind = "browser",
        data: dict[str, Any] | None = None,
        base_url: str | None = None,
    ) -> str:
        """Returns the token. ``manager`` defaults to ``coatcheck_async_memory_manager``."""
        ensure_testing_allowed(explicit=True)
        if manager is None:
            manager = self._request.getfixturevalue(ASYNC_MANAGER)
        return await alog_in(
            client, manager, user_id, cookie=cookie, kind=kind, data=data, base_url=base_url
        )


@pytest.fixture
def coatcheck_login(request: pytest.FixtureRequest) -> Login:
    """``coatcheck_login(client, "alice")``: the client is now logged in as alice."""
    return Login(request)


@pytest.fixture
def coatcheck_alogin(request: pytest.FixtureRequest) -> AsyncLogin:
    """``await coatcheck_alogin(client, "alice")`` for async tests and async clients."""
    return AsyncLogin(request)
