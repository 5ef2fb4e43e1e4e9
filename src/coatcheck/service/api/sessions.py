"""``/v1/sessions`` and ``/v1/users/{user_id}/sessions``: create a session after the calling
application authenticated its user, introspect, refresh and revoke tokens, list and end a
user's sessions."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import JSONResponse

from ...apitokens import ApiTokenInfo, is_api_token, looks_like_api_token
from ...client.cache import cache_key
from ...client.models import Introspection as Answer
from ...core.errors import SessionGone
from ...core.policy import Verdict
from ...core.records import SessionRecord
from ...core.session import Session
from ...core.tokens import is_well_formed
from .. import actions
from ..context import ServiceContext
from ..introspection_cache import IntrospectionCache
from .auth import KEY_REQUIRED, admin_scope, authenticated
from .body import body_schema, json_body, read_body
from .lean import LeanRoute
from .models import (
    MAX_USER_ID_CHARS,
    NO_CONTROL_CHARACTERS,
    CreateSession,
    Introspect,
    Introspection,
    Refresh,
    Refreshed,
    Revoke,
    Revoked,
    RevokedCount,
    RevokeUserSessions,
    SessionCreated,
    SessionList,
)
from .problems import Problem
from .replies import COMMON, admin_problems, encode, json_reply, problems, reply
from .state import context_of

RESERVED_DATA_PREFIX = "coatcheck."  # data keys the library itself uses
INACTIVE = {"active": False}
INACTIVE_JSON = encode(INACTIVE)
ANSWER_FIELDS = tuple(f.name for f in dataclasses.fields(Answer) if f.name != "active")

UserIdPath = Annotated[
    str, Path(min_length=1, max_length=MAX_USER_ID_CHARS, pattern=NO_CONTROL_CHARACTERS)
]

# No router dependencies: both routes check the key themselves (any scope may call them),
# served as LeanRoutes (their endpoints called with the request alone: .lean).
introspection = APIRouter(prefix="/v1", tags=["introspection"], route_class=LeanRoute)
admin = APIRouter(prefix="/v1", tags=["sessions"], dependencies=[Depends(admin_scope)])


@admin.post(
    "/sessions",
    status_code=201,
    response_model=SessionCreated,
    responses=admin_problems("session-limit-reached"),
    openapi_extra=body_schema(CreateSession),
    summary="Create a session for an authenticated user; the token is returned once",
)
async def create_session(
    request: Request, body: Annotated[CreateSession, Depends(json_body(CreateSession))]
) -> JSONResponse:
    ctx = context_of(request)
    session = Session(None, kind=body.kind, client_ip=body.client_ip, user_agent=body.user_agent)
    for name, value in (body.data or {}).items():
        if name.startswith(RESERVED_DATA_PREFIX):
            raise Problem(
                "validation-error",
                f"data keys starting with {RESERVED_DATA_PREFIX!r} are coatcheck's own",
                errors=[{"loc": ["body", "data", name], "msg": "reserved key", "type": "reserved"}],
            )
        session[name] = value
    token = await ctx.sessions.login(session, body.user_id, kind=body.kind, remember=body.remember)
    record = session.record
    assert record is not None
    ctx.metrics.sessions_created.inc()
    return reply(
        {
            "token": token,
            "id": record.public_id,
            "user_id": body.user_id,
            "kind": record.kind,
            "created_at": record.created_at,
            "expires_at": record.expires_at,
            "absolute_expires_at": _absolute_deadline(ctx, record),
        },
        201,
    )


@introspection.post(
    "/sessions/introspect",
    response_model=Introspection,
    responses=problems(*COMMON),
    openapi_extra={**body_schema(Introspect), **KEY_REQUIRED},
    summary="Is this session token or API token live? (RFC 7662 shape)",
)
async def introspect(request: Request) -> Response:
    await authenticated(request)
    body = await read_body(request, Introspect)
    ctx = context_of(request)
    cache = ctx.introspection_cache
    if cache is None:
        return json_reply(await _uncached_introspection(ctx, body))
    return json_reply(await _cached_introspection(ctx, cache, body))


async def _uncached_introspection(ctx: ServiceContext, body: Introspect) -> bytes:
    """:func:`_introspection`'s answer, encoded; a session's facts are taken straight from its
    record (no :class:`Answer` in between: this is every introspection without the cache)."""
    if looks_like_api_token(body.token):
        value = await _introspection(ctx, body)
        return INACTIVE_JSON if value is None else _encoded_facts(value)
    record = await _live_session(ctx, body.token, body.client_ip, touch=body.touch)
    return INACTIVE_JSON if record is None else encode(_session_facts(record))


async def _introspection(ctx: ServiceContext, body: Introspect) -> Answer | None:
    """What the store says of the token, or None when it is not active."""
    if looks_like_api_token(body.token):
        info = await _check_api_token(ctx, body.token)
        return None if info is None else _api_token_value(info)
    record = await _live_session(ctx, body.token, body.client_ip, touch=body.touch)
    return None if record is None else _session_value(record)


async def _cached_introspection(
    ctx: ServiceContext, cache: IntrospectionCache, body: Introspect
) -> bytes:
    """:func:`_introspection`'s answer from the cache where its rules allow (counted as a
    valid validation like any other; its JSON encoded once per entry), else from the store,
    whose active answer is then kept."""
    client_ip = None if looks_like_api_token(body.token) else body.client_ip
    key = cache_key(body.token)
    value = cache.lookup(key, client_ip, touch=body.touch)
    if value is not None:
        ctx.metrics.validated(Verdict.VALID.value)
        return cache.encoded(key, value, _encoded_facts)
    ticket = cache.cache.ticket()
    value = await _introspection(ctx, body)
    if value is None:
        return INACTIVE_JSON
    cache.cache.put(key, value, ticket, client_ip)
    return _encoded_facts(value)


@introspection.post(
    "/sessions/refresh",
    response_model=Refreshed,
    responses=problems(*COMMON),
    openapi_extra={**body_schema(Refresh), **KEY_REQUIRED},
    summary="Slide the idle deadline of a live session (within the policy) and report its expiry",
)
async def refresh(request: Request) -> Response:
    await authenticated(request)
    body = await read_body(request, Refresh)
    ctx = context_of(request)
    if looks_like_api_token(body.token):
        info = await _check_api_token(ctx, body.token)
        if info is None:
            return reply(INACTIVE)
        return reply(
            {
                "active": True,
                "id": info.id,
                "expires_at": info.expires_at,
                "absolute_expires_at": info.expires_at,
            }
        )
    record = await _live_session(ctx, body.token, body.client_ip, touch=True)
    if record is None:
        return reply(INACTIVE)
    return reply(
        {
            "active": True,
            "id": record.public_id,
            "expires_at": record.expires_at,
            "absolute_expires_at": _absolute_deadline(ctx, record),
        }
    )


@admin.post(
    "/sessions/revoke",
    response_model=Revoked,
    responses=admin_problems(),
    openapi_extra=body_schema(Revoke),
    summary="End the session or API token a token names",
)
async def revoke(
    request: Request, body: Annotated[Revoke, Depends(json_body(Revoke))]
) -> JSONResponse:
    revoked = await actions.revoke_token_string(context_of(request), body.token)
    return reply({"revoked": revoked})


@admin.get(
    "/users/{user_id:path}/sessions",
    response_model=SessionList,
    responses=admin_problems(),
    summary="A user's live sessions (API tokens are listed under /tokens)",
)
async def list_sessions(request: Request, user_id: UserIdPath) -> JSONResponse:
    ctx = context_of(request)
    records = [r for r in await ctx.sessions.list_user(user_id) if not is_api_token(r)]
    return reply({"sessions": [_listed(r) for r in records]})


@admin.delete(
    "/users/{user_id:path}/sessions",
    response_model=RevokedCount,
    responses=admin_problems(),
    openapi_extra=body_schema(RevokeUserSessions, optional=True),
    summary="End every session of a user (but one, with except_token; API tokens too, on request)",
)
async def revoke_user_sessions(
    request: Request,
    user_id: UserIdPath,
    body: Annotated[RevokeUserSessions, Depends(json_body(RevokeUserSessions, optional=True))],
) -> JSONResponse:
    count = await actions.revoke_user_sessions(
        context_of(request),
        user_id,
        keep_token=body.except_token,
        include_tokens=body.include_tokens,
    )
    return reply({"revoked": count})


@admin.delete(
    "/sessions/{public_id}",
    response_model=Revoked,
    responses=admin_problems("invalid-session-id", "not-found"),
    summary="End the session with this public id (the id listings show)",
)
async def revoke_session(request: Request, public_id: str) -> JSONResponse:
    if not await actions.revoke_session_id(context_of(request), public_id):
        raise Problem("not-found", "There is no live session with this id.")
    return reply({"revoked": True})


async def _check_api_token(ctx: ServiceContext, token: str) -> ApiTokenInfo | None:
    """The info of a live API token (its last-used time touched, coalesced), else None."""
    verdict, info = await ctx.tokens.check(token)
    ctx.metrics.validated(verdict.value)
    return info if verdict is Verdict.VALID else None


async def _live_session(
    ctx: ServiceContext, token: str, client_ip: str | None, *, touch: bool
) -> SessionRecord | None:
    """The record of a live, logged-in session, else None (counted by result either way).

    ``touch``: as a request would, slide the idle deadline if the policy's touch interval has
    passed since the last write (so a refresh every few seconds costs no writes)."""
    if not is_well_formed(token):
        result = "malformed"
        record = None
    elif touch:
        record, result = await _touched(ctx, token, client_ip)
    else:
        verdict, record = await ctx.inspections.inspect(token, client_ip)
        result = verdict.value
    if record is not None and record.user_id is None:
        record, result = None, "anonymous"  # a session before login vouches for nobody
    ctx.metrics.validated(result)
    return record


async def _touched(
    ctx: ServiceContext, token: str, client_ip: str | None
) -> tuple[SessionRecord | None, str]:
    """A request's load and save: the record (its deadline slid if it was due) and the result."""
    session = await ctx.sessions.load(token, client_ip=client_ip)
    if session.record is None:
        return None, (session.expired_reason or Verdict.UNKNOWN).value
    try:
        await ctx.sessions.save(session)
    except SessionGone:  # ended between the load and the save
        return None, Verdict.UNKNOWN.value
    return session.record, Verdict.VALID.value


def _absolute_deadline(ctx: ServiceContext, record: SessionRecord) -> float:
    return ctx.sessions.policy.absolute_deadline(record.created_at, record.remember)


def _session_fields(record: SessionRecord) -> dict[str, Any]:
    """An active session's answer fields (``active`` aside), from its record."""
    return {
        "token_type": "session",
        "id": record.public_id,
        "user_id": record.user_id,
        "kind": record.kind,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "authenticated_at": record.authenticated_at,
        "last_seen_at": record.last_seen_at,
    }


def _session_value(record: SessionRecord) -> Answer:
    return Answer(active=True, **_session_fields(record))


def _api_token_value(info: ApiTokenInfo) -> Answer:
    return Answer(
        active=True,
        token_type="api_token",  # noqa: S106 (a type name, not a secret)
        id=info.id,
        user_id=info.user_id,
        kind="api",
        scopes=info.scopes,
        name=info.name,
        created_at=info.created_at,
        expires_at=info.expires_at,
        last_seen_at=info.last_used_at,
    )


def _facts(value: Answer) -> dict[str, Any]:
    """The answer for an active token (see :func:`_facts_of`)."""
    return _facts_of(**{name: getattr(value, name) for name in ANSWER_FIELDS})


def _session_facts(record: SessionRecord) -> dict[str, Any]:
    """What :func:`_facts` gives for :func:`_session_value`'s answer, from the record itself
    (no :class:`Answer` in between)."""
    return _facts_of(**_session_fields(record))


def _facts_of(
    *,
    token_type: str | None,
    id: str | None,
    user_id: str | None,
    kind: str | None,
    created_at: float | None,
    expires_at: float | None,
    authenticated_at: float | None,
    last_seen_at: float | None,
    scopes: tuple[str, ...] | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """The answer for an active token (RFC 7662's shape; ``scope`` and ``name`` for API
    tokens only, ``exp`` only for what expires), its fields in the documented order."""
    assert created_at is not None
    facts: dict[str, Any] = {
        "active": True,
        "token_type": token_type,
        "id": id,
        "sub": user_id,
        "user_id": user_id,
        "kind": kind,
        "iat": int(created_at),
    }
    if scopes is None and expires_at is not None:  # a session
        facts["exp"] = int(expires_at)
    facts["created_at"] = created_at
    facts["expires_at"] = expires_at
    facts["authenticated_at"] = authenticated_at
    facts["last_seen_at"] = last_seen_at
    if scopes is not None:  # an API token
        facts["scope"] = " ".join(scopes)
        facts["name"] = name
        if expires_at is not None:
            facts["exp"] = int(expires_at)
    return facts


def _encoded_facts(value: Answer) -> bytes:
    return encode(_facts(value))


def _listed(record: SessionRecord) -> dict[str, Any]:
    return {
        "id": record.public_id,
        "kind": record.kind,
        "created_at": record.created_at,
        "last_seen_at": record.last_seen_at,
        "authenticated_at": record.authenticated_at,
        "expires_at": record.expires_at,
        "client_ip": record.client_ip,
        "user_agent": record.user_agent,
    }
