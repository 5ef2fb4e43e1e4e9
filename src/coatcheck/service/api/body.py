"""Request bodies, read by the API itself so that every refusal has its own problem type and
comes after the service key check: 415 (not JSON), 400 (not valid JSON), 422 (valid JSON of
the wrong shape). FastAPI's own body handling would answer these before authentication."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect

from .headers import header
from .problems import Problem, validation_problem

M = TypeVar("M", bound=BaseModel)
JSON_MEDIA_TYPE = "application/json"


def _is_json(content_type: str) -> bool:
    media = content_type.partition(";")[0].strip().lower()
    return media == JSON_MEDIA_TYPE or (
        media.startswith("application/") and media.endswith("+json")
    )


def _no_constants(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(raw: bytes) -> Any:
    """The JSON value of a body (RFC 8259: no NaN or Infinity), or a 400 ``invalid-json``."""
    try:
        return json.loads(raw, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError too
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc) or "too deep"
        raise Problem("invalid-json", f"The body is not valid JSON: {reason}.") from None


async def read_body(request: Request, model: type[M], *, optional: bool = False) -> M:
    """The request's body as ``model``, or its problem (415, 400, 422); with ``optional``, an
    empty body is ``model()`` (its defaults)."""
    raw = await received(request)
    if optional and not raw.strip():
        return model()
    return parse_body(raw, header(request, b"content-type") or "", model)


async def received(request: Request) -> bytes:
    """The whole body, read from the request's ASGI ``receive`` as ``request.body()`` reads it
    (a disconnect is ``ClientDisconnect``), without the async generator it reads through:
    about 1.9 µs less per call, a tenth of an introspection cache hit in-process. The body is
    read once, here; nothing reads it through the request afterwards."""
    chunks: list[bytes] = []
    while True:
        message = await request.receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()


def parse_body(raw: bytes, content_type: str, model: type[M]) -> M:
    """``raw`` as ``model``, or its problem: 415 unless ``content_type`` is JSON, 400 for what
    is not valid JSON, 422 for valid JSON of the wrong shape.

    A model whose fields are strings and booleans (``one_pass``) is validated in one pass by
    pydantic's own JSON parser; only a body it refuses is read again with :func:`json.loads`
    and validated as a Python value, so that every refusal (and the bodies only
    :func:`json.loads` reads, such as UTF-16 or a byte order mark) gets exactly the answer it
    always got."""
    if not _is_json(content_type):
        raise Problem(
            "unsupported-media-type",
            f"Send the body as JSON with Content-Type: {JSON_MEDIA_TYPE}.",
        )
    if getattr(model, "one_pass", False):
        try:
            return model.model_validate_json(raw)
        except ValidationError:
            pass
    value = parse_json(raw)
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise validation_problem(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        ) from None


def json_body(model: type[M], *, optional: bool = False) -> Callable[[Request], Awaitable[M]]:
    """:func:`read_body` as a dependency."""

    async def read(request: Request) -> M:
        return await read_body(request, model, optional=optional)

    return read


def body_schema(model: type[BaseModel], *, optional: bool = False) -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of a route whose body :func:`json_body` reads (for
    ``openapi_extra``); the model's schema is referenced from the components, where
    :mod:`.openapi` puts it."""
    return {
        "requestBody": {
            "required": not optional,
            "content": {
                JSON_MEDIA_TYPE: {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
            },
        }
    }
