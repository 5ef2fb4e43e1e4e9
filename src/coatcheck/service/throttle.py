"""Failed-login limits per account and per client IP (fixed windows in the service data).

Each failed login counts one hit against the account and one against the IP, in fixed
windows (``floor(now / window)``: a window of 300 s starts at every whole multiple of 300 s
since the epoch). The failure that reaches a limit locks that account or IP until its window
ends; ``retry_after`` then answers how long to wait. A successful login clears the account's
count (not the IP's). Accounts and IPs appear in the store only as SHA-256 digests
(``throttle:account:<hex>``), so a store dump does not list who tried to log in; a digest
of a known name is easy to recompute, so this hides names from casual reading only.
"""

from __future__ import annotations

import hashlib
from typing import Final

from ..core.errors import ConfigError
from .data.base import ServiceData, window_end

HITS_PREFIX: Final = "throttle:"
LOCK_PREFIX: Final = "throttle-lock:"


def _check_limit(name: str, limit: object) -> tuple[int, float]:
    if not (isinstance(limit, tuple) and len(limit) == 2):
        raise ConfigError(f"{name} must be (attempts, seconds), got {limit!r}")
    attempts, window = limit
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise ConfigError(f"{name}: attempts must be a whole number >= 1, got {attempts!r}")
    if isinstance(window, bool) or not isinstance(window, int | float) or not window > 0:
        raise ConfigError(f"{name}: the window must be a positive number of seconds")
    return attempts, float(window)


def _digest(kind: str, value: str) -> str:
    return f"{kind}:{hashlib.sha256(value.encode('utf-8', 'replace')).hexdigest()}"


class LoginThrottle:
    """``per_account`` / ``per_ip``: (failed attempts allowed, window in seconds)."""

    def __init__(
        self,
        data: ServiceData,
        *,
        per_account: tuple[int, float] = (5, 300.0),
        per_ip: tuple[int, float] = (30, 300.0),
    ) -> None:
        self.data = data
        self.per_account = _check_limit("per_account", per_account)
        self.per_ip = _check_limit("per_ip", per_ip)

    def _subjects(self, account: str, ip: str | None) -> list[tuple[str, tuple[int, float]]]:
        subjects = [(_digest("account", account), self.per_account)]
        if ip:
            subjects.append((_digest("ip", ip), self.per_ip))
        return subjects

    async def retry_after(self, account: str, ip: str | None, now: float) -> float | None:
        """Seconds until this account and IP may try again, or None if they may now."""
        wait = 0.0
        for subject, _ in self._subjects(account, ip):
            raw = await self.data.get(LOCK_PREFIX + subject)
            if raw is None:
                continue
            try:
                until = float(raw)
            except ValueError:
                until = 0.0
            if until > now:
                wait = max(wait, until - now)
            else:
                await self.data.delete(LOCK_PREFIX + subject)
        return wait or None

    async def failed(self, account: str, ip: str | None, now: float) -> None:
        """Count a failed login; lock the account or IP once it reaches its limit."""
        for subject, (attempts, window) in self._subjects(account, ip):
            if await self.data.hit(HITS_PREFIX + subject, window, now) >= attempts:
                await self.data.put(LOCK_PREFIX + subject, repr(window_end(window, now)))

    async def succeeded(self, account: str) -> None:
        """Forget the account's failures (a correct password after a few typos)."""
        subject = _digest("account", account)
        await self.data.clear_hits(HITS_PREFIX + subject)
        await self.data.delete(LOCK_PREFIX + subject)
