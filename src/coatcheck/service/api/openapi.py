"""The OpenAPI document at ``/openapi.json``: every ``/v1`` route, ``/healthz`` and
``/metrics``, the service key scheme, the request bodies (read by :mod:`.body`, so added here)
and the problem responses. The people's pages are not part of it."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .models import REQUEST_MODELS, ProblemDetails
from .problems import MEDIA_TYPE
from .version import SERVICE_VERSION

DESCRIPTION = (
    "The coatcheck session service: other services create, validate, refresh and revoke "
    "users' sessions and API tokens here. Every `/v1` call carries a service key "
    "(`Authorization: Bearer cck_...`); every error is an RFC 9457 problem "
    "(`application/problem+json`, `type` = `urn:coatcheck:problem:<slug>`). "
    "Reference: docs/service.md."
)


def service_openapi(app: FastAPI) -> dict[str, Any]:
    """The document, made once per application and kept."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    document = get_openapi(
        title="coatcheck session service",
        version=SERVICE_VERSION,
        description=DESCRIPTION,
        routes=app.routes,
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    documented: tuple[type[BaseModel], ...] = (*REQUEST_MODELS, ProblemDetails)
    models: list[tuple[type[BaseModel], Literal["validation"]]] = [
        (model, "validation") for model in documented
    ]
    _, extra = models_json_schema(
        models,
        ref_template="#/components/schemas/{model}",
    )
    for name, schema in extra.get("$defs", {}).items():
        schemas.setdefault(name, schema)
    for path in document.get("paths", {}).values():
        for operation in path.values():
            _problems_only(operation)
    app.openapi_schema = document
    return document


def _problems_only(operation: dict[str, Any]) -> None:
    """A problem response is ``application/problem+json`` alone (FastAPI adds an empty
    ``application/json`` entry to every extra response)."""
    for response in operation.get("responses", {}).values():
        content = response.get("content", {})
        if MEDIA_TYPE in content:
            content.pop("application/json", None)
