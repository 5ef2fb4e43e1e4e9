"""Django's ``set_expiry()`` values as the limits they set for one session (``Policy.deadline``
does the arithmetic)."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

EXPIRY_KEY = "_session_expiry"  # where Django's set_expiry() keeps a per-session expiry


def epoch(moment: datetime) -> float:
    """Seconds since the epoch; a naive datetime is in Django's current time zone."""
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment.timestamp()


def own_limits(expiry: object) -> tuple[float | None, float | None]:
    """A ``set_expiry()`` value as the limits it sets for its session (``Policy.deadline``):
    (seconds without a request, a fixed end); None where it sets none.

    Seconds count from the last activity (an idle timeout); a datetime (stored by Django as an
    ISO string) is a fixed end. ``0`` only makes the cookie end with the browser.
    """
    if isinstance(expiry, bool):
        return None, None
    if isinstance(expiry, int | float):
        return (expiry if expiry > 0 else None), None
    moment: object = expiry
    if isinstance(expiry, str):
        try:
            moment = datetime.fromisoformat(expiry)
        except ValueError:
            return None, None
    if isinstance(moment, datetime):
        return None, epoch(moment)
    return None, None
