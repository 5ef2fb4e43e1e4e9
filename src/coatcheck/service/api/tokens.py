"""``/v1/tokens`` and ``/v1/users/{user_id}/tokens``: API tokens for a user's scripts and
systems, created (the token shown once), listed and revoked."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from .. import actions
from .auth import admin_scope
from .body import body_schema, json_body
from .models import CreateToken, Revoked, TokenCreated, TokenList
from .problems import Problem
from .replies import admin_problems, reply
from .sessions import UserIdPath
from .state import context_of

router = APIRouter(prefix="/v1", tags=["api tokens"], dependencies=[Depends(admin_scope)])


@router.post(
    "/tokens",
    status_code=201,
    response_model=TokenCreated,
    responses=admin_problems(),
    openapi_extra=body_schema(CreateToken),
    summary="Create an API token for a user; the token is returned once",
)
async def create_token(
    request: Request, body: Annotated[CreateToken, Depends(json_body(CreateToken))]
) -> JSONResponse:
    token, info = await context_of(request).tokens.create(
        body.user_id, body.name, scopes=body.scopes, expires_in=body.expires_in
    )
    summary = info.summary()
    del summary["last_used_at"]
    return reply({"token": token, **summary}, 201)


@router.get(
    "/users/{user_id:path}/tokens",
    response_model=TokenList,
    responses=admin_problems(),
    summary="A user's live API tokens (never the tokens themselves)",
)
async def list_tokens(request: Request, user_id: UserIdPath) -> JSONResponse:
    infos = await context_of(request).tokens.list_user(user_id)
    return reply({"tokens": [info.summary() for info in infos]})


@router.delete(
    "/tokens/{token_id}",
    response_model=Revoked,
    responses=admin_problems("invalid-session-id", "not-found"),
    summary="Revoke the API token with this id",
)
async def revoke_token(request: Request, token_id: str) -> JSONResponse:
    if not await actions.revoke_api_token(context_of(request), token_id):
        raise Problem("not-found", "There is no live API token with this id.")
    return reply({"revoked": True})
