"""How the API answers: JSON that is never cached (bodies carry tokens and session facts), and
the problem responses each route documents."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from fastapi.responses import JSONResponse

from .problems import MEDIA_TYPE, STATUS_OF, TITLES

NO_STORE: Final = {"cache-control": "no-store"}

# What any /v1 call may meet: a bad key, a body refused, the store down.
COMMON: Final = (
    "unauthorized",
    "body-too-large",
    "unsupported-media-type",
    "invalid-json",
    "validation-error",
    "store-unavailable",
)


def reply(content: Mapping[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(dict(content), status_code=status, headers=NO_STORE)


def problems(*slugs: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of problems by slug (several slugs of one status share it)."""
    responses: dict[int | str, dict[str, Any]] = {}
    for slug in slugs:
        status = STATUS_OF[slug]
        entry = responses.setdefault(
            status,
            {
                "description": "",
                "content": {
                    MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}
                },
            },
        )
        names = f"`{slug}` ({TITLES[slug]})"
        entry["description"] = f"{entry['description']}; {names}" if entry["description"] else names
    return responses


def admin_problems(*slugs: str) -> dict[int | str, dict[str, Any]]:
    """The problems of an admin-only call: the common ones, 403 and ``slugs``."""
    return problems(*COMMON, "forbidden", *slugs)
