"""What the web layer needs from a session manager (:class:`SessionBackend`,
:class:`AsyncSessionBackend`) and the builders that make one from settings, server-side or
sealed (:func:`build_backend`, :func:`build_async_backend`). Written once in
``coatcheck/_async/web/backend.py``; the switch itself is :mod:`coatcheck.web.modes`."""

from __future__ import annotations

from .._async.web.backend import AsyncSessionBackend, build_async_backend
from .._sync.web.backend import SessionBackend, build_backend
from .modes import Overrides, value_check

__all__ = [
    "AsyncSessionBackend",
    "Overrides",
    "SessionBackend",
    "build_async_backend",
    "build_backend",
    "value_check",
]
