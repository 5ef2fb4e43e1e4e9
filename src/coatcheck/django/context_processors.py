"""``csrf_token`` in every template: this session's synchronizer token, created lazily.

Add ``"coatcheck.django.context_processors.csrf"`` to ``TEMPLATES[...]["OPTIONS"]
["context_processors"]``. It replaces Django's own ``csrf_token`` variable, so Django's
``{% csrf_token %}`` tag (admin and third-party templates) renders coatcheck's token too; in your
own templates prefer ``{% load coatcheck %}{% csrf_input %}`` (field name ``csrf_token``).
"""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.functional import lazy

from .store import SessionStore


def csrf_token(request: HttpRequest) -> str:
    """The token of ``request``'s coatcheck session (stored in it on first use)."""
    store = getattr(request, "session", None)
    if not isinstance(store, SessionStore):
        raise RuntimeError(
            "csrf_token needs coatcheck's SessionMiddleware and SESSION_ENGINE 'coatcheck.django'"
        )
    return store.csrf_token()


def csrf(request: HttpRequest) -> dict[str, object]:
    # Lazy: a page that never renders the token does not load (or create) the session.
    return {"csrf_token": lazy(csrf_token, str)(request)}
