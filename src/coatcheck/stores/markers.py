"""Markers: small named values with a lifetime, kept by every store beside the sessions.

They answer "have we seen this before?" across processes (a replay cache of OpenID Connect
logout-token ids, with ``only_if_absent``) and hold small lookups that must outlive a request
(a provider's session id -> the local user id). The rules are in :mod:`coatcheck.stores.base`;
the limits are checked here, once for every store, before anything is sent to a server, so
every store refuses the same input with the same :class:`InvalidMarker`.
"""

from __future__ import annotations

import math
import re
from typing import Final

from ..core.errors import InvalidMarker

MAX_NAME: Final = 200
"""Characters in a marker name: printable ASCII (``!`` to ``~``), no spaces."""
MAX_VALUE: Final = 4096
"""Characters in a marker value (any text without NUL that UTF-8 can encode)."""
MAX_TTL: Final = 400 * 86400.0
"""Seconds a marker may live (400 days): longer than any session's absolute lifetime."""

_NAME: Final = re.compile(rf"[!-~]{{1,{MAX_NAME}}}")


def check_name(name: object) -> str:
    """``name`` if it is a valid marker name, else :class:`InvalidMarker` saying why."""
    if not isinstance(name, str):
        raise InvalidMarker(f"a marker name must be a str, got {type(name).__name__}")
    if _NAME.fullmatch(name) is None:
        raise InvalidMarker(
            f"a marker name must be 1 to {MAX_NAME} printable ASCII characters without spaces, "
            f"got {_shown(name)}"
        )
    return name


def check_marker(name: object, value: object, ttl: object) -> float:
    """Check a marker about to be written; its lifetime in seconds as a float."""
    check_name(name)
    if not isinstance(value, str):
        raise InvalidMarker(f"a marker value must be a str, got {type(value).__name__}")
    if len(value) > MAX_VALUE:
        raise InvalidMarker(
            f"a marker value may hold at most {MAX_VALUE} characters, got {len(value)}"
        )
    if "\x00" in value:
        raise InvalidMarker("a marker value must not contain NUL characters")
    try:
        value.encode()
    except UnicodeEncodeError as exc:  # a lone surrogate: no store could keep it
        raise InvalidMarker(f"a marker value must be valid Unicode text: {exc.reason}") from exc
    if isinstance(ttl, bool) or not isinstance(ttl, int | float):
        raise InvalidMarker(f"a marker ttl must be a number of seconds, got {type(ttl).__name__}")
    if not (math.isfinite(ttl) and 0 < ttl <= MAX_TTL):
        raise InvalidMarker(
            f"a marker ttl must be more than 0 and at most {MAX_TTL:g} seconds (400 days), "
            f"got {ttl!r}"
        )
    return float(ttl)


def _shown(name: str) -> str:
    """The name as an error message shows it: quoted, and cut short if long."""
    return repr(name) if len(name) <= 60 else f"{name[:60]!r}... ({len(name)} characters)"
