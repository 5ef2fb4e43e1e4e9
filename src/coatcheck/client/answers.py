"""What an HTTP answer of the session service becomes: the model the call expects, or the
:class:`~coatcheck.client.errors.ServiceError` it stands for. Shared by both faces of the
client (``httpx.Response`` is the same class in both)."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar

import httpx

from .errors import PROBLEM_PREFIX, ServiceError, bad_answer, from_response
from .models import listed

T = TypeVar("T")
NOT_FOUND = PROBLEM_PREFIX + "not-found"
Reader = Callable[[Mapping[str, Any]], T]


def _where(answer: httpx.Response) -> tuple[str, str]:
    return answer.request.method, answer.request.url.path


def json_answer(
    answer: httpx.Response, *, ok: Collection[int] = (200,), secret: str | None = None
) -> dict[str, Any]:
    """The answer's JSON object when its status is one of ``ok``, else the error it stands
    for, scrubbed of ``secret`` (the token the call carried)."""
    status = answer.status_code
    if status not in ok:
        raise failure(answer, secret)
    try:
        body = json.loads(answer.content)
    except ValueError:
        raise bad_answer(status, *_where(answer), "the body is not JSON") from None
    if not isinstance(body, dict):
        raise bad_answer(status, *_where(answer), "the body is not a JSON object")
    return body


def decoded(
    answer: httpx.Response,
    make: Reader[T],
    *,
    ok: Collection[int] = (200,),
    secret: str | None = None,
) -> T:
    """``make`` over the answer's JSON; a field of the wrong shape is the service's fault."""
    body = json_answer(answer, ok=ok, secret=secret)
    try:
        return make(body)
    except (ValueError, TypeError) as exc:
        raise bad_answer(answer.status_code, *_where(answer), str(exc)) from None


def listing(answer: httpx.Response, name: str, make: Reader[T]) -> list[T]:
    """Each object of the list under ``name`` (``sessions``, ``tokens``) through ``make``."""
    return decoded(answer, lambda body: [make(item) for item in listed(body, name)])


def flag(answer: httpx.Response, name: str, *, secret: str | None = None) -> bool:
    """A boolean field (``revoked``)."""
    return decoded(answer, lambda body: _typed(body, name, bool), secret=secret)


def count(answer: httpx.Response, name: str, *, secret: str | None = None) -> int:
    """A whole-number field (``revoked`` of a revoke-all)."""
    return decoded(answer, lambda body: _typed(body, name, int), secret=secret)


def _typed(body: Mapping[str, Any], name: str, kind: type[T]) -> T:
    value = body.get(name)
    if type(value) is not kind:
        raise ValueError(f"field {name!r} is missing or not a {kind.__name__}")
    return value


def revoked_by_id(answer: httpx.Response) -> bool:
    """A revocation by id: True when the service ended it, False for its ``not-found``
    problem (no such live session or token), else the error."""
    if answer.status_code == 404:
        error = failure(answer, None)
        if error.type == NOT_FOUND:
            return False
        raise error
    return flag(answer, "revoked")


def failure(answer: httpx.Response, secret: str | None) -> ServiceError:
    """The error an answer with an unexpected status stands for."""
    content_type = answer.headers.get("content-type", "")
    return from_response(
        answer.status_code, answer.reason_phrase, content_type, answer.content, secret
    )
