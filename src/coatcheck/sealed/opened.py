"""The sessions of the cookie values a process sealed or opened most recently."""

from __future__ import annotations

from contextlib import suppress

from ..core.errors import ConfigError
from ..core.policy import Policy
from ..core.records import Kind
from .payload import decode_payload
from .record import SealedRecord

OPENED_CACHE_SIZE = 1024  # cookie values whose sessions a manager keeps (OpenedValues)

# SealedRecord's positional arguments around expires_at and data (see OpenedValues).
_Head = tuple[str | None, Kind, float, float, float | None]
_Tail = tuple[str, float, str | None, str | None]


class OpenedValues:
    """The sessions of the cookie values this process sealed or opened most recently.

    A browser sends the same cookie until it gets a new one, and a sealed cookie is re-issued
    only by a write (or a touch past the touch interval), so most requests present a value
    this process has already opened. A hit skips base64, AES-GCM and the validation of the
    payload's fields, and is exact: the value must be byte-identical to one that this key ring
    sealed, or opened and validated, for this cookie name. Each hit still decodes the data
    from its JSON text (every request gets its own copy to change), and timeouts and
    revocation stamps are checked as always.

    At most ``size`` values are kept, the oldest put in dropped first (each takes its value's
    length and about as much again for its fields and data; at most about 8 KB, typically
    under 1 KB). ``size=0`` keeps none. Safe to share between threads: a race costs at most
    one extra entry.
    """

    __slots__ = ("_opened", "size")

    def __init__(self, size: int = OPENED_CACHE_SIZE) -> None:
        if type(size) is not int or size < 0:
            raise ConfigError(f"the opened-values cache size must be an int >= 0, got {size!r}")
        self.size = size
        # value -> (cookie name, the constructor's arguments before expires_at, the data as
        # JSON text, the arguments after data, the remember flag); expires_at follows from the
        # policy
        self._opened: dict[str, tuple[str, _Head, str, _Tail, bool]] = {}

    def __len__(self) -> int:
        return len(self._opened)

    def get(self, value: str, name: str, policy: Policy) -> SealedRecord | None:
        """A fresh record for ``value`` if it was sealed or opened for ``name`` lately."""
        hit = self._opened.get(value)
        if hit is None or hit[0] != name:
            return None
        _, head, data, tail, remember = hit  # head: user, kind, created, seen, authenticated
        expires_at = policy.expires_at(head[2], head[3], remember)
        return SealedRecord(*head, expires_at, decode_payload(data), *tail, 1, remember)

    def put(self, value: str, name: str, record: SealedRecord, data: str) -> None:
        """Remember ``record`` (its fields are copied; ``data`` is its data as JSON text)."""
        opened = self._opened
        if len(opened) >= self.size:
            if not self.size:
                return
            # First in, first out (dicts keep insertion order); another thread may get there
            # first.
            with suppress(KeyError, RuntimeError, StopIteration):
                del opened[next(iter(opened))]
        r = record
        head = (r.user_id, r.kind, r.created_at, r.last_seen_at, r.authenticated_at)
        tail = (r.sid_text, r.issued_at, r.client_ip, r.user_agent)
        opened[value] = (name, head, data, tail, r.remember)
