"""The client's optional positive cache: recent ACTIVE introspections, honestly invalidated.

Rules (docs/client.md, "The cache"):

* Keyed by the token's SHA-256, never the token; only active answers are kept, each until
  ``max_age`` seconds have passed or the session's own ``expires_at``, whichever comes first.
* Live only while the revocation stream (``/v1/events``) is connected: until it connects,
  while it is down, and across a reconnect, nothing is served from the cache and nothing is
  stored; a (re)connection and an ``event: reset`` flush it.
* A revocation event drops the entries of its public id or digest prefix; the client's own
  revocations drop theirs at once.
* An answer that was in flight while a matching revocation (or a flush) arrived is not
  stored: every drop is numbered, and :meth:`put` takes the number read before the call.

Thread-safe (one lock, held for dictionary work only): the synchronous client's listener
runs in a thread of its own.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from ..core.errors import ConfigError
from ..core.tokens import sha256
from .models import Introspection

PREFIX_BYTES = 8  # the events' digest prefix: the first 16 hex digits of the store digest
RECENT_DROPS = 1024  # drops remembered for answers still in flight
K = TypeVar("K")


def cache_key(token: str) -> bytes:
    """The SHA-256 of the token: what the store keys it by, and all the cache ever holds."""
    return sha256(token.encode("utf-8", "surrogatepass"))


@dataclass(frozen=True, slots=True)
class _Drop:
    """One invalidation, numbered; a None field matches nothing."""

    seq: int
    public_id: str | None = None
    prefix: bytes | None = None
    user_id: str | None = None
    keep: bytes | None = None

    def matches(self, key: bytes, value: Introspection) -> bool:
        if self.public_id is not None and value.id == self.public_id:
            return True
        if self.prefix is not None and key[:PREFIX_BYTES] == self.prefix:
            return True
        return self.user_id is not None and value.user_id == self.user_id and key != self.keep


@dataclass(frozen=True, slots=True)
class _Entry:
    value: Introspection
    deadline: float
    client_ip: str | None


class ClientCache:
    """A bounded map from token digest to an active :class:`Introspection`.

    max_age: seconds an answer may be served at most (it also ends at the session's own
        ``expires_at``). The longest a revoked token can still be accepted is the stream's
        delivery delay, and ``max_age`` if an event is lost while the stream stays up.
    max_entries: the oldest entry is dropped to make room beyond this.
    clock: seconds since the epoch (``expires_at`` is wall-clock time); tests inject one.
    """

    def __init__(
        self,
        max_age: float = 30.0,
        max_entries: int = 10_000,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if isinstance(max_age, bool) or not isinstance(max_age, int | float):
            raise ConfigError(f"max_age must be a number of seconds, got {max_age!r}")
        if not (math.isfinite(max_age) and max_age > 0):
            raise ConfigError(f"max_age must be a positive number of seconds, got {max_age!r}")
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ConfigError(f"max_entries must be a positive integer, got {max_entries!r}")
        self.max_age = float(max_age)
        self.max_entries = max_entries
        self.clock = clock
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()
        self._by_id: dict[str, set[bytes]] = {}
        self._by_prefix: dict[bytes, set[bytes]] = {}
        self._live = False
        self._seq = 0
        self._flushed = 0  # seq of the last flush
        self._recent: deque[_Drop] = deque(maxlen=RECENT_DROPS)
        self.owner: object | None = None  # the one client whose stream keeps this honest

    def __repr__(self) -> str:
        state = "live" if self._live else "bypassed"
        return f"<ClientCache {state} {len(self._entries)} entries max_age={self.max_age:g}>"

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def live(self) -> bool:
        """True while the revocation stream is connected (only then is the cache used)."""
        return self._live

    # -- the client's side ----------------------------------------------------------------

    def ticket(self) -> int:
        """The number of the last drop, read before asking the service; :meth:`put` refuses
        an answer if a drop that concerns it came after."""
        return self._seq

    def get(self, key: bytes, client_ip: str | None = None) -> Introspection | None:
        """The cached active answer for ``key`` asked for ``client_ip``, or None (also whenever
        the cache is not live)."""
        with self._lock:
            entry = self._entries.get(key) if self._live else None
            if entry is not None and self.clock() >= entry.deadline:
                self._remove(key)
                entry = None
            if entry is None or entry.client_ip != client_ip:
                self.misses += 1
                return None
            self.hits += 1
            return entry.value

    def put(
        self, key: bytes, value: Introspection, ticket: int, client_ip: str | None = None
    ) -> bool:
        """Keep an active answer (True), unless the cache is not live, the answer is inactive
        or already past its deadline, or something dropped it since ``ticket``. An answer
        given for ``client_ip`` (a policy may bind sessions to addresses) serves that
        address alone."""
        if not value.active:
            return False
        with self._lock:
            if not self._live or self._dropped_since(ticket, key, value):
                return False
            now = self.clock()
            deadline = now + self.max_age
            if value.expires_at is not None:
                deadline = min(deadline, value.expires_at)
            if deadline <= now:
                return False
            if key in self._entries:
                self._remove(key)
            while len(self._entries) >= self.max_entries:
                self._remove(next(iter(self._entries)))
            self._entries[key] = _Entry(value, deadline, client_ip)
            self._by_prefix.setdefault(key[:PREFIX_BYTES], set()).add(key)
            if value.id is not None:
                self._by_id.setdefault(value.id, set()).add(key)
            return True

    def _dropped_since(self, ticket: int, key: bytes, value: Introspection) -> bool:
        if ticket == self._seq:
            return False
        if ticket < self._flushed or not self._recent or self._recent[0].seq > ticket + 1:
            return True  # a flush, or drops older than those remembered
        return any(d.seq > ticket and d.matches(key, value) for d in self._recent)

    # -- invalidation ---------------------------------------------------------------------

    def drop(
        self,
        *,
        public_id: str | None = None,
        prefix: str | None = None,
        user_id: str | None = None,
        keep: bytes | None = None,
    ) -> int:
        """Drop the entries of a public id, a digest prefix (16 hex digits) or a user (but
        ``keep``); returns how many were dropped. Remembered for answers in flight."""
        raw_prefix = _prefix_bytes(prefix)
        with self._lock:
            self._seq += 1
            drop = _Drop(self._seq, public_id, raw_prefix, user_id, keep)
            self._recent.append(drop)
            doomed = set(self._by_id.get(public_id, ())) if public_id is not None else set()
            if raw_prefix is not None:
                doomed.update(self._by_prefix.get(raw_prefix, ()))
            if user_id is not None:
                doomed.update(k for k, e in self._entries.items() if drop.matches(k, e.value))
            for key in doomed:
                self._remove(key)
            return len(doomed)

    def drop_key(self, key: bytes) -> None:
        """Drop one token's entry (the client revoked that token)."""
        self.drop(prefix=key[:PREFIX_BYTES].hex())

    def flush(self) -> None:
        """Forget everything (a reconnect, an ``event: reset``)."""
        with self._lock:
            self._flush()

    def connected(self) -> None:
        """The stream is (re)connected: start afresh and serve from the cache again."""
        with self._lock:
            self._flush()
            self._live = True

    def disconnected(self) -> None:
        """The stream is down: bypass the cache until it is back (and forget it all)."""
        with self._lock:
            self._live = False
            self._flush()

    def _flush(self) -> None:
        self._seq += 1
        self._flushed = self._seq
        self._recent.clear()
        self._entries.clear()
        self._by_id.clear()
        self._by_prefix.clear()

    def _remove(self, key: bytes) -> None:
        entry = self._entries.pop(key)
        _unindex(self._by_prefix, key[:PREFIX_BYTES], key)
        if entry.value.id is not None:
            _unindex(self._by_id, entry.value.id, key)


def _unindex(index: dict[K, set[bytes]], name: K, key: bytes) -> None:
    keys = index.get(name)
    if keys is not None:
        keys.discard(key)
        if not keys:
            del index[name]


def _prefix_bytes(prefix: str | None) -> bytes | None:
    """The 8 bytes a 16-hex-digit digest prefix names; None (matches nothing) for anything
    else, so a malformed event cannot drop what it does not name."""
    if prefix is None or len(prefix) != 2 * PREFIX_BYTES:
        return None
    try:
        return bytes.fromhex(prefix)
    except ValueError:
        return None
