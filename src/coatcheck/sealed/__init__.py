"""Sealed cookie mode: the session travels in the cookie, encrypted and authenticated.

Switch from server mode by constructing a different manager; the web layer and the
application code stay the same::

    from coatcheck.sealed import AsyncSealedSessionManager, SealedSessionManager

    manager = SealedSessionManager()  # keys from COATCHECK_SEALED_KEYS

Read docs/sealed.md first: a sealed cookie cannot be revoked one by one.
"""

from __future__ import annotations

from .._async.sealed.manager import AsyncSealedSessionManager
from .._sync.sealed.manager import SealedSessionManager
from .codec import KEYS_ENV, KeyRing, SealedRecord, generate_key

__all__ = [
    "KEYS_ENV",
    "AsyncSealedSessionManager",
    "KeyRing",
    "SealedRecord",
    "SealedSessionManager",
    "generate_key",
]
