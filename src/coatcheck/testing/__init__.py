"""Testing support: log a test client in as a user in one line, and an autosession door.

Everything here is a test door, so nothing opens by import: each helper checks
:func:`ensure_testing_allowed` when it is called (see :mod:`coatcheck.testing.guard` for the
exact conditions). The pytest fixtures live in :mod:`coatcheck.testing.plugin`, registered as
the ``coatcheck`` pytest plugin. Guide: ``docs/testing.md``.
"""

from __future__ import annotations

from .autosession import DEFAULT_PATH, AutoSessionASGI, AutoSessionWSGI
from .clients import alog_in, alog_out, cookies_of, log_in, log_out
from .guard import TestingNotAllowed, ensure_testing_allowed, is_loopback
from .login import alogin_token, login_token

__all__ = [
    "DEFAULT_PATH",
    "AutoSessionASGI",
    "AutoSessionWSGI",
    "TestingNotAllowed",
    "alog_in",
    "alog_out",
    "alogin_token",
    "cookies_of",
    "ensure_testing_allowed",
    "is_loopback",
    "log_in",
    "log_out",
    "login_token",
]
