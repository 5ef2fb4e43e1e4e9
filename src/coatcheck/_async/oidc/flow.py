"""The relying party's request handling, framework-free: a request's session in, a
:class:`~coatcheck.oidc.routes.Reply` out (or None: let the application answer).

* ``login_path`` (GET ``?next=``): a login starts in the current, anonymous session (``state``,
  ``nonce`` and PKCE verifier kept there) and the browser goes to the provider.
* ``callback_path``: ``state`` checked in constant time, the login's age, RFC 9207 ``iss``, the
  code redeemed and the ID token checked with the nonce, then ``login()`` on a fresh session:
  the pre-login session is destroyed, not promoted, and nothing is carried over.
* Before the application: an access token that has expired (or will within the skew) is
  refreshed server-side under the single-flight lease, for any request, with no redirect.
  Without a refresh token a page load goes through ``prompt=none``; other requests get 401.
* "Session ended": a refused refresh (``invalid_grant``), an interaction error from
  ``prompt=none`` or a back-channel logout ends the local session; a browser is sent to
  ``ended_path`` with a link that logs in again and returns to its page, an API client gets
  401 JSON with the reason. A provider that cannot be reached ends nothing: 503.
* ``logout_path`` (POST, CSRF-checked by the session middleware): the local session is
  destroyed first, then the browser goes to the provider's ``end_session_endpoint``; the
  ``state`` it carries is checked on return at ``logged_out_path``.
* ``backchannel_logout_path``: see :meth:`AsyncOIDCFlow.backchannel_logout`.

The relying party's own paths are never refreshed or redirected, so no loop can form.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Mapping
from contextlib import suppress
from typing import Any, Protocol
from urllib.parse import parse_qsl

from ...core.errors import InvalidToken as InvalidSessionToken
from ...core.errors import SessionGone, StoreUnavailable
from ...core.policy import Verdict
from ...core.records import SessionRecord, public_id
from ...core.session import SessionReadOnly
from ...oidc.errors import (
    INTERACTION_ERRORS,
    TRANSIENT_ERRORS,
    InvalidLogoutToken,
    InvalidToken,
    OIDCConfigError,
    OIDCError,
    ProviderRefused,
    ProviderUnavailable,
)
from ...oidc.idtoken import check_reauthenticated
from ...oidc.logouttoken import LOGOUT_TOKEN_MAX_AGE
from ...oidc.models import Identity, LogoutClaims
from ...oidc.pages import ended_page, logged_out_page
from ...oidc.record import (
    LOGOUT_KEY,
    OIDC_KEY,
    RefreshWaitExpired,
    ended_marker,
    identity_of,
    jti_marker,
    logged_out_by,
    needs_refresh,
    pending_expired,
    pending_key,
    pending_to_drop,
    refreshed_record,
    sid_marker,
    sub_marker,
    take_pending,
    token_record,
)
from ...oidc.routes import (
    NO_STORE,
    RETRY_SOON,
    Reply,
    absolute,
    exempt_from_refresh,
    html_reply,
    is_navigation,
    json_reply,
    problem,
    provider_unavailable,
    query,
    redirect,
    refresh_busy,
    return_to,
    with_next,
)
from ...oidc.secrets import new_login_secrets
from ...oidc.settings import OIDCSettings
from ...web import errors
from ...web.csrf import is_form
from ...web.errors import WebError
from ...web.guards import safe_next
from ...web.request import RequestInfo
from ..manager import AsyncSessionManager
from ..web.backend import AsyncSessionBackend
from ..web.handler import AsyncRequestSession
from .lease import AsyncRefreshLease
from .provider import AsyncOIDCProvider

log = logging.getLogger("coatcheck.oidc")
MAX_MARKER_TTL = 400 * 24 * 3600.0  # the stores' limit for a marker's lifetime
MAX_USER_ID_CHARS = 1024  # a longer claim is no user id (and would not fit a marker)
VERIFIED = (True, "true")  # email_verified as providers send it (some as a string)
ENDS_SESSION = frozenset({"invalid_grant"}) | INTERACTION_ERRORS
"""Refresh refusals that mean the session at the provider is over."""
CALLBACK_PARAMETERS = ("code", "state", "iss", "error")
"""The authorization response's parameters: each may come once (RFC 6749, 3.1)."""
SEALED_REFUSAL = (
    "OpenID Connect needs server-side sessions: in sealed-cookie mode the session data, and "
    "with it the provider's access, refresh and ID tokens, would travel in the browser's "
    "cookie. Use session_mode=server (a store) for an app that logs in through OIDC."
)


class AsyncRevokedHook(Protocol):
    """Told of each session the relying party ended, after it ended: the sessions a
    back-channel logout revoked (reason ``backchannel_logout``), a session the provider said
    was over (``invalid_grant``, ...) and one logged out through ``logout_path``
    (``logout``). ``coatcheck serve`` publishes its revocation events from here. An exception
    it raises is logged (``coatcheck.oidc``) and changes nothing."""

    async def __call__(self, record: SessionRecord, reason: str) -> None: ...


class AsyncOIDCFlow:
    """One relying party: the OIDC pages, silent refresh and both logouts, for one session
    backend (server-side sessions only) and one provider.

    provider: an :class:`AsyncOIDCProvider` of your own (closed by you); default: one made
        here from ``settings``, closed by :meth:`aclose`.
    on_revoked: called for each session the relying party ends (:class:`AsyncRevokedHook`);
        None (the default): nobody is told.
    """

    def __init__(
        self,
        backend: AsyncSessionBackend,
        settings: OIDCSettings,
        *,
        provider: AsyncOIDCProvider | None = None,
        on_revoked: AsyncRevokedHook | None = None,
    ) -> None:
        if not isinstance(backend, AsyncSessionManager):
            raise OIDCConfigError(SEALED_REFUSAL, field=None)
        if not isinstance(settings, OIDCSettings):
            raise OIDCConfigError("settings must be an OIDCSettings")
        self.manager = backend
        self.store = backend.store
        self.clock = backend.clock
        self.settings = settings
        self._own_provider = provider is None
        self.provider = provider or AsyncOIDCProvider(settings, clock=backend.clock)
        self.lease = AsyncRefreshLease(
            backend.store,
            lease=settings.refresh_lease,
            wait=settings.refresh_wait,
            clock=backend.clock,
        )
        self.exempt = exempt_from_refresh(settings)
        self.on_revoked = on_revoked

    async def aclose(self) -> None:
        """Close the provider's HTTP client if it was made here."""
        if self._own_provider:
            await self.provider.aclose()

    # -- dispatch ---------------------------------------------------------------------------

    async def handle(self, state: AsyncRequestSession) -> Reply | None:
        """The answer to a request that passed the session middleware, or None to let the
        application answer it (its tokens refreshed first if they needed it)."""
        request = state.request
        try:
            return await self._dispatch(state)
        except WebError as error:
            return web_error_reply(error, request)
        except StoreUnavailable as exc:
            return web_error_reply(errors.store_unavailable(exc), request)
        except SessionReadOnly:
            return problem(
                request,
                400,
                "bearer_session",
                "Not for API tokens",
                "A request authenticated by an API token cannot log in or out; send it "
                "without the Authorization header, from a browser.",
            )

    async def _dispatch(self, state: AsyncRequestSession) -> Reply | None:
        settings, request = self.settings, state.request
        path, method = request.path, request.method.upper()
        pages = {
            settings.login_path: ("GET", self.login),
            settings.callback_path: ("GET", self.callback),
            settings.logout_path: ("POST", self.logout),
            settings.logged_out_path: ("GET", self.logged_out),
            settings.ended_path: ("GET", self.ended),
        }
        page = pages.get(path)
        if page is None:
            if path in self.exempt:
                return None
            return await self.before_app(state)
        allowed, handler = page
        if method != allowed and not (allowed == "GET" and method == "HEAD"):
            return method_not_allowed(request, allowed)
        return await handler(state)

    # -- login ------------------------------------------------------------------------------

    async def login(self, state: AsyncRequestSession) -> Reply:
        """Start a login: back to ``next`` (a same-origin path) afterwards."""
        await state.load()
        return await self._start_login(state, safe_next(query(state.request).get("next")))

    async def start_login(
        self, state: AsyncRequestSession, target: str, *, prompt: str | None = None
    ) -> Reply:
        """Send the browser to the provider, back to ``target`` (a same-origin path) after
        the login; ``prompt="login"`` has the provider ask for the credentials again even
        while its session lives (a re-authentication before a sensitive step): ``max_age=0``
        goes along, and an ID token whose ``auth_time`` is older than the login's start is
        refused (400 ``invalid_login``)."""
        await state.load()
        return await self._start_login(state, safe_next(target), prompt)

    async def _start_login(
        self, state: AsyncRequestSession, target: str, prompt: str | None = None
    ) -> Reply:
        request, session = state.request, state.session
        if session.read_only:
            raise SessionReadOnly("a bearer session cannot log in")
        login_state, nonce, verifier = new_login_secrets()
        try:
            url = await self.provider.authorization_url(
                redirect_uri=absolute(self.settings, request, self.settings.callback_path),
                state=login_state,
                nonce=nonce,
                code_verifier=verifier,
                prompt=prompt,
                max_age=0 if prompt == "login" else None,
            )
        except ProviderUnavailable as exc:
            log.warning("OIDC login not started: %s", exc)
            return provider_unavailable(request, kept=session.user_id is not None)
        except OIDCError as exc:
            return provider_misconfigured(request, exc)
        now = self.clock()
        entry = {
            "nonce": nonce,
            "verifier": verifier,
            "return_to": target,
            "prompt": prompt,
            "started": now,
        }
        for key in pending_to_drop(session, now, self.settings.login_timeout):
            del session[key]
        session[pending_key(login_state)] = entry
        return redirect(url)

    async def callback(self, state: AsyncRequestSession) -> Reply:
        """The provider sends the browser back: finish the login, or say why not."""
        request, settings = state.request, self.settings
        params = query(request, single=CALLBACK_PARAMETERS)
        await state.load()
        session = state.session
        key, entry = take_pending(session, params.get("state"))
        if key is not None:
            del session[key]  # used once, whatever follows
        if entry is None:
            return problem(
                request,
                400,
                "login_state_mismatch",
                "Login not completed",
                "This answer from the sign-in provider does not belong to a login started in "
                "this browser (it was used already, or the browser's cookies were cleared). "
                "Please start again.",
                link=(with_next(settings.login_path, "/"), "Log in"),
            )
        target = safe_next(entry.get("return_to"))
        again = (with_next(settings.login_path, target), "Log in again")
        if pending_expired(entry, self.clock(), settings.login_timeout):
            return problem(
                request,
                400,
                "login_expired",
                "Login not completed",
                "The login took too long and has expired. Please start again.",
                link=again,
            )
        silent = entry.get("prompt") == "none"
        if "error" in params:
            error = ProviderRefused(params["error"]).error  # printable, at most 64 characters
            if error in TRANSIENT_ERRORS:  # nothing is over: the user may try again
                retry = (target, "Try again") if silent else again
                return provider_unavailable(request, kept=session.user_id is not None, link=retry)
            if silent:
                return await self._ended(state, error, target)
            return problem(
                request,
                403 if error == "access_denied" else 400,
                "login_refused",
                "Login not completed",
                f"The sign-in provider did not log you in ({error}).",
                link=again,
            )
        return await self._finish_login(state, params, entry, target, silent, again)

    async def _finish_login(
        self,
        state: AsyncRequestSession,
        params: Mapping[str, str],
        entry: Mapping[str, Any],
        target: str,
        silent: bool,
        again: tuple[str, str],
    ) -> Reply:
        request, settings = state.request, self.settings
        code = params.get("code")
        try:
            if not code:
                raise InvalidToken("the answer carries no authorization code")
            self.provider.check_callback_iss(await self.provider.metadata(), params.get("iss"))
            tokens = await self.provider.exchange_code(
                code=code,
                redirect_uri=absolute(settings, request, settings.callback_path),
                code_verifier=str(entry.get("verifier")),
                nonce=str(entry.get("nonce")),
            )
            if entry.get("prompt") == "login" and tokens.identity is not None:
                started = entry.get("started")
                check_reauthenticated(
                    tokens.identity,
                    since=float(started) if isinstance(started, int | float) else 0.0,
                    leeway=settings.clock_leeway,
                )
        except ProviderUnavailable as exc:
            log.warning("OIDC login not completed: %s", exc)
            kept = state.session.user_id is not None  # a prompt=none login's session stays
            return provider_unavailable(request, kept=kept, link=again)
        except ProviderRefused as exc:
            return problem(
                request,
                400,
                "login_failed",
                "Login not completed",
                f"The sign-in provider would not complete the login ({exc.error}). "
                "Please start again.",
                link=again,
            )
        except InvalidToken as exc:
            return problem(
                request,
                400,
                "invalid_login",
                "Login not completed",
                f"The sign-in provider's answer could not be trusted: {exc.reason}.",
                link=again,
            )
        except OIDCError as exc:
            return provider_misconfigured(request, exc)
        identity = tokens.identity
        user_id = None if identity is None else self.user_id_for(identity)
        if identity is None or user_id is None:
            return problem(
                request,
                502,
                "no_user_id",
                "Login not completed",
                f"The ID token has no usable {settings.user_id_claim!r} claim "
                "(OIDCSettings.user_id_claim) to name the user by.",
            )
        await self._remember_user(identity, user_id)
        # The tokens go into the new session's first write: a store failing half-way leaves
        # no logged-in session without them.
        tokens_kept = token_record(tokens, identity, self.clock())
        if silent and state.session.user_id == user_id:
            state.session[OIDC_KEY] = tokens_kept
            await state.rotate(reauthenticated=True)
        else:
            if state.session.user_id not in (None, user_id):
                await state.logout()  # another user's session: a login would carry nothing
            state.session[OIDC_KEY] = tokens_kept
            await state.login(user_id, carry=(OIDC_KEY,))
        return redirect(target)

    def user_id_for(self, identity: Identity) -> str | None:
        """The local user id of a validated login: the ``user_id_claim`` (None: no usable
        claim, a 502 ``no_user_id``). Adapters override it to map the identity to their own
        users (Django: a user's primary key); raising a ``WebError`` refuses the login."""
        claim = self.settings.user_id_claim
        value = identity.sub if claim == "sub" else identity.claims.get(claim)
        if isinstance(value, bool) or not isinstance(value, str | int):
            return None
        if claim == "email" and identity.claims.get("email_verified", True) not in VERIFIED:
            raise WebError(  # anyone may type an address the provider never checked
                403,
                "email_not_verified",
                "Your e-mail address is not verified at the sign-in provider, so it cannot "
                "name your account here. Verify it there, then log in again.",
            )
        text = str(value)
        usable = text.strip() and text.isprintable() and len(text) <= MAX_USER_ID_CHARS
        return text if usable else None

    async def _remember_user(self, identity: Identity, user_id: str) -> None:
        """Index the provider's subject and session to the local user, for back-channel
        logout (markers live as long as a session can)."""
        ttl = min(self.manager.policy.absolute_lifetime, MAX_MARKER_TTL)
        await self.store.put_marker(sub_marker(identity.iss, identity.sub), user_id, ttl)
        if identity.sid is not None:
            await self.store.put_marker(sid_marker(identity.iss, identity.sid), user_id, ttl)

    # -- before the application ---------------------------------------------------------------

    async def before_app(self, state: AsyncRequestSession) -> Reply | None:
        """Refresh the session's access token if it needs it; None lets the request through."""
        if not state.cookie_values:
            return None  # no session to refresh (and no store call for it)
        await state.load()
        session, request = state.session, state.request
        if session.read_only:
            return None
        if session.record is None:
            if session.expired_reason is Verdict.UNKNOWN and await self._ended_at_provider(state):
                return await self._ended(state, "backchannel_logout", return_to(request))
            return None
        oidc = session.get(OIDC_KEY)
        if not isinstance(oidc, Mapping):
            return None
        if not needs_refresh(oidc, self.settings.refresh_skew, self.clock()):
            return None
        if not oidc.get("refresh_token"):
            return await self._reauthenticate(state)
        try:
            record = await self.lease.refresh(session.record.key, self._needed, self._refresh)
        except ProviderRefused as exc:
            if exc.error in ENDS_SESSION:
                return await self._ended(state, exc.error, return_to(request))
            log.error("OIDC refresh refused, session kept: %s", exc)
            return problem(
                request,
                502,
                "provider_refused",
                "Sign-in provider refused",
                f"The sign-in provider refused to renew this session ({exc.error}). You are "
                "still logged in; the site's operators have been told in their logs.",
            )
        except InvalidToken:
            return await self._ended(state, "invalid_id_token", return_to(request))
        except ProviderUnavailable as exc:
            log.warning("OIDC refresh postponed, session kept: %s", exc)
            return provider_unavailable(request, kept=True)
        except RefreshWaitExpired:
            return refresh_busy(request)
        except SessionGone:
            return await self._ended(state, "session_ended", return_to(request))
        except OIDCError as exc:
            return provider_misconfigured(request, exc)
        if session.record is not None and session.record.key == record.key:
            session.record = record  # the request (and the application) see the new tokens
        return None

    def _needed(self, data: Mapping[str, Any]) -> bool:
        return needs_refresh(data.get(OIDC_KEY), self.settings.refresh_skew, self.clock())

    async def _refresh(self, oidc: dict[str, Any]) -> dict[str, Any]:
        """One refresh at the provider (under the lease), with the refresh token as the
        record holds it now."""
        refresh_token = oidc.get("refresh_token")
        if not isinstance(refresh_token, str) or not refresh_token:
            raise ProviderRefused("invalid_grant", "the session holds no refresh token")
        tokens = await self.provider.refresh(refresh_token, identity=identity_of(oidc))
        return refreshed_record(oidc, tokens, self.clock())

    async def _reauthenticate(self, state: AsyncRequestSession) -> Reply:
        """No refresh token: a page load goes through the provider with ``prompt=none``
        (back at once while its session lives); anything else gets a 401 with a login URL."""
        request, settings = state.request, self.settings
        target = return_to(request)
        if settings.prompt_none_fallback and is_navigation(request):
            return await self._start_login(state, target, prompt="none")
        return json_reply(
            401,
            {
                "error": "reauthentication_required",
                "message": "The access token has expired and cannot be renewed here; log in again.",
                "login_url": with_next(settings.login_path, target),
            },
            (("www-authenticate", 'Cookie realm="coatcheck"'),),
        )

    async def _ended_at_provider(self, state: AsyncRequestSession) -> bool:
        """Did a back-channel logout end the session this request's cookie named? (Asked
        only when the cookie names no session; the answer is given once.)"""
        codec = await self.manager.token_codec()
        for value in state.cookie_values:
            try:
                key = codec.parse(value)
            except InvalidSessionToken:
                continue
            if await self.store.delete_marker(ended_marker(public_id(key))):
                return True
        return False

    async def _ended(self, state: AsyncRequestSession, reason: str, target: str) -> Reply:
        """End the local session; a browser goes to the "session ended" page, an API client
        gets 401 with the reason."""
        request, settings = state.request, self.settings
        await state.load()
        ended = state.session.record
        await state.logout()
        log.info("OIDC session ended here: the provider's ended (%s)", reason)
        await self._revoked(ended, reason)
        if request.wants_html:
            return redirect(with_next(settings.ended_path, target))
        return json_reply(
            401,
            {
                "error": "session_ended",
                "reason": reason,
                "message": "Your session at the sign-in provider has ended; log in again.",
                "login_url": with_next(settings.login_path, target),
            },
            (("www-authenticate", 'Cookie realm="coatcheck"'),),
        )

    async def ended(self, state: AsyncRequestSession) -> Reply:
        """The "session ended" page: a link that logs in again and comes back to ``next``."""
        target = safe_next(query(state.request).get("next"))
        return html_reply(200, ended_page(with_next(self.settings.login_path, target)))

    # -- RP-initiated logout ----------------------------------------------------------------

    async def logout(self, state: AsyncRequestSession) -> Reply:
        """Destroy the local session first, then send the browser to the provider to end its
        session there (``id_token_hint``, ``post_logout_redirect_uri``, ``state``)."""
        request, settings = state.request, self.settings
        await state.load()
        oidc = state.session.get(OIDC_KEY)
        ended = state.session.record
        if ended is not None:
            await state.logout()
            await self._revoked(ended, "logout")
        if not isinstance(oidc, Mapping):
            return redirect(settings.logged_out_path)
        id_token = oidc.get("id_token")
        logout_state = secrets.token_urlsafe(32)
        try:
            url = await self.provider.end_session_url(
                id_token_hint=id_token if isinstance(id_token, str) else None,
                post_logout_redirect_uri=absolute(settings, request, settings.logged_out_path),
                state=logout_state,
            )
        except OIDCError:
            return redirect(f"{settings.logged_out_path}?provider=unreachable")
        if url is None:
            return redirect(settings.logged_out_path)
        state.session[LOGOUT_KEY] = {"state": logout_state, "started": self.clock()}
        return redirect(url)

    async def logged_out(self, state: AsyncRequestSession) -> Reply:
        """Where the provider sends the browser after its logout: the ``state`` it brings back
        must be the one sent (a different one is refused; none at all is accepted, since this
        page changes nothing)."""
        request, settings = state.request, self.settings
        params = query(request, single=("state",))
        home = safe_next(settings.post_logout_path)
        expected = None
        if state.cookie_values:
            await state.load()
            session = state.session
            expected = session.get(LOGOUT_KEY)
            if expected is not None:
                if session.user_id is None:
                    await state.logout()  # the session only carried the logout's state
                else:
                    del session[LOGOUT_KEY]
        presented = params.get("state")
        if params.get("provider") == "unreachable":
            return html_reply(200, logged_out_page(home, provider_reached=False))
        if presented is None or _logout_state_matches(
            expected, presented, self.clock(), settings.login_timeout
        ):
            return html_reply(200, logged_out_page(home))
        return problem(
            request,
            400,
            "logout_state_mismatch",
            "Logged out",
            "You are logged out of this site, but this answer from the sign-in provider does "
            "not belong to a logout started in this browser.",
            link=(home, "Continue"),
        )

    # -- back-channel logout -----------------------------------------------------------------

    async def backchannel_logout(self, request: RequestInfo, body: bytes) -> Reply:
        """OpenID Connect Back-Channel Logout 1.0: the provider POSTs a ``logout_token``; no
        session and no cookie are involved. The token is validated completely (the provider
        client's checks, then the ``jti`` replay cache), and every local session of that
        ``iss`` and ``sid`` (or, without a sid, that ``sub``) is revoked, those only.

        200 (``Cache-Control: no-store``) when done, including when no session matched (a
        logout is idempotent); 400 ``invalid_request`` for an invalid or replayed token;
        400 ``temporarily_unavailable`` with ``Retry-After`` when the provider's keys or the
        store could not be reached (the spec's answer for a logout the RP could not carry
        out; the token's ``jti`` is not spent then, so a retry works).
        """
        if request.method.upper() != "POST":
            return Reply(405, [("allow", "POST"), NO_STORE])
        if not is_form(request.header("content-type")):
            return backchannel_error("invalid_request", "send the logout_token as a form")
        token = form_value(body, "logout_token")
        if not token:
            return backchannel_error(
                "invalid_request", "send one logout_token parameter in a form of a few fields"
            )
        try:
            claims = await self.provider.validate_logout_token(token)
        except InvalidLogoutToken as exc:
            log.info("OIDC back-channel logout refused: %s", exc)
            return backchannel_error("invalid_request", exc.reason)
        except OIDCError as exc:
            log.warning("OIDC back-channel logout postponed: %s", exc)
            return backchannel_unavailable("the provider's keys could not be fetched")
        marker = jti_marker(claims.iss, claims.jti)
        ttl = LOGOUT_TOKEN_MAX_AGE + 2 * self.settings.clock_leeway
        try:
            if not await self.store.put_marker(marker, "1", ttl, only_if_absent=True):
                return backchannel_error("invalid_request", "the logout token was used already")
        except StoreUnavailable:
            return backchannel_unavailable("the session store could not be reached")
        try:
            await self._end_sessions(claims)
        except StoreUnavailable:
            with suppress(StoreUnavailable):
                await self.store.delete_marker(marker)  # so that a retry is not a replay
            return backchannel_unavailable("the session store could not be reached")
        return Reply(200, [NO_STORE])

    async def _end_sessions(self, claims: LogoutClaims) -> int:
        """Revoke the local sessions a logout token names; how many ended."""
        users: set[str] = set()
        if claims.sid is not None:
            users.add(await self.store.get_marker(sid_marker(claims.iss, claims.sid)) or "")
        if claims.sub is not None:
            users.add(await self.store.get_marker(sub_marker(claims.iss, claims.sub)) or "")
        users.discard("")
        ended = 0
        now = self.clock()
        for user_id in sorted(users):
            for record in await self.manager.list_user(user_id):
                if not logged_out_by(record.data.get(OIDC_KEY), claims.iss, claims.sid, claims.sub):
                    continue
                if await self.manager.revoke_key(
                    record.key, reason="backchannel_logout", by="logout"
                ):
                    ended += 1
                    ttl = min(max(record.expires_at - now, 1.0), MAX_MARKER_TTL)
                    await self.store.put_marker(ended_marker(record.public_id), "1", ttl)
                    await self._revoked(record, "backchannel_logout")
        return ended

    async def _revoked(self, record: SessionRecord | None, reason: str) -> None:
        """Tell the hook; a hook that fails is logged and undoes or halts nothing (the session
        has ended, and a back-channel logout still has others to revoke)."""
        if record is None or self.on_revoked is None:
            return
        try:
            await self.on_revoked(record, reason)
        except Exception:
            log.exception("the OIDC on_revoked hook failed (%s); the session has ended", reason)


# -- answers --------------------------------------------------------------------------------


def web_error_reply(error: WebError, request: RequestInfo) -> Reply:
    status, headers, body = error.render(request)
    return Reply(status, [h for h in headers if h[0] != "content-length"], body)


def method_not_allowed(request: RequestInfo, allowed: str) -> Reply:
    reply = problem(
        request,
        405,
        "method_not_allowed",
        "Method not allowed",
        f"This address takes {allowed} only.",
    )
    return Reply(reply.status, [*reply.headers, ("allow", allowed)], reply.body)


def provider_misconfigured(request: RequestInfo, exc: OIDCError) -> Reply:
    """The provider's answer does not fit the settings (an operator's problem, never the
    user's: nothing ends)."""
    log.error("OIDC provider answer unusable: %s", exc)
    return problem(
        request,
        502,
        "provider_error",
        "Sign-in provider error",
        f"The sign-in provider's answer could not be used ({exc}). The site's operators "
        "need to look at its OpenID Connect settings.",
    )


def backchannel_error(error: str, description: str) -> Reply:
    return json_reply(400, {"error": error, "error_description": description})


def backchannel_unavailable(description: str) -> Reply:
    return json_reply(
        400,
        {"error": "temporarily_unavailable", "error_description": description},
        (RETRY_SOON,),
    )


def form_value(body: bytes, name: str) -> str | None:
    """The one field ``name`` of an ``application/x-www-form-urlencoded`` body; None when it is
    absent, sent twice (RFC 6749, 3.1), or the body is not such a form of at most 20 fields."""
    try:
        pairs = parse_qsl(body.decode("ascii"), max_num_fields=20, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        return None
    values = [value for key, value in pairs if key == name]
    return values[0] if len(values) == 1 else None


def _logout_state_matches(expected: object, presented: str, now: float, timeout: float) -> bool:
    if not isinstance(expected, Mapping):
        return False
    sent, started = expected.get("state"), expected.get("started")
    if not isinstance(sent, str) or not isinstance(started, int | float):
        return False
    return now - started <= timeout and hmac.compare_digest(sent.encode(), presented.encode())
