"""Configuration: ``COATCHECK_*`` names read into one frozen :class:`Settings`.

One reader (:func:`read_settings`) for the CLI and every adapter, so a name means the same
thing wherever it is set (``os.environ``, Flask's ``app.config``, Django's settings, a TOML
table). The reference table of every name is in the README's "Configuration" section.

This package sits just above :mod:`coatcheck.core`: it imports nothing else of coatcheck, and
stores, managers and the web layer build their own objects from its plain values.
"""

from __future__ import annotations

from .settings import (
    DEPLOYMENT_NAMES,
    NAMES,
    POLICY_NAMES,
    ConfigWarning,
    Settings,
    read_settings,
)
from .values import flag, optional_int, parse_duration

__all__ = [
    "DEPLOYMENT_NAMES",
    "NAMES",
    "POLICY_NAMES",
    "ConfigWarning",
    "Settings",
    "flag",
    "optional_int",
    "parse_duration",
    "read_settings",
]
