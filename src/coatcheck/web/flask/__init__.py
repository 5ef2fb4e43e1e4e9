"""Flask: an extension that replaces ``flask.session`` with coatcheck's server-side session.

::

    app = Flask(__name__)
    app.config["COATCHECK_STORE_URL"] = "redis://127.0.0.1:6379/0"
    CoatCheck(app)

    @app.post("/login")
    def do_login():
        ...  # check the password
        login(user.id)  # a new token; the anonymous session is destroyed, not promoted
        return redirect("/me", 303)

    @app.get("/me")
    @login_required
    def me():
        return {"user": current_session().user_id, "theme": session.get("theme")}

``flask.session`` stays a dict (``flask.flash`` included) for code written for Flask's cookie
session or Flask-Session. Underneath is the shared :class:`SessionHandler`, so Flask behaves like
every other coatcheck app: nothing is read from the store until the session is first used, what
the request changed is saved once when Flask saves the session, and refusals (store down,
session ended, CSRF, conflicting cookies) become clear 4xx/5xx answers, never a traceback page.

The package is split by job: ``extension`` (``CoatCheck``, reading the config), ``interface``
(Flask's session hook), ``session`` (``FlaskSession``), ``responses`` (refusals and headers),
``decorators`` (the guards), ``helpers`` (module functions and template globals) and
``oidc`` (OpenID Connect login, ``CoatCheck(app, oidc=True)``; its ``oidc_access_token`` is
loaded on first use, as it needs ``coatcheck[oidc]``). Import from ``coatcheck.web.flask``;
the modules inside may move.
"""

from __future__ import annotations

from typing import Any

from ..._extras import missing_extra

try:  # first of all, so that a missing Flask is one clear line naming the extra
    import flask  # noqa: F401
except ModuleNotFoundError as exc:
    raise missing_extra("flask", "coatcheck.web.flask needs Flask", exc) from exc

from ..caching import cacheable
from .decorators import fresh_login_required, login_required
from .extension import EXTENSION_KEY, CoatCheck, policy_from_config, settings_from_config
from .helpers import (
    csrf_token,
    flash,
    get_flashed_messages,
    login,
    logout,
    logout_other_sessions,
    logout_session,
)
from .interface import CoatCheckSessionInterface
from .responses import current_session, error_response
from .session import ENVIRON_KEY, PERMANENT_KEY, FlaskSession

__all__ = [
    "ENVIRON_KEY",
    "EXTENSION_KEY",
    "PERMANENT_KEY",
    "CoatCheck",
    "CoatCheckSessionInterface",
    "FlaskSession",
    "cacheable",
    "csrf_token",
    "current_session",
    "error_response",
    "flash",
    "fresh_login_required",
    "get_flashed_messages",
    "login",
    "login_required",
    "logout",
    "logout_other_sessions",
    "logout_session",
    "oidc_access_token",
    "policy_from_config",
    "settings_from_config",
]


def __getattr__(name: str) -> Any:
    """``oidc_access_token``, imported on first use (it needs ``coatcheck[oidc]``)."""
    if name == "oidc_access_token":
        from .oidc import oidc_access_token

        return oidc_access_token
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
