"""What the generated login helpers share: the session a test login starts from, and the check
that a manager has the face (async or sync) the helper was called for. ``expect_async`` and
``expect_sync`` are where the two helpers differ (``scripts/unasync.py`` maps one to the
other)."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from ..core.records import Kind
from ..core.session import Session


def is_coroutine_manager(manager: object) -> bool:
    """True for managers whose methods are coroutines (``AsyncSessionManager`` and kin)."""
    return inspect.iscoroutinefunction(getattr(manager, "login", None))


def expect_async(manager: object) -> None:
    if not is_coroutine_manager(manager):
        raise TypeError(f"{type(manager).__name__} is synchronous: use login_token")


def expect_sync(manager: object) -> None:
    if is_coroutine_manager(manager):
        raise TypeError(f"{type(manager).__name__} is asynchronous: use alogin_token")


def fresh_session(kind: Kind, data: Mapping[str, Any] | None) -> Session:
    """A new session holding ``data``, as if the app had set it before the login."""
    session = Session(None, kind=kind)
    for key, value in (data or {}).items():
        session[key] = value  # checked for JSON here, like any session value
    return session
