"""Logging in and out: ``/login``, ``/logout``, ``/signup`` (behind a flag), ``/expired`` and
``/``. Credentials come from the POST body only; failed logins are throttled per account and
per client IP; a login always gets a new session token (no fixation). With OpenID Connect on,
the login page offers the provider (beside the password form, or alone with ``login = oidc``)
and an OIDC session logs out at the provider too."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ...web import guards
from ...web.starlette import AsyncRequestSession, get_session
from ..actions import announce_ended
from ..users import MAX_PASSWORD_LENGTH, UserError, UserExists, check_name, check_new_password
from .common import DEFAULT_PAGE, csrf_ok, form_fields, see_other, sentence
from .view import Views

if TYPE_CHECKING:
    from ..context import ServiceContext
    from .oidc import OidcLogin

MIN_SIGNUP_PASSWORD = 8
REASONS = {
    "login_required": "Please log in to continue.",
    "session_expired": "Your session has expired. Please log in again.",
    "reauthenticate": "Please enter your password again to continue.",
}
FORM_EXPIRED = "This form has expired. Please try again."


class LoginPages:
    """The routes that decide who the browser is."""

    def __init__(self, ctx: ServiceContext, views: Views, oidc: OidcLogin | None = None) -> None:
        self.ctx = ctx
        self.views = views
        self.oidc = oidc
        self.passwords = oidc is None or not oidc.only

    def routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = [
            Route("/", self.home, methods=["GET"]),
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.login if self.passwords else self.no_password, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/expired", self.expired, methods=["GET"]),
        ]
        if self.ctx.settings.signup:
            routes += [
                Route("/signup", self.signup_form, methods=["GET"]),
                Route("/signup", self.signup, methods=["POST"]),
            ]
        return routes

    async def home(self, request: Request) -> Response:
        state = await get_session(request)
        return see_other(DEFAULT_PAGE if state.is_authenticated else "/login")

    # -- login ------------------------------------------------------------------------------

    def _form(
        self,
        request: Request,
        state: AsyncRequestSession,
        *,
        next_page: str,
        username: str = "",
        status: int = 200,
        error: str | None = None,
        notice: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        oidc = self.oidc
        return self.views.page(
            request,
            "login.html",
            "Log in",
            state=state,
            status=status,
            headers=headers,
            error=error,
            notice=notice,
            next=next_page,
            username=username,
            passwords=self.passwords,
            provider=None if oidc is None else oidc.name,
            provider_href=None if oidc is None else oidc.login_href(next_page),
        )

    async def login_form(self, request: Request) -> Response:
        state = await get_session(request)
        reason = request.query_params.get("reason") or ""
        if state.expired_reason in guards.EXPIRED_REASONS:
            reason = "session_expired"
        next_page = guards.safe_next(request.query_params.get("next"), DEFAULT_PAGE)
        return self._form(request, state, next_page=next_page, notice=REASONS.get(reason))

    async def login(self, request: Request) -> Response:
        state = await get_session(request)
        fields = await form_fields(request)
        next_page = guards.safe_next(fields.get("next"), DEFAULT_PAGE)
        username = fields.get("username", "").strip()[:64]
        password = fields.get("password", "")
        if not csrf_ok(state, fields):
            return self._form(
                request,
                state,
                next_page=next_page,
                username=username,
                status=403,
                error=FORM_EXPIRED,
            )
        ctx, ip = self.ctx, state.client_ip
        now = ctx.sessions.clock()
        wait = await ctx.throttle.retry_after(username, ip, now)
        if wait is not None:
            return self._throttled(request, state, wait, next_page=next_page, username=username)
        user = await ctx.users.authenticate(username, password[: MAX_PASSWORD_LENGTH + 1])
        if user is None:
            await ctx.throttle.failed(username, ip, now)
            return self._form(
                request,
                state,
                next_page=next_page,
                username=username,
                status=401,
                error="Wrong username or password.",
            )
        await ctx.throttle.succeeded(username)
        await state.login(user.name)
        return see_other(next_page)

    async def no_password(self, request: Request) -> Response:
        """``login = oidc``: there is no password to check; say where logging in happens."""
        assert self.oidc is not None
        raise HTTPException(
            405,
            f"This service has no password login: people log in through {self.oidc.name} "
            "(the button on GET /login).",
            headers={"allow": "GET"},
        )

    def _throttled(
        self,
        request: Request,
        state: AsyncRequestSession,
        wait: float,
        *,
        next_page: str,
        username: str,
    ) -> Response:
        return self._form(
            request,
            state,
            next_page=next_page,
            username=username,
            status=429,
            error=too_many_attempts(wait),
            headers={"retry-after": str(max(1, math.ceil(wait)))},
        )

    async def logout(self, request: Request) -> Response:
        """Ends this session server-side (with its revocation event); the response expires
        the cookie. A browser with no live session is simply sent to the login page; one
        logged in through the OpenID Provider goes on to log out there too."""
        state = await get_session(request)
        if self.oidc is not None and self.oidc.provider_record(state) is not None:
            return await self.oidc.logout(state)
        record = state.session.record if state.is_authenticated else None
        if record is not None:
            await state.logout()
            # Ended like every other session: clients holding a cache drop it at once.
            await announce_ended(self.ctx.events, [record.key])
            state.flash("You have logged out.", "success")
        return see_other("/login")

    async def expired(self, request: Request) -> Response:
        state = await get_session(request)
        next_page = guards.safe_next(request.query_params.get("next"), DEFAULT_PAGE)
        query = "" if next_page == DEFAULT_PAGE else "?" + urlencode({"next": next_page})
        login_url = "/login" + query
        return self.views.page(
            request, "expired.html", "Your session has expired", state=state, login_url=login_url
        )

    # -- sign-up ----------------------------------------------------------------------------

    async def signup_form(self, request: Request) -> Response:
        state = await get_session(request)
        return self._signup_page(request, state)

    def _signup_page(
        self,
        request: Request,
        state: AsyncRequestSession,
        *,
        username: str = "",
        status: int = 200,
        error: str | None = None,
    ) -> Response:
        return self.views.page(
            request,
            "signup.html",
            "Create an account",
            state=state,
            status=status,
            error=error,
            username=username,
            min_password=MIN_SIGNUP_PASSWORD,
        )

    async def signup(self, request: Request) -> Response:
        state = await get_session(request)
        fields = await form_fields(request)
        username = fields.get("username", "").strip()[:64]
        password = fields.get("password", "")
        if not csrf_ok(state, fields):
            return self._signup_page(
                request, state, username=username, status=403, error=FORM_EXPIRED
            )
        try:
            check_name(username)
            check_new_password(password)
            if len(password) < MIN_SIGNUP_PASSWORD:
                raise UserError(f"the password must be at least {MIN_SIGNUP_PASSWORD} characters")
            if password != fields.get("confirm"):
                raise UserError("the two passwords differ")
            user = await self.ctx.users.add(username, password)
        except UserExists:
            return self._signup_page(
                request,
                state,
                username=username,
                status=409,
                error="That username is taken; choose another.",
            )
        except UserError as exc:
            return self._signup_page(
                request, state, username=username, status=400, error=sentence(str(exc))
            )
        await state.login(user.name)
        state.flash("Welcome! Your account is ready.", "success")
        return see_other(DEFAULT_PAGE)


def too_many_attempts(wait: float) -> str:
    """The throttle's message, in whole minutes (at least one)."""
    minutes = max(1, math.ceil(wait / 60))
    unit = "minute" if minutes == 1 else "minutes"
    return f"Too many attempts. Please try again in {minutes} {unit}."
