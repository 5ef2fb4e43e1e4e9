"""coatcheck with Flask: login, a protected page, logout, a CSRF-protected form, flash.

Run: ``.venv/bin/flask --app examples/flask_app/app.py run --host 127.0.0.1 --port 8000``

``flask.session`` is coatcheck's server-side session (``CoatCheck(app)``); the views use it as
they would Flask's own. Sessions live in ``$COATCHECK_STORE_URL`` (default: ``sessions.db`` next
to this file). Over plain ``http://127.0.0.1`` the app uses the loopback development cookie
(``session``, no ``Secure``); everywhere else the secure ``__Host-session`` cookie.
"""

from __future__ import annotations

import hmac
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, flash, redirect, render_template, request, session
from flask.typing import ResponseReturnValue

from coatcheck import SessionManager
from coatcheck.web import csrf
from coatcheck.web.errors import WebError
from coatcheck.web.flask import CoatCheck, current_session, login, login_required, logout
from coatcheck.web.guards import safe_next

HERE = Path(__file__).resolve().parent
NOTE_MAX_CHARS = 1000
KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
REASONS = {
    "login_required": "Please log in to continue.",
    "session_expired": "Your session has expired, please log in again.",
    "expired_idle": "Your session has expired, please log in again.",
    "expired_absolute": "Your session has expired, please log in again.",
    "reauthenticate": "Please enter your password again to continue.",
}


def users() -> dict[str, str]:
    """The built-in user list (read per request so tests can override it by environment)."""
    return {
        os.environ.get("COATCHECK_DEMO_USER", "alice"): os.environ.get(
            "COATCHECK_DEMO_PASSWORD", "alice-password"
        )
    }


def password_ok(username: str, password: str) -> bool:
    expected = users().get(username)
    # Compare something even for unknown users so timing does not reveal which names exist.
    return hmac.compare_digest((expected or "\0").encode(), password.encode()) and bool(expected)


def create_app(
    *, manager: SessionManager | None = None, config: Mapping[str, Any] | None = None
) -> Flask:
    """The example app; tests pass a ``manager`` (e.g. with a ``FakeClock``) or ``config``."""
    app = Flask(__name__, root_path=str(HERE), static_folder=None)
    app.config.update(
        COATCHECK_STORE_URL=os.environ.get("COATCHECK_STORE_URL")
        or f"sqlite:///{HERE / 'sessions.db'}",
        COATCHECK_LOOPBACK_DEVELOPMENT=True,
        COATCHECK_EXEMPT_PATHS=["/static"],
    )
    app.config.update(config or {})
    CoatCheck(app, manager=manager)

    @app.get("/")
    def home() -> ResponseReturnValue:
        """Public, and never touches the session: no store call, no cookie."""
        return render_template("home.html")

    @app.get("/login")
    def login_page() -> ResponseReturnValue:
        reason = request.args.get("reason") or current_session().expired_reason or ""
        return render_template(
            "login.html",
            next=safe_next(request.args.get("next"), "/me"),
            message=REASONS.get(reason, ""),
        )

    @app.post("/login")
    def login_submit() -> ResponseReturnValue:
        """Credentials come from the POST body only, never from the query string."""
        # The extension checks the token when a session cookie came along; a login POST
        # without one (no form was fetched) is refused here too: nobody logs a browser in
        # remotely.
        presented = request.form.get(csrf.FORM_FIELD) or request.headers.get(csrf.HEADER)
        if not csrf.token_matches(session.get(csrf.SESSION_KEY), presented):
            raise WebError(403, "csrf_token", "The login form expired; reload it and try again.")
        username = request.form.get("username", "")
        target = safe_next(request.form.get("next"), "/me")
        if not password_ok(username, request.form.get("password", "")):
            page = render_template("login.html", next=target, message="Wrong username or password.")
            return page, 401
        login(username)
        flash(f"Welcome, {username}!")
        return redirect(target, 303)

    @app.get("/me")
    @login_required
    def me() -> ResponseReturnValue:
        """Protected: JSON for API clients, a page with a logout form for browsers."""
        current = current_session()
        if not current.info.wants_html:
            return {
                "user": current.user_id,
                "authenticated_at": current.authenticated_at,
                "note": session.get("note"),
            }
        return render_template("me.html", user=current.user_id)

    @app.post("/logout")
    def logout_submit() -> ResponseReturnValue:
        """Ends the session server-side; the response expires the cookie and clears site data."""
        logout()
        return redirect("/", 303)

    @app.get("/note")
    def note_page() -> ResponseReturnValue:
        return render_template("note.html", note=session.get("note", ""), limit=NOTE_MAX_CHARS)

    @app.post("/note")
    def note_submit() -> ResponseReturnValue:
        session["note"] = request.form.get("note", "")[:NOTE_MAX_CHARS]
        flash("saved")
        return redirect("/note", 303)

    @app.get("/static/hello.txt")
    def hello() -> ResponseReturnValue:
        """Under the exempt prefix ``/static``: sessions are off here entirely."""
        return "hello\n", 200, {"Content-Type": "text/plain; charset=utf-8"}

    @app.get("/counter")
    def counter() -> ResponseReturnValue:
        session["count"] = int(session.get("count", 0)) + 1
        return {"count": session["count"]}

    @app.post("/keys/<name>")
    def set_key(name: str) -> ResponseReturnValue:
        """Sets one key (scripts send the token in ``X-CSRF-Token``); concurrent requests that
        set different keys all keep theirs."""
        if not KEY_NAME.fullmatch(name):
            return {"error": "invalid_key", "message": "letters, digits, _.- (up to 64)"}, 422
        session[name] = True
        return {"set": name}

    @app.get("/keys")
    def list_keys() -> ResponseReturnValue:
        """The session's own keys (internal ones, such as the CSRF token, start with ``_``)."""
        return {"keys": sorted(k for k in session if not k.startswith("_"))}

    @app.get("/csrf")
    def csrf_for_scripts() -> ResponseReturnValue:
        return {"csrf_token": current_session().csrf_token()}, 200, {"Cache-Control": "no-store"}

    return app


app = create_app()
