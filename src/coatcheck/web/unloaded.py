"""A request's session used before it was loaded: the one place where the asyncio handler and
its generated synchronous twin behave differently on purpose, written once per face
(``scripts/unasync.py`` turns ``refuse_unloaded`` into ``load_unloaded``)."""

from __future__ import annotations

from typing import NoReturn, Protocol


class Loadable(Protocol):
    def load(self) -> object: ...


def refuse_unloaded(state: object) -> NoReturn:
    """asyncio: reading the store needs an ``await``, which a dict access cannot do, so the
    error says where the ``await`` goes."""
    raise RuntimeError(
        "the session is not loaded yet: await session.load() first "
        "(the Starlette/FastAPI dependencies do it for you)"
    )


def load_unloaded(state: Loadable) -> None:
    """Threads: load it now, on first use (WSGI, Flask and Django code never call ``load``)."""
    state.load()
