"""What caches may keep: ``Cache-Control: no-store`` on session responses, and the per-route
opt-out.

Every response that sets or clears the session cookie, and every response produced while a
logged-in session was loaded, gets ``no-store``: a shared cache (a CDN, a corporate proxy) must
never hand one user's page, CSRF token or cookie to another, and a browser's back button must
not show a logged-out user's pages. ``Vary: Cookie`` alone does not stop this: caches that
ignore ``Vary`` exist, and a cache keyed by the cookie still keeps private pages at rest.

A route whose responses are the same for everyone may opt out with :func:`cacheable`. The
opt-out never covers a response that sets or clears the cookie.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

NO_STORE = "no-store"
MARK = "coatcheck_cacheable"
# Directives that allow storing or serving from a store; dropped beside no-store, which
# overrides them anyway (RFC 9111 5.2.2.5), so that the header does not contradict itself.
_GRANTS = frozenset(
    {"public", "max-age", "s-maxage", "immutable", "stale-while-revalidate", "stale-if-error"}
)

F = TypeVar("F", bound=Callable[..., Any])


def cacheable(view: F) -> F:
    """Mark a view whose responses may be cached although a logged-in session was loaded
    (a public page that also greets the user in a header, say). The app's own
    ``Cache-Control`` is then left alone; without one, none is added.

    Works on Flask views, Django views and Starlette/FastAPI endpoints, above or below the
    framework's route decorator. A response that sets or clears the cookie is never cacheable.
    """
    setattr(view, MARK, True)
    return view


def is_cacheable(view: object) -> bool:
    """True for a view marked with :func:`cacheable` (or a wrapper of one that copied its
    ``__dict__``, as ``functools.wraps`` does)."""
    return view is not None and getattr(view, MARK, False) is True


def with_no_store(existing: str | None) -> str:
    """The ``Cache-Control`` value to send when the app set ``existing`` (or none).

    ``no-store`` is added; an app's header that already has it is kept as it is (it may be
    stricter still); directives that grant caching (``public``, ``max-age``, ``s-maxage``,
    ``immutable``, ``stale-*``) are dropped, the rest (``private``, ``no-cache``,
    ``no-transform``, ``must-revalidate``) kept.
    """
    if not existing:
        return NO_STORE
    directives = [d.strip() for d in existing.split(",") if d.strip()]
    names = [d.split("=", 1)[0].strip().lower() for d in directives]
    if NO_STORE in names:
        return existing
    kept = [d for d, name in zip(directives, names, strict=True) if name not in _GRANTS]
    return ", ".join([*kept, NO_STORE])


def merge_into(headers: list[tuple[str, str]]) -> bool:
    """Merge ``no-store`` into the first ``Cache-Control`` among an app's response headers,
    in place; False if the app sent none."""
    for i, (name, value) in enumerate(headers):
        if name.lower() == "cache-control":
            headers[i] = (name, with_no_store(value))
            return True
    return False
