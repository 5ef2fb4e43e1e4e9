"""Django integration: ``SESSION_ENGINE = "coatcheck.django"``.

* :class:`SessionStore` — Django's session contract kept by coatcheck (this module is the
  engine Django imports);
* :mod:`coatcheck.django.middleware` — ``SessionMiddleware`` (lazy lookup, cookie headers,
  503 on store failure) and ``CsrfMiddleware``;
* :mod:`coatcheck.django.decorators` — ``login_required``, ``fresh_login_required``,
  ``cacheable``;
* :mod:`coatcheck.django.context_processors` and ``{% load coatcheck %}`` — the CSRF token;
* :mod:`coatcheck.django.conf` — settings, and ``set_manager()`` for tests.

See ``docs/web/django.md``.
"""

from __future__ import annotations

from .._extras import missing_extra

try:  # every coatcheck.django module needs it (and asgiref, which comes with it)
    import django  # noqa: F401
except ModuleNotFoundError as exc:
    raise missing_extra("django", "coatcheck.django needs Django", exc) from exc

from .store import SessionStore

__all__ = ["SessionStore"]
