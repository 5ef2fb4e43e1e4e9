"""Where a request finds the service context: the application's state, set by ``create_app``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection

if TYPE_CHECKING:
    from ..context import ServiceContext


def context_of(connection: HTTPConnection) -> ServiceContext:
    """The context of the application serving this request."""
    context: ServiceContext = connection.app.state.context
    return context
