"""How one setting's value is read from a mapping: the parsers :func:`read_settings` uses.

Strings are accepted for every kind of value, so environment variables work: flags
(``true``/``false``/``1``/``0``), lists (comma-separated), durations (``90``, ``30s``, ``15m``,
``2h``, ``7d``). Every error names the key it read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any, Literal, TypeVar, cast

from ..core.errors import ConfigError

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)", re.IGNORECASE)
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}

C = TypeVar("C", bound=str)


def parse_duration(text: str, *, allow_zero: bool = False) -> float:
    """``30s``, ``15m``, ``2h``, ``7d`` or plain seconds, as positive float seconds (or zero,
    where ``allow_zero`` says "every time" is a meaningful interval)."""
    match = _DURATION_RE.fullmatch(text.strip())
    seconds = float(match[1]) * _UNITS[match[2].lower()] if match else -1.0
    if seconds < 0 or (seconds == 0 and not allow_zero):
        kind = "a number >= 0" if allow_zero else "a positive number"
        raise ValueError(
            f"malformed duration {text!r}: use {kind} with a unit s, m, h or d (30s, 15m, 2h, 7d)"
        )
    return seconds


def flag(config: Mapping[str, Any], key: str, default: bool) -> bool:
    value = config.get(key, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ConfigError(f"{key} must be true or false, got {value!r}")


def strings(config: Mapping[str, Any], key: str, default: Iterable[str]) -> tuple[str, ...]:
    """A list setting; a string is split on commas (so environment variables work)."""
    value = config.get(key, default)
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, Iterable) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError(f"{key} must be a list of strings, got {value!r}")


def seconds(
    config: Mapping[str, Any], key: str, default: float, *, allow_zero: bool = False
) -> float:
    """Seconds, as a number, a ``timedelta`` or a duration string."""
    value = config.get(key, default)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return parse_duration(value, allow_zero=allow_zero)
        except ValueError as exc:
            raise ConfigError(f"{key}: {exc}") from None
    raise ConfigError(f"{key} must be a duration (seconds, a timedelta or 15m), got {value!r}")


def optional_seconds(config: Mapping[str, Any], key: str) -> float | None:
    """A duration as :func:`seconds` reads it, or None when the key is absent or empty."""
    value = config.get(key)
    return None if value is None or value == "" else seconds(config, key, 0.0)


def optional_int(config: Mapping[str, Any], key: str, default: int | None) -> int | None:
    value = config.get(key, default)
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise ConfigError(f"{key} must be an integer or empty, got {value!r}")


def integer(config: Mapping[str, Any], key: str, default: int) -> int:
    """A whole number; absent or empty is the default."""
    value = optional_int(config, key, default)
    return default if value is None else value


def optional_str(config: Mapping[str, Any], key: str, default: str | None) -> str | None:
    value = config.get(key, default)
    if value is None or isinstance(value, str):
        return value or None
    raise ConfigError(f"{key} must be a string, got {value!r}")


def text(config: Mapping[str, Any], key: str, default: str) -> str:
    """A string setting; absent or empty is the default."""
    return optional_str(config, key, default) or default


def choice(config: Mapping[str, Any], key: str, default: C, choices: Iterable[C]) -> C:
    """One of ``choices``, matched without regard to case."""
    value = config.get(key, default)
    allowed = {c.lower(): c for c in choices}
    if isinstance(value, str) and value.strip().lower() in allowed:
        return allowed[value.strip().lower()]
    names = " or ".join(repr(c) for c in allowed.values())
    raise ConfigError(f"{key} must be {names}, got {value!r}")


def same_site(
    config: Mapping[str, Any], key: str, default: str
) -> Literal["Lax", "Strict", "None"]:
    value = str(config.get(key, default)).strip().capitalize()
    if value not in ("Lax", "Strict", "None"):
        raise ConfigError(f"{key} must be Lax, Strict or None, got {value!r}")
    return cast(Literal["Lax", "Strict", "None"], value)


def keys(config: Mapping[str, Any], key: str) -> tuple[str | bytes, ...]:
    """A list of keys: comma-separated text, one raw ``bytes`` key, or a list of either.
    Messages never show a value: they are secrets."""
    value = config.get(key)
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, bytes | bytearray):
        return (bytes(value),)
    if isinstance(value, Iterable) and all(isinstance(v, str | bytes) for v in value):
        return tuple(value)
    raise ConfigError(f"{key} must be comma-separated keys or a list of keys")
