"""What a session keeps for pages across requests: flash messages and per-form state.

Plain functions over a core :class:`~coatcheck.core.session.Session`, shared by every web
adapter (the request session of the web core, Flask's and Django's sessions).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator, MutableMapping
from typing import Any

from ..core.session import Session

FLASH_PREFIX = "_flash:"
FORM_PREFIX = "_form:"


def flash(session: Session, message: str, category: str = "info") -> None:
    """A message for the next page this browser shows (read once)."""
    key = f"{FLASH_PREFIX}{time.time_ns():020d}:{secrets.token_hex(4)}"
    session[key] = {"message": str(message), "category": str(category)}


def pop_flashes(session: Session) -> list[tuple[str, str]]:
    """Pending flash messages as (category, message), oldest first; each is read once."""
    keys = sorted(k for k in session if k.startswith(FLASH_PREFIX))
    out = []
    for key in keys:
        value = session[key]
        del session[key]
        if isinstance(value, dict):
            out.append((str(value.get("category")), str(value.get("message"))))
    return out


def form_state(session: Session, name: str) -> FormState:
    """Per-form (wizard) state kept across requests until :meth:`FormState.complete`."""
    return FormState(session, FORM_PREFIX + name)


class FormState(MutableMapping[str, Any]):
    """One form's state inside the session, stored under one key and cleared on completion."""

    def __init__(self, session: Session, key: str) -> None:
        self._session = session
        self._key = key

    def _data(self) -> dict[str, Any]:
        value = self._session.get(self._key)
        return dict(value) if isinstance(value, dict) else {}

    def __getitem__(self, key: str) -> Any:
        return self._data()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        data = self._data()
        data[key] = value
        self._session[self._key] = data

    def __delitem__(self, key: str) -> None:
        data = self._data()
        del data[key]
        self._session[self._key] = data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data())

    def __len__(self) -> int:
        return len(self._data())

    def complete(self) -> None:
        """The form is done: forget its state."""
        self._session.pop(self._key, None)
