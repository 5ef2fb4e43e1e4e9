"""The test door of ``coatcheck serve --testing``: ``GET /autosession?user=NAME`` logs the
browser in as one of ``settings.test_users`` and goes on to the sessions page.

It follows :mod:`coatcheck.testing.autosession`'s rules: the route exists only with the testing
flag, never where production is declared or on a non-loopback bind address (the service
refuses to start), and each request must come straight from loopback (peer and ``Host``), with
no proxy headers and no cross-site origin. The token travels only in the ``Set-Cookie``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ...testing.autosession import PROXY_HEADERS
from ...testing.guard import ensure_testing_allowed, is_loopback
from ...web import csrf, guards
from ...web.errors import WebError
from ...web.request import RequestInfo
from ...web.settings import WebSettings
from ...web.starlette import get_session
from .common import DEFAULT_PAGE, see_other

if TYPE_CHECKING:
    from ..context import ServiceContext

logger = logging.getLogger("coatcheck.service")
PATH = "/autosession"


class AutosessionDoor:
    """Built only with ``settings.testing``; raises ``TestingNotAllowed`` where the door must
    not exist (production declared, non-loopback bind address)."""

    def __init__(self, ctx: ServiceContext, web: WebSettings) -> None:
        ensure_testing_allowed(explicit=True, bind_host=ctx.settings.host)
        self.users = frozenset(ctx.settings.test_users)
        self.web = web
        logger.warning(
            "coatcheck test door open at %s for %s: test use only",
            PATH,
            ", ".join(sorted(self.users)) or "no users",
        )

    def routes(self) -> list[BaseRoute]:
        return [Route(PATH, self.open, methods=["GET"])]

    async def open(self, request: Request) -> Response:
        state = await get_session(request)
        refused = self.refusal(state.request)
        if refused:
            raise WebError(403, "autosession_refused", f"Autosession refused: {refused}.")
        name = request.query_params.get("user")
        if name not in self.users:
            raise WebError(
                403, "unknown_user", "Autosession refused: name one of the predefined test users."
            )
        await state.login(name)
        return see_other(guards.safe_next(request.query_params.get("next"), DEFAULT_PAGE))

    def refusal(self, request: RequestInfo) -> str | None:
        """Why this request may not use the door, or None (the autosession door's rules)."""
        if not is_loopback(request.peer):
            return f"the peer address {request.peer!r} is not loopback"
        if not is_loopback(request.host):
            return f"the Host {request.host!r} is not a loopback host"
        proxied = [h for h in PROXY_HEADERS if request.header(h) is not None]
        if proxied:
            return f"the request came through a proxy ({', '.join(proxied)})"
        return csrf.origin_problem(request, self.web)
