"""The test login helpers, :func:`login_token` and :func:`alogin_token`, written once in
``coatcheck/_async/testing/login.py``, and what the other helpers need to take either kind of
manager."""

from __future__ import annotations

from typing import TypeGuard

from .._async.testing.login import AsyncLoginManager, alogin_token
from .._sync.testing.login import LoginManager, login_token
from .faces import is_coroutine_manager

__all__ = [
    "AnyLoginManager",
    "AsyncLoginManager",
    "LoginManager",
    "alogin_token",
    "is_async",
    "login_token",
]

AnyLoginManager = LoginManager | AsyncLoginManager


def is_async(manager: AnyLoginManager) -> TypeGuard[AsyncLoginManager]:
    """True for managers whose methods are coroutines (``AsyncSessionManager`` and kin)."""
    return is_coroutine_manager(manager)
