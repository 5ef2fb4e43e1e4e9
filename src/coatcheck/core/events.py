"""Lifecycle events as structured log records: one logger, one shape, never a token.

Each record goes to the ``coatcheck.session`` logger with ``extra`` fields ``event``,
``session`` (a keyed hash of the store key: stable for correlation, useless for replay),
``user_id``, ``kind`` and, where it applies, ``reason``.
"""

from __future__ import annotations

import logging
import os
import secrets

from .policy import Verdict
from .records import SessionRecord
from .tokens import SessionKey, log_id

logger = logging.getLogger("coatcheck.session")

CREATED = "created"
LOGGED_IN = "logged_in"
ROTATED = "rotated"
EXTENDED = "extended"
REVOKED = "revoked"
EXPIRED = "expired"
EVICTED = "evicted"
REFUSED = "refused"


def default_log_key() -> bytes:
    """COATCHECK_LOG_KEY if set (so several processes log the same ids), else a random key."""
    configured = os.environ.get("COATCHECK_LOG_KEY")
    return configured.encode() if configured else secrets.token_bytes(32)


class EventLog:
    """Emits lifecycle events for one manager, hashing every session key with its own key."""

    def __init__(self, log_key: bytes | None = None) -> None:
        self._key = log_key if log_key is not None else default_log_key()

    def session_id(self, key: SessionKey) -> str:
        return log_id(key, self._key)

    def emit(
        self,
        event: str,
        key: SessionKey | None,
        *,
        user_id: str | None = None,
        kind: str | None = None,
        reason: str | None = None,
        level: int = logging.INFO,
    ) -> None:
        if not logger.isEnabledFor(level):
            return
        sid = self.session_id(key) if key is not None else None
        logger.log(
            level,
            "session %s: %s%s",
            event,
            sid,
            f" ({reason})" if reason else "",
            extra={
                "event": event,
                "session": sid,
                "user_id": user_id,
                "kind": kind,
                "reason": reason,
            },
        )

    def about(
        self,
        event: str,
        record: SessionRecord | None,
        *,
        reason: str | None = None,
        level: int = logging.INFO,
    ) -> None:
        """An event about a session record (nothing when there is no record, or when the level
        is not logged: a sealed record derives its key only when something reads it)."""
        if record is not None and logger.isEnabledFor(level):
            self.emit(
                event,
                record.key,
                user_id=record.user_id,
                kind=record.kind,
                reason=reason,
                level=level,
            )

    def refused(self, verdict: Verdict, record: SessionRecord) -> None:
        """Why a presented session was not accepted: expiry at INFO, an IP mismatch (a copied
        cookie, or a moved client) at WARNING."""
        if verdict in (Verdict.EXPIRED_IDLE, Verdict.EXPIRED_ABSOLUTE):
            self.about(EXPIRED, record, reason=verdict.value)
        elif verdict is Verdict.IP_MISMATCH:
            self.about(REFUSED, record, reason=verdict.value, level=logging.WARNING)
