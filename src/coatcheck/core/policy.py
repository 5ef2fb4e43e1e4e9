"""The session rules as pure functions over records and the clock: no I/O, easy to test.

Everything that decides *whether* a session is alive, must be written, or must make room for a
new one lives here; stores only carry the decisions out.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

from .errors import ConfigError, SessionTooLarge
from .records import Patch, SessionRecord, UserLimit


class Verdict(enum.Enum):
    """What a presented token turned out to be."""

    VALID = "valid"
    UNKNOWN = "unknown"  # malformed, never issued, rotated, purged (or revoked, on a request)
    REVOKED = "revoked"  # ended on purpose (logout, revocation, eviction): inspect() only
    EXPIRED_IDLE = "expired_idle"
    EXPIRED_ABSOLUTE = "expired_absolute"
    IP_MISMATCH = "ip_mismatch"


@dataclass(frozen=True, slots=True)
class Policy:
    """Timeouts, write coalescing and per-user limits. Defaults follow OWASP ASVS level 2.

    idle_timeout: seconds without a request after which a session is dead (sliding).
    absolute_lifetime: seconds after creation after which a session is dead, however active.
    touch_interval: a request that changes nothing writes only if the last write is older.
        The idle clock therefore has up to this much slack; keep it well below idle_timeout.
    max_sessions_per_user: browser sessions one user may hold (None = unlimited). API sessions
        are exempt.
    on_limit: "evict_oldest" ends the user's oldest browser session(s) to make room;
        "refuse" raises SessionLimitReached and keeps the existing ones.
    bind_ip: a session presented from another client IP than it was created from is refused.
    max_data_bytes: the largest JSON encoding of a session's data that may be saved.
    remember_absolute_lifetime, remember_idle_timeout: the longer limits of a session logged in
        with "remember me" (``login(..., remember=True)``). None (both, the default) = remember
        me is off; setting either turns it on, the other then stays at the normal value. Each
        must be at least its normal counterpart. A remembered session whose policy no longer
        has them falls back to the normal limits at once (see docs/sessions.md, "Remember me").
    """

    idle_timeout: float = 30 * 60
    absolute_lifetime: float = 12 * 60 * 60
    touch_interval: float = 60
    max_sessions_per_user: int | None = None
    on_limit: Literal["evict_oldest", "refuse"] = "evict_oldest"
    bind_ip: bool = False
    max_data_bytes: int = 64 * 1024
    remember_absolute_lifetime: float | None = None
    remember_idle_timeout: float | None = None

    def __post_init__(self) -> None:
        for name in ("idle_timeout", "absolute_lifetime"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)!r}")
        if not 0 <= self.touch_interval < self.idle_timeout:
            raise ConfigError(
                f"touch_interval must be >= 0 and below idle_timeout ({self.idle_timeout}), "
                f"got {self.touch_interval!r}"
            )
        if self.max_sessions_per_user is not None and self.max_sessions_per_user < 1:
            raise ConfigError(
                f"max_sessions_per_user must be None or >= 1, got {self.max_sessions_per_user!r}"
            )
        if self.on_limit not in ("evict_oldest", "refuse"):
            raise ConfigError(f"on_limit must be 'evict_oldest' or 'refuse', got {self.on_limit!r}")
        if self.max_data_bytes < 2:
            raise ConfigError(f"max_data_bytes must be at least 2, got {self.max_data_bytes!r}")
        for name, normal in (
            ("remember_absolute_lifetime", "absolute_lifetime"),
            ("remember_idle_timeout", "idle_timeout"),
        ):
            value = getattr(self, name)
            if value is not None and not value >= getattr(self, normal):
                raise ConfigError(
                    f"{name} must be None (remember me off) or at least {normal} "
                    f"({getattr(self, normal)}), got {value!r}"
                )

    @property
    def remember_enabled(self) -> bool:
        """True when ``login(..., remember=True)`` is allowed (either remember limit is set)."""
        return self.remember_absolute_lifetime is not None or self.remember_idle_timeout is not None

    def check_remember(self, remember: bool, asked_by: str = "remember=True") -> None:
        """Refuse a remembered login under a policy that has remember me off (one rule and one
        message for the managers of both modes and Django's ``set_remember``)."""
        if remember and not self.remember_enabled:
            raise ConfigError(
                f"{asked_by} needs remember me turned on: set Policy.remember_absolute_lifetime "
                "and/or remember_idle_timeout (COATCHECK_REMEMBER_ABSOLUTE_LIFETIME, "
                "COATCHECK_REMEMBER_IDLE_TIMEOUT); unset means off"
            )

    def limits(self, remember: bool = False) -> tuple[float, float]:
        """(absolute lifetime, idle timeout) of a session, remembered or not: a remembered one
        gets the remember limits this policy sets and the normal ones where it sets none."""
        if not remember:
            return self.absolute_lifetime, self.idle_timeout
        return (
            self.remember_absolute_lifetime or self.absolute_lifetime,
            self.remember_idle_timeout or self.idle_timeout,
        )

    def expires_at(self, created_at: float, last_seen_at: float, remember: bool = False) -> float:
        """The moment a session dies if nothing touches it: the earlier of both deadlines (the
        remember limits' for a remembered session)."""
        absolute, idle = self.limits(remember)
        return min(last_seen_at + idle, created_at + absolute)

    def deadline(
        self,
        created_at: float,
        last_seen_at: float,
        remember: bool = False,
        *,
        idle_timeout: float | None = None,
        ends_at: float | None = None,
    ) -> tuple[float, Verdict]:
        """When a session dies if nothing touches it, and the verdict it gets then, with the
        limits one session may set for itself (Django's ``set_expiry``): an ``idle_timeout`` of
        its own (seconds after its last request) and a fixed end ``ends_at``. Those only ever
        shorten the policy's limits (``expires_at``), never extend them."""
        absolute, idle = self.limits(remember)
        moment, verdict = created_at + absolute, Verdict.EXPIRED_ABSOLUTE
        if last_seen_at + idle < moment:  # verdict() checks the absolute deadline first
            moment, verdict = last_seen_at + idle, Verdict.EXPIRED_IDLE
        if idle_timeout is not None and last_seen_at + idle_timeout < moment:
            moment, verdict = last_seen_at + idle_timeout, Verdict.EXPIRED_IDLE
        if ends_at is not None and ends_at < moment:
            moment, verdict = ends_at, Verdict.EXPIRED_ABSOLUTE
        return moment, verdict

    def absolute_deadline(self, created_at: float, remember: bool = False) -> float:
        """The moment a session created at ``created_at`` dies however active it is: nothing
        about it (a cookie, a revocation entry) needs to last longer."""
        return created_at + (self.limits(True)[0] if remember else self.absolute_lifetime)

    def cookie_max_age(self, created_at: float, now: float, remember: bool = False) -> int:
        """``Max-Age`` of a persistent session cookie sent at ``now``: whole seconds until the
        absolute deadline (the remember lifetime's for a remembered session), after which no
        request can revive the session. Not the idle deadline: a touch slides that without
        sending the cookie again."""
        lifetime = self.limits(True)[0] if remember else self.absolute_lifetime
        return int(created_at + lifetime - now)

    def check_data_size(self, size: int) -> None:
        """Refuse session data of ``size`` bytes as JSON when it is over ``max_data_bytes``
        (:class:`SessionTooLarge`: nothing is saved)."""
        if size > self.max_data_bytes:
            raise SessionTooLarge(
                f"session data is {size} bytes as JSON, over the limit of "
                f"{self.max_data_bytes} (Policy.max_data_bytes); nothing was saved"
            )

    def verdict(self, record: SessionRecord, now: float, client_ip: str | None = None) -> Verdict:
        """Is this record a live session for this request? Recomputed from the record's own
        timestamps (and its remember flag) under the current policy, whatever expiry the store
        still holds."""
        if record.remember:
            absolute, idle = self.limits(True)
        else:  # the common case, without building a tuple
            absolute, idle = self.absolute_lifetime, self.idle_timeout
        if now >= record.created_at + absolute:
            return Verdict.EXPIRED_ABSOLUTE
        if now >= record.last_seen_at + idle:
            return Verdict.EXPIRED_IDLE
        if self.bind_ip and record.client_ip is not None and client_ip != record.client_ip:
            return Verdict.IP_MISMATCH
        return Verdict.VALID

    def needs_touch(self, record: SessionRecord, now: float) -> bool:
        """True when the last write is old enough that a read should slide the idle deadline."""
        return now - record.last_seen_at >= self.touch_interval

    def plan_write(self, record: SessionRecord, patch: Patch, now: float) -> WritePlan | None:
        """What saving this request costs: nothing for a read inside the touch interval."""
        if not patch and not self.needs_touch(record, now):
            return None
        return WritePlan(patch, now, self.expires_at(record.created_at, now, record.remember))

    def user_limit(self) -> UserLimit | None:
        """The per-user limit in the form stores enforce atomically."""
        if self.max_sessions_per_user is None:
            return None
        return UserLimit(self.max_sessions_per_user, refuse=self.on_limit == "refuse")


@dataclass(slots=True)
class WritePlan:
    """One conditional store write: apply ``patch`` and slide the deadline to ``expires_at``.
    Not to be changed once made (not ``frozen``, which costs on every write; see ``Patch``)."""

    patch: Patch
    last_seen_at: float
    expires_at: float


def choose_evictions(
    existing: list[SessionRecord], limit: UserLimit | None, now: float
) -> list[SessionRecord] | None:
    """Which live browser sessions must go so one more fits: oldest first.

    Returns an empty list when there is room, ``None`` when the limit refuses the new session.
    Stores that enforce limits in Python (memory, SQLite) call this inside their transaction;
    the PostgreSQL and Redis stores implement the same rule in SQL and Lua.
    """
    if limit is None:
        return []
    live = sorted(
        (r for r in existing if r.kind == "browser" and r.expires_at > now),
        key=lambda r: (r.created_at, r.key.digest),
    )
    excess = len(live) - limit.max_sessions + 1
    if excess <= 0:
        return []
    if limit.refuse:
        return None
    return live[:excess]
