"""The commands: each one small function from ``(manager, args)`` to a :class:`Reply`."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .._sync.manager import SessionManager
from ..core.errors import InvalidSessionId
from ..core.policy import Verdict
from .output import (
    EXIT_NEGATIVE,
    EXIT_OK,
    Reply,
    Table,
    UsageError,
    cell,
    count_of,
    humanized,
    span,
    utc,
)

_UA_WIDTH = 40


def _read_token(value: str) -> str:
    """The token argument, or with ``-`` the token read from stdin (kept out of argv)."""
    if value != "-":
        return value
    if sys.stdin is None:
        raise UsageError("token '-' means read it from stdin, but there is no stdin")
    token = getpass.getpass("token: ") if sys.stdin.isatty() else sys.stdin.readline()
    token = token.strip()
    if not token:
        raise UsageError("token '-' means read it from stdin, but stdin held no token")
    return token


def redacted(url: str) -> str:
    """The store URL with any password masked, fit to print."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


# --- commands -----------------------------------------------------------------------------------


def _migrate(manager: SessionManager, args: argparse.Namespace) -> Reply:
    manager.store.migrate()
    store = redacted(manager.store.url)
    return Reply({"migrated": True, "store": store}, f"store ready: {store}")


def _create(manager: SessionManager, args: argparse.Namespace) -> Reply:
    token, record = manager.create(args.user, kind=args.kind)
    return Reply(
        {"token": token, "session": record.summary()},
        token,
        note="coatcheck: this token is shown once and cannot be shown again; store it now.",
    )


def _check(manager: SessionManager, args: argparse.Namespace) -> Reply:
    token = _read_token(args.token)
    verdict, record = manager.inspect(token, delete_expired=False)
    active = verdict is Verdict.VALID
    summary = record.summary() if record is not None else None
    rows: list[tuple[str, object]] = [("active", active), ("reason", verdict.value)]
    reply: dict[str, Any] = {"active": active, "reason": verdict.value, "session": summary}
    tombstone = manager.revocation(token) if verdict is Verdict.REVOKED else None
    if tombstone is not None:  # why it was revoked (None only if it expired just now)
        reply["revocation"] = {
            "reason": tombstone.reason,
            "revoked_at": tombstone.revoked_at,
            "expires_at": tombstone.expires_at,
        }
        rows += [
            ("revoked", tombstone.reason),
            ("revoked_at", utc(tombstone.revoked_at)),
            ("revoked_until", utc(tombstone.expires_at)),
        ]
    rows += list(humanized(summary).items()) if summary else []
    return Reply(reply, Table((), rows), EXIT_OK if active else EXIT_NEGATIVE)


_LIST_COLUMNS = {
    "id": "ID",
    "kind": "KIND",
    "created_at": "CREATED",
    "last_seen_at": "LAST SEEN",
    "expires_at": "EXPIRES",
    "client_ip": "IP",
    "user_agent": "USER AGENT",
}


def _list(manager: SessionManager, args: argparse.Namespace) -> Reply:
    summaries = [r.summary() for r in manager.list_user(args.user)]
    rows = []
    for summary in map(humanized, summaries):
        agent = cell(summary["user_agent"])
        summary["user_agent"] = agent[: _UA_WIDTH - 1] + "…" if len(agent) > _UA_WIDTH else agent
        rows.append([summary[key] for key in _LIST_COLUMNS])
    return Reply(
        {"user_id": args.user, "sessions": summaries},
        Table(list(_LIST_COLUMNS.values()), rows),
        note=None if rows else f"coatcheck: no live sessions for user {cell(args.user)}",
    )


def _revoke(manager: SessionManager, args: argparse.Namespace) -> Reply:
    if (args.token is None) == (args.id is None):
        raise UsageError("sessions revoke takes a TOKEN or --id ID (the id sessions list shows)")
    if args.user is not None and args.id is None:
        raise UsageError("--user goes with --id: a token names its session already")
    if args.id is not None:
        try:
            ended = manager.revoke_session(args.id, user_id=args.user, reason="cli")
        except InvalidSessionId as exc:
            raise UsageError(str(exc)) from None
    else:
        ended = manager.revoke(_read_token(args.token), reason="cli")
    return Reply(
        {"revoked": ended},
        "revoked" if ended else "no such session",
        EXIT_OK if ended else EXIT_NEGATIVE,
    )


def _revoke_user(manager: SessionManager, args: argparse.Namespace) -> Reply:
    count = manager.revoke_user(args.user, reason="cli")
    text = f"{count_of(count)} of user {cell(args.user)} revoked"
    return Reply({"user_id": args.user, "revoked": count}, text)


def _revoke_all(manager: SessionManager, args: argparse.Namespace) -> Reply:
    if not args.yes:
        raise UsageError("revoke-all ends every session of every user; add --yes to confirm")
    count = manager.revoke_all()
    return Reply({"revoked": count}, f"{count_of(count)} revoked")


def _purge(manager: SessionManager, args: argparse.Namespace) -> Reply:
    count = manager.purge(batch_size=args.batch_size)
    return Reply({"purged": count}, f"{count_of(count, 'expired')} purged")


def _stats(manager: SessionManager, args: argparse.Namespace) -> Reply:
    since = manager.clock() - args.since
    count = manager.count_active(since)
    text = f"{count_of(count, 'active')} in the last {span(args.since)}"
    return Reply({"active": count, "since": since, "window_seconds": args.since}, text)


Handler = Callable[[SessionManager, argparse.Namespace], Reply]

COMMANDS: dict[str, Handler] = {
    "migrate": _migrate,
    "sessions create": _create,
    "sessions check": _check,
    "sessions list": _list,
    "sessions revoke": _revoke,
    "sessions revoke-user": _revoke_user,
    "sessions revoke-all": _revoke_all,
    "purge": _purge,
    "stats": _stats,
}
