"""coatcheck: sensible, secure session management for Python web applications."""

from __future__ import annotations

from ._async.manager import AsyncSessionManager
from ._sync.manager import SessionManager
from .core.clock import FakeClock, system_clock
from .core.errors import (
    CoatcheckError,
    ConfigError,
    InvalidSessionId,
    InvalidToken,
    SessionConflict,
    SessionDataError,
    SessionGone,
    SessionLimitReached,
    SessionTooLarge,
    StoreUnavailable,
)
from .core.policy import Policy, Verdict
from .core.records import SessionRecord
from .core.session import Session
from .stores import open_async_store, open_store

__version__ = "0.1.0"

__all__ = [
    "AsyncSessionManager",
    "CoatcheckError",
    "ConfigError",
    "FakeClock",
    "InvalidSessionId",
    "InvalidToken",
    "Policy",
    "Session",
    "SessionConflict",
    "SessionDataError",
    "SessionGone",
    "SessionLimitReached",
    "SessionManager",
    "SessionRecord",
    "SessionTooLarge",
    "StoreUnavailable",
    "Verdict",
    "open_async_store",
    "open_store",
    "system_clock",
]
