"""The body size limit, as a pure ASGI middleware: a ``Content-Length`` over the limit is
refused before the application runs, and a body sent without one (chunked) is counted as it
arrives and refused the moment it passes the limit, so no oversized body is ever buffered."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..metrics import ServiceMetrics
from .problems import Problem, problem_response


class BodyTooLarge(Problem):
    """Raised from ``receive`` when the body passes the limit: the API's and the pages' own
    error handlers render it (it is an HTTPException), and this middleware does if none did."""

    def __init__(self, limit: int) -> None:
        super().__init__("body-too-large", f"The request body is over the limit of {limit} bytes.")


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413 ``body-too-large``."""

    def __init__(self, app: ASGIApp, limit: int, metrics: ServiceMetrics) -> None:
        self.app = app
        self.limit = limit
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._declared(scope) > self.limit:
            await self._refuse(scope, receive, send)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send)

    @staticmethod
    def _declared(scope: Scope) -> int:
        """The ``Content-Length`` (0 if absent; a malformed one counts as too large)."""
        for name, value in scope["headers"]:
            if name == b"content-length":
                return int(value) if value.isdigit() and len(value) < 19 else 1 << 62
        return 0

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.metrics.rejections.labels(reason="body-too-large").inc()
        response = problem_response(
            "body-too-large", f"The request body is over the limit of {self.limit} bytes."
        )
        response.headers["connection"] = "close"  # the rest of the body is not read
        await response(scope, receive, send)
