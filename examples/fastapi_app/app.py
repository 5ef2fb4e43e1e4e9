"""coatcheck with FastAPI: login, a protected page, logout, a CSRF-protected form, flash.

Run: ``.venv/bin/uvicorn --app-dir examples/fastapi_app app:app --host 127.0.0.1 --port 8000``

Sessions live in ``$COATCHECK_STORE_URL`` (default: ``sessions.db`` next to this file). Over
plain ``http://127.0.0.1`` the app uses the loopback development cookie (``session``, no
``Secure``); everywhere else the secure ``__Host-session`` cookie.
"""

from __future__ import annotations

import hmac
import os
from html import escape
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Form, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from coatcheck.web import csrf
from coatcheck.web.errors import WebError
from coatcheck.web.guards import safe_next
from coatcheck.web.settings import WebSettings
from coatcheck.web.starlette import (
    AsyncRequestSession,
    AuthenticatedSession,
    Session,
    add_sessions,
    csrf_input,
)

HERE = Path(__file__).resolve().parent
STORE_URL = os.environ.get("COATCHECK_STORE_URL") or f"sqlite:///{HERE}/sessions.db"
NOTE_MAX_CHARS = 1000
REASONS = {
    "login_required": "Please log in to continue.",
    "session_expired": "Your session has expired, please log in again.",
    "expired_idle": "Your session has expired, please log in again.",
    "expired_absolute": "Your session has expired, please log in again.",
    "reauthenticate": "Please enter your password again to continue.",
}

app = FastAPI(title="coatcheck FastAPI example")
manager = add_sessions(
    app,
    store_url=STORE_URL,
    settings=WebSettings.build(exempt_paths=["/static"]),
    loopback_development=True,
)


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


# -- pages ------------------------------------------------------------------------------------


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    """A whole HTML page; ``body`` is already escaped by the caller."""
    return HTMLResponse(
        "<!doctype html><html lang=en><meta charset=utf-8>"
        f"<title>{escape(title)}</title><h1>{escape(title)}</h1>{body}"
        '<p><a href="/">home</a> · <a href="/me">me</a> · <a href="/note">note</a></p></html>',
        status_code=status,
    )


def flash_area(session: AsyncRequestSession) -> str:
    items = "".join(
        f'<li class="{escape(category)}">{escape(message)}</li>'
        for category, message in session.pop_flashes()
    )
    return f'<ul id="flashes">{items}</ul>'


def login_form(request: Request, next_url: str, message: str = "") -> str:
    notice = f'<p id="message">{escape(message)}</p>' if message else ""
    return (
        f'{notice}<form method="post" action="/login">{csrf_input(request)}'
        f'<input type="hidden" name="next" value="{escape(next_url)}">'
        '<label>User <input name="username" autocomplete="username" required></label> '
        '<label>Password <input name="password" type="password" '
        'autocomplete="current-password" required></label> '
        "<button>Log in</button></form>"
    )


# -- routes -----------------------------------------------------------------------------------


@app.get("/", response_class=HTMLResponse)
async def home() -> HTMLResponse:
    """Public, and never touches the session: no store call, no cookie."""
    return page("coatcheck FastAPI example", '<p><a href="/login">Log in</a></p>')


@app.get("/login", response_class=HTMLResponse)
async def login_page(
    request: Request, session: Session, next: str = "/me", reason: str | None = None
) -> HTMLResponse:
    message = REASONS.get(reason or session.expired_reason or "", "")
    return page("Log in", login_form(request, safe_next(next, "/me"), message))


@app.post("/login", response_model=None)
async def login(
    request: Request,
    session: Session,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/me",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Credentials come from the POST body only, never from the query string."""
    # The middleware checks the token when a session cookie came along; a login POST without
    # one (no form was fetched) is refused here too, so nobody can log a browser in remotely.
    presented = csrf_token or request.headers.get(csrf.HEADER)
    if not csrf.token_matches(session.get(csrf.SESSION_KEY), presented):
        raise WebError(403, "csrf_token", "The login form expired; reload it and try again.")
    target = safe_next(next, "/me")
    if not password_ok(username, password):
        form = login_form(request, target, "Wrong username or password.")
        return page("Log in", form, status=401)
    await session.login(username)
    session.flash(f"Welcome, {username}!")
    return RedirectResponse(target, status_code=303)


@app.get("/me", response_model=None)
async def me(request: Request, session: AuthenticatedSession) -> Response | dict[str, Any]:
    """Protected: JSON for API clients, a page with a logout form for browsers."""
    if not session.request.wants_html:
        return {
            "user": session.user_id,
            "authenticated_at": session.authenticated_at,
            "note": session.get("note"),
        }
    body = (
        f"{flash_area(session)}<p>Logged in as <b id=user>{escape(session.user_id or '')}</b>.</p>"
        f'<form method="post" action="/logout">{csrf_input(request)}'
        "<button>Log out</button></form>"
    )
    return page("Me", body)


@app.post("/logout")
async def logout(session: Session) -> RedirectResponse:
    """Ends the session server-side; the response expires the cookie and clears site data."""
    await session.logout()
    return RedirectResponse("/", status_code=303)


@app.get("/note", response_class=HTMLResponse)
async def note_page(request: Request, session: Session) -> HTMLResponse:
    body = (
        f"{flash_area(session)}<p>Your note: <span id=note>{escape(session.get('note', ''))}"
        f'</span></p><form method="post" action="/note">{csrf_input(request)}'
        f'<input name="note" maxlength="{NOTE_MAX_CHARS}"> <button>Save</button></form>'
    )
    return page("Note", body)


@app.post("/note")
async def save_note(session: Session, note: Annotated[str, Form()] = "") -> RedirectResponse:
    session["note"] = note[:NOTE_MAX_CHARS]
    session.flash("saved")
    return RedirectResponse("/note", status_code=303)


@app.get("/static/hello.txt")
async def hello() -> PlainTextResponse:
    """Under an exempt prefix: sessions are off here entirely."""
    return PlainTextResponse("hello\n")


@app.get("/counter")
async def counter(session: Session) -> dict[str, int]:
    session["count"] = int(session.get("count", 0)) + 1
    return {"count": session["count"]}


KeyName = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


@app.post("/keys/{name}")
async def set_key(name: KeyName, session: Session) -> dict[str, str]:
    """Sets one key (scripts send the token in ``X-CSRF-Token``); concurrent requests that set
    different keys all keep theirs."""
    session[name] = True
    return {"set": name}


@app.get("/keys")
async def list_keys(session: Session) -> dict[str, list[str]]:
    """The session's own keys (internal ones, such as the CSRF token, start with ``_``)."""
    return {"keys": sorted(k for k in session if not k.startswith("_"))}


@app.get("/csrf")
async def csrf_for_scripts(session: Session) -> dict[str, str]:
    return {"csrf_token": session.csrf_token()}
