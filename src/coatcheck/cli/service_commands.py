"""The service's administration commands: ``users``, ``service-keys`` and ``tokens``.

Each one small async function from ``(context, args)`` to a :class:`Reply`, over the same
:class:`~coatcheck.service.context.ServiceContext` the running service uses, so a user disabled
here loses every session and API token at once and every revocation is announced on the
service's event stream. Passwords are read from a prompt or stdin, never from argv.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from ..core.errors import InvalidSessionId
from ..service.actions import end_user, revoke_api_token
from ..service.context import ServiceContext
from ..service.users import UserError, check_new_password
from .output import EXIT_NEGATIVE, EXIT_OK, Reply, Table, UsageError, cell, humanized


def read_password(stdin: Any = None) -> str:
    """The new password: typed twice at a prompt on a terminal, else the first line of stdin
    (so ``printf '%s\\n' "$pw" | coatcheck users add alice`` works in scripts)."""
    stdin = sys.stdin if stdin is None else stdin
    if stdin is None:
        raise UsageError("users add reads the password from a prompt or stdin, and there is none")
    if stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("password (again): ") != password:
            raise UsageError("the two passwords differ; nothing was changed")
    else:
        password = stdin.readline().removesuffix("\n").removesuffix("\r")
    try:
        return check_new_password(password)
    except UserError as exc:
        raise UsageError(f"{exc}; nothing was changed") from None


# --- users ---------------------------------------------------------------------------------------


async def _users_add(ctx: ServiceContext, args: argparse.Namespace) -> Reply:
    password = read_password()
    user = await ctx.users.add(args.name, password)
    return Reply(
        {"user": user.name, "created_at": user.created_at, "disabled": user.disabled},
        f"user {user.name} added",
    )


async def _users_list(ctx: ServiceContext, args: argparse.Namespace) -> Reply:
    users = [
        {"user": u.name, "created_at": u.created_at, "disabled": u.disabled}
        for u in await ctx.users.list()
    ]
    rows = [[u["user"], humanized(u)["created_at"], u["disabled"]] for u in users]
    return Reply(
        {"users": users},
        Table(["NAME", "CREATED", "DISABLED"], rows),
        note=None if rows else "coatcheck: no users yet; add one with: coatcheck users add NAME",
    )


async def _users_disable(ctx: ServiceContext, args: argparse.Namespace) -> Reply:
    if not await ctx.users.set_disabled(args.name, True):
        return _no_user(args.name)
    ended = await end_user(ctx, args.name, reason="user disabled")
    return Reply(
        {"user": args.name, "disabled": True, "ended": ended},
        f"user {args.name} disabled; {_ended(ended)}",
    )


async def _users_enable(ctx: ServiceContext, args: argparse.Namespace) -> Reply:
    if not await ctx.users.set_disabled(args.name, False):
        return _no_user(args.name)
    return Reply({"user": args.name, "disabled": False}, f"user {args.name} enabled")


async def _users_delete(ctx: ServiceContext, args: argparse.Namespace) -> Reply:
    if not await ctx.users.delete(args.name):
        return _no_user(args.name)
    ended = await end_user(ctx, args.name, reason="user deleted")
    return Reply(
        {"user": args.name, "deleted": True, "ended": ended},
        f"user {args.name} deleted; {_ended(ended)}",
    )


def _no_user(name: str) -> Reply:
    return Reply({"user": name, "found": False}, f"no user {cell(name)}", EXIT_NEGATIVE)


def _ended(count: int) -> str:
    noun = "session or API token" if count == 1 else "sessions and API tokens"
    return f"{count} {noun} ended"


# --- service keys --------------------------------------------------------------------------------


async def _keys_create(ctx: ServiceContext, args: argparse.Namespace) -> Reply:
    key, info = await ctx.service_keys.create(args.name, args.scope)
    return Reply(
        {"key": key, **info.summary()},
        key,
        note="coatcheck: this service key is shown once and cannot be shown again; store it "
        "now. Send it as: Authorization: Bearer <key>",
    )


async def _keys_list(ctx: ServiceContext, args: argparse.Namespace) -> Reply:
    keys = [info.summary() for info in await ctx.service_keys.list()]
    headers = ["ID", "NAME", "SCOPE", "CREATED", "REVOKED"]
    rows = [[h["id"], h["name"], h["scope"], h["created_at"], h["revoked_at"]]
            for h in map(humanized, keys)]  # fmt: skip
    return Reply({"service_keys": keys}, Table(headers, rows))


async def _keys_revoke(ctx: ServiceContext, args: argparse.Namespace) -> Reply:
    revoked = await ctx.service_keys.revoke(args.key)
    return Reply(
        {"revoked": revoked},
        "revoked" if revoked else f"no live service key named {cell(args.key)}",
        EXIT_OK if revoked else EXIT_NEGATIVE,
    )


# --- API tokens ----------------------------------------------------------------------------------


async def _tokens_create(ctx: ServiceContext, args: argparse.Namespace) -> Reply:
    token, info = await ctx.tokens.create(
        args.user, args.name, scopes=tuple(args.scope or ()), expires_in=args.expires
    )
    return Reply(
        {"token": token, **info.summary()},
        token,
        note="coatcheck: this API token is shown once and cannot be shown again; store it now.",
    )


async def _tokens_list(ctx: ServiceContext, args: argparse.Namespace) -> Reply:
    tokens = [info.summary() for info in await ctx.tokens.list_user(args.user)]
    headers = ["ID", "NAME", "SCOPES", "CREATED", "EXPIRES", "LAST USED"]
    rows = [
        [t.get("id"), t.get("name"), t.get("scopes"), t.get("created_at"), t.get("expires_at"),
         t.get("last_used_at")]
        for t in map(humanized, tokens)
    ]  # fmt: skip
    return Reply(
        {"user_id": args.user, "tokens": tokens},
        Table(headers, rows),
        note=None if rows else f"coatcheck: no API tokens for user {cell(args.user)}",
    )


async def _tokens_revoke(ctx: ServiceContext, args: argparse.Namespace) -> Reply:
    try:
        revoked = await revoke_api_token(ctx, args.id)
    except InvalidSessionId as exc:
        raise UsageError(str(exc)) from None
    return Reply(
        {"revoked": revoked},
        "revoked" if revoked else "no such API token",
        EXIT_OK if revoked else EXIT_NEGATIVE,
    )


ServiceHandler = Callable[[ServiceContext, argparse.Namespace], Awaitable[Reply]]

SERVICE_COMMANDS: dict[str, ServiceHandler] = {
    "users add": _users_add,
    "users list": _users_list,
    "users disable": _users_disable,
    "users enable": _users_enable,
    "users delete": _users_delete,
    "service-keys create": _keys_create,
    "service-keys list": _keys_list,
    "service-keys revoke": _keys_revoke,
    "tokens create": _tokens_create,
    "tokens list": _tokens_list,
    "tokens revoke": _tokens_revoke,
}
