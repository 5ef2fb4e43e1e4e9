"""A person's own account: ``/account/sessions`` (see and end sessions) and
``/account/tokens`` (create, list and revoke API tokens). Every ending goes through
:mod:`coatcheck.service.actions` (or, for an OIDC session's own logout, the relying party's
hook), so each one is announced on the revocation stream."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ...apitokens import ApiTokenError, ApiTokenInfo, is_api_token
from ...core.errors import InvalidSessionId
from ...web.starlette import AsyncRequestSession
from .. import actions
from ..users import MAX_PASSWORD_LENGTH
from .common import form_fields, see_other, sentence, signed_in
from .login import too_many_attempts
from .useragent import parse_user_agent
from .view import Views, when

if TYPE_CHECKING:
    from ..context import ServiceContext
    from .oidc import OidcLogin

MAX_TOKEN_DAYS = 3650
DAY = 86400.0
_SCOPE_SPLIT = re.compile(r"[\s,]+")


class AccountPages:
    """The signed-in person's sessions and API tokens."""

    def __init__(self, ctx: ServiceContext, views: Views, oidc: OidcLogin | None = None) -> None:
        self.ctx = ctx
        self.views = views
        self.oidc = oidc

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/account/sessions", self.sessions, methods=["GET"]),
            Route("/account/sessions/end", self.end_session, methods=["POST"]),
            Route("/account/sessions/end-others", self.end_others, methods=["POST"]),
            Route("/account/tokens", self.tokens, methods=["GET"]),
            Route("/account/tokens", self.create_token, methods=["POST"]),
            Route("/account/tokens/revoke", self.revoke_token, methods=["POST"]),
        ]

    # -- sessions ---------------------------------------------------------------------------

    def needs_reauth(self, state: AsyncRequestSession) -> bool:
        """Ending other sessions asks the person to prove who they are again once the login
        is older than ``reauth_after`` seconds (a borrowed, unlocked laptop cannot lock its
        owner out): the password, or a fresh login at the provider for an OIDC session."""
        at = state.authenticated_at
        if self.provider_of(state) is not None:
            assert self.oidc is not None
            at = self.oidc.authenticated_at(state)
        return at is None or self.ctx.sessions.clock() - at > self.ctx.settings.reauth_after

    def provider_of(self, data: Mapping[str, Any]) -> str | None:
        """The OpenID Provider's name when this session (or session data) logged in through
        it, else None (a password login)."""
        oidc = self.oidc
        return None if oidc is None or oidc.provider_record(data) is None else oidc.name

    async def sessions(self, request: Request) -> Response:
        state = await signed_in(request)
        if isinstance(state, Response):
            return state
        return await self._sessions_page(request, state)

    async def _sessions_page(
        self,
        request: Request,
        state: AsyncRequestSession,
        *,
        status: int = 200,
        error: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        user_id = state.user_id
        assert user_id is not None
        now = self.ctx.sessions.clock()
        current = state.session.record
        records = await self.ctx.sessions.list_user(user_id)
        rows = [
            _session_row(
                record.summary(),
                now,
                current is not None and record.key == current.key,
                self.provider_of(record.data),
            )
            for record in records
            if not is_api_token(record)
        ]
        rows.sort(key=lambda row: (not row["current"], -row["seen_at"]))
        return self.views.page(
            request,
            "sessions.html",
            "Your sessions",
            state=state,
            status=status,
            headers=headers,
            error=error,
            active="sessions",
            rows=rows,
            needs_reauth=self.needs_reauth(state),
            reauth_provider=self.provider_of(state),
            reauth_minutes=max(1, math.ceil(self.ctx.settings.reauth_after / 60)),
        )

    async def end_session(self, request: Request) -> Response:
        state = await signed_in(request)
        if isinstance(state, Response):
            return state
        fields = await form_fields(request)
        wanted = fields.get("id", "")
        current = state.session.record
        if current is not None and wanted == current.public_id:
            if self.oidc is not None and self.provider_of(state) is not None:
                return await self.oidc.logout(state)  # at the provider too, like /logout
            await state.logout()
            await actions.announce_ended(self.ctx.events, [current.key])
            state.flash("You have logged out.", "success")
            return see_other("/login")
        try:
            ended = await actions.revoke_session_id(
                self.ctx, wanted, user_id=state.user_id, reason="ended by the user"
            )
        except InvalidSessionId:
            ended = False
        if ended:
            state.flash("The session has ended.", "success")
        else:
            state.flash("That session had already ended.", "info")
        return see_other("/account/sessions")

    async def end_others(self, request: Request) -> Response:
        state = await signed_in(request)
        if isinstance(state, Response):
            return state
        user_id = state.user_id
        assert user_id is not None
        reauthenticated = False
        if self.needs_reauth(state):
            if self.oidc is not None and self.provider_of(state) is not None:
                # No password here: the provider asks for the credentials again and sends
                # the browser back to this page with a fresh login; the button is pressed
                # again from there.
                return await self.oidc.reauthenticate(state, "/account/sessions")
            refused = await self._reauthenticate(request, state, user_id)
            if refused is not None:
                return refused
            reauthenticated = True
        # A fresh token for this device first: its own session is the one kept, by token, and
        # whoever might have copied the old cookie is locked out with everyone else.
        await state.rotate(reauthenticated=reauthenticated)
        ended = await actions.revoke_user_sessions(
            self.ctx,
            user_id,
            keep_token=state.session.token,
            reason="ended by the user: all other sessions",
            by="revoked_by_user",
        )
        plural = "" if ended == 1 else "s"
        state.flash(f"{ended} other session{plural} ended.", "success")
        return see_other("/account/sessions")

    async def _reauthenticate(
        self, request: Request, state: AsyncRequestSession, user_id: str
    ) -> Response | None:
        """None when the password was right, else the page saying why not (throttled like
        the login form, per account and IP)."""
        fields = await form_fields(request)
        ctx, ip = self.ctx, state.client_ip
        now = ctx.sessions.clock()
        wait = await ctx.throttle.retry_after(user_id, ip, now)
        if wait is not None:
            headers = {"retry-after": str(max(1, math.ceil(wait)))}
            return await self._sessions_page(
                request, state, status=429, error=too_many_attempts(wait), headers=headers
            )
        password = fields.get("password", "")[: MAX_PASSWORD_LENGTH + 1]
        if not await ctx.users.check_password(user_id, password):
            await ctx.throttle.failed(user_id, ip, now)
            return await self._sessions_page(
                request, state, status=401, error="That password is not right; nothing was ended."
            )
        await ctx.throttle.succeeded(user_id)
        return None

    # -- API tokens -------------------------------------------------------------------------

    async def tokens(self, request: Request) -> Response:
        state = await signed_in(request)
        if isinstance(state, Response):
            return state
        return await self._tokens_page(request, state)

    async def _tokens_page(
        self,
        request: Request,
        state: AsyncRequestSession,
        *,
        status: int = 200,
        error: str | None = None,
        form: dict[str, str] | None = None,
    ) -> Response:
        assert state.user_id is not None
        now = self.ctx.sessions.clock()
        infos = await self.ctx.tokens.list_user(state.user_id)
        return self.views.page(
            request,
            "tokens.html",
            "API tokens",
            state=state,
            status=status,
            error=error,
            active="tokens",
            tokens=[_token_row(info, now) for info in infos],
            form={"name": "", "scopes": "", "expires_days": "", **(form or {})},
            max_days=MAX_TOKEN_DAYS,
        )

    async def create_token(self, request: Request) -> Response:
        state = await signed_in(request)
        if isinstance(state, Response):
            return state
        assert state.user_id is not None
        fields = await form_fields(request)
        form = {k: fields.get(k, "").strip() for k in ("name", "scopes", "expires_days")}
        try:
            expires_in = _expires_in(form["expires_days"])
            scopes = [s for s in _SCOPE_SPLIT.split(form["scopes"]) if s]
            token, info = await self.ctx.tokens.create(
                state.user_id, form["name"], scopes=scopes, expires_in=expires_in
            )
        except ApiTokenError as exc:
            return await self._tokens_page(
                request, state, status=400, error=sentence(str(exc)), form=form
            )
        row = _token_row(info, self.ctx.sessions.clock())
        # Shown once, on this response only: never in a URL, never cached, never referred on.
        return self.views.page(
            request,
            "token_created.html",
            "Your new API token",
            state=state,
            status=201,
            headers={"cache-control": "no-store", "referrer-policy": "no-referrer"},
            active="tokens",
            token=token,
            info=info,
            scopes=row["scopes"],
            expires=row["expires"],
        )

    async def revoke_token(self, request: Request) -> Response:
        state = await signed_in(request)
        if isinstance(state, Response):
            return state
        fields = await form_fields(request)
        try:
            revoked = await actions.revoke_api_token(
                self.ctx, fields.get("id", ""), user_id=state.user_id
            )
        except InvalidSessionId:
            revoked = False
        if revoked:
            state.flash("The token is revoked; it no longer works.", "success")
        else:
            state.flash("That token had already been revoked.", "info")
        return see_other("/account/tokens")


def _session_row(
    summary: dict[str, Any], now: float, current: bool, provider: str | None
) -> dict[str, Any]:
    created, created_iso = when(summary["created_at"], now)
    seen, seen_iso = when(summary["last_seen_at"], now)
    return {
        "id": summary["id"],
        "device": parse_user_agent(summary["user_agent"]).label,
        "ip": summary["client_ip"] or "unknown",
        "created": created,
        "created_iso": created_iso,
        "seen": seen,
        "seen_iso": seen_iso,
        "seen_at": summary["last_seen_at"],
        "current": current,
        "provider": provider,
    }


def _token_row(info: ApiTokenInfo, now: float) -> dict[str, str]:
    return {
        "id": info.id,
        "name": info.name,
        "scopes": " ".join(info.scopes),
        "created": when(info.created_at, now)[0],
        "expires": "never" if info.expires_at is None else _future(info.expires_at, now),
        "last_used": when(info.last_used_at, now)[0],
    }


def _future(stamp: float, now: float) -> str:
    days = (stamp - now) / DAY
    if days <= 0:
        return "expired"
    if days < 1:
        return "within a day"
    return f"in {math.ceil(days)} days"


def _expires_in(days: str) -> float | None:
    """The form's "expires after (days)" as seconds; empty means never."""
    if not days:
        return None
    if not days.isdecimal() or not 1 <= int(days) <= MAX_TOKEN_DAYS:
        raise ApiTokenError(f"the expiry must be a whole number of days from 1 to {MAX_TOKEN_DAYS}")
    return int(days) * DAY
