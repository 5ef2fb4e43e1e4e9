"""Rendering the people's pages: one Jinja2 environment (autoescaped), the base template's
inline stylesheet, and the headers every page carries.

The stylesheet is inline (no CDN, no second request) and allowed by its hash in the
``Content-Security-Policy``, which allows nothing else: no script, no frame, forms posting to
this origin only.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

from ...web.starlette import AsyncRequestSession, csrf_input

PAGE_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("coatcheck.service", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["csrf_input"] = csrf_input
    return env


class Views:
    """Renders a template into a whole page with the shared frame (navigation, messages)."""

    def __init__(self, *, signup: bool) -> None:
        self.env = _environment()
        assert self.env.loader is not None
        css, _, _ = self.env.loader.get_source(self.env, "style.css")
        # Our own file, not user input; hashed for the CSP below.
        self.css = Markup(css)  # noqa: S704
        digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
        self.headers = {
            **PAGE_HEADERS,
            "content-security-policy": (
                f"default-src 'none'; style-src 'sha256-{digest}'; img-src 'self'; "
                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
            ),
        }
        self.signup = signup

    def page(
        self,
        request: Request,
        template: str,
        title: str,
        *,
        state: AsyncRequestSession | None = None,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        **values: Any,
    ) -> HTMLResponse:
        """The page ``template`` renders; ``state`` (a loaded session) supplies the signed-in
        user and the flash messages waiting for this page."""
        user = state.user_id if state is not None else None
        flashes = state.pop_flashes() if state is not None else []
        text = self.env.get_template(template).render(
            request=request,
            title=title,
            css=self.css,
            user=user,
            flashes=flashes,
            signup=self.signup,
            active=values.pop("active", None),
            error=values.pop("error", None),
            notice=values.pop("notice", None),
            **values,
        )
        return HTMLResponse(text, status_code=status, headers={**self.headers, **(headers or {})})


def when(stamp: float | None, now: float) -> tuple[str, str]:
    """A time for people ("3 minutes ago", "2026-12-06 22:50 UTC") and for machines (ISO)."""
    if stamp is None:
        return "never", ""
    moment = datetime.fromtimestamp(stamp, UTC)
    iso = moment.isoformat(timespec="seconds")
    ago = now - stamp
    if -60 < ago < 60:
        return "just now", iso
    if 0 < ago < 3600:
        minutes = int(ago // 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''} ago", iso
    if 0 < ago < 86400:
        hours = int(ago // 3600)
        return f"{hours} hour{'s' if hours != 1 else ''} ago", iso
    return moment.strftime("%Y-%m-%d %H:%M UTC"), iso
