"""Module-level conveniences for views and templates: ``login()``, ``flash()``, ``csrf_token()``."""

from __future__ import annotations

from collections.abc import Collection, Iterable

import flask

from .responses import current_session


def login(user_id: str, carry: Collection[str] = (), *, remember: bool = False) -> None:
    """Log this request's browser in as ``user_id`` (new token; see :meth:`FlaskSession.login`);
    ``remember=True`` for "remember me"."""
    current_session().login(user_id, carry=carry, remember=remember)


def logout() -> None:
    """End this request's session server-side (see :meth:`FlaskSession.logout`)."""
    current_session().logout()


def logout_other_sessions() -> int:
    """End every other session of the logged-in user (after a password change)."""
    return current_session().logout_other_sessions()


def logout_session(public_id: str) -> bool:
    """End one of the logged-in user's own sessions by its public id (``record.public_id``,
    the ``id`` of a session listing); False if the user has no such session, so a user can
    never end another user's session (see :meth:`FlaskSession.logout_session`)."""
    return current_session().logout_session(public_id)


def csrf_token() -> str:
    """The CSRF token for this session's forms (also the Jinja global ``csrf_token()``)."""
    return current_session().csrf_token()


def flash(message: str, category: str = "message") -> None:
    """Like ``flask.flash``, stored one key per message so concurrent requests never lose one."""
    current_session().flash(message, category)


def get_flashed_messages(
    with_categories: bool = False, category_filter: Iterable[str] = ()
) -> list[str] | list[tuple[str, str]]:
    """``flask.get_flashed_messages`` that also returns :func:`flash` messages (after Flask's
    own); installed as the Jinja global of the same name."""
    flashes = [(str(f[0]), str(f[1])) for f in flask.get_flashed_messages(with_categories=True)]
    flashes += current_session().pop_flashes()
    wanted = set(category_filter)
    if wanted:
        flashes = [f for f in flashes if f[0] in wanted]
    if with_categories:
        return flashes
    return [message for _, message in flashes]
