"""The operator command line: ``coatcheck migrate | sessions ... | purge | stats``.

Every command is one small function from ``(manager, args)`` to a :class:`Reply`; ``main``
parses, picks the function from :data:`COMMANDS`, prints the reply as JSON (``--json``) or as
text, and turns coatcheck errors into one-line messages and exit codes (see ``docs/cli.md``):

0 ok, 1 negative answer (token not active, nothing revoked), 2 usage or configuration error,
3 store unavailable.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

from ._sync.manager import SessionManager
from .config import Settings, parse_duration, read_settings
from .config.settings import ABSOLUTE_LIFETIME, IDLE_TIMEOUT, STORE_URL, TOUCH_INTERVAL
from .core.errors import CoatcheckError, ConfigError, InvalidSessionId, StoreUnavailable
from .core.policy import Verdict
from .core.records import KINDS
from .stores import DEFAULT_URL, open_store

EXIT_OK = 0
EXIT_NEGATIVE = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3

_UA_WIDTH = 40


class UsageError(Exception):
    """A command line the CLI refuses (exit 2); raised by commands, printed by ``main``."""


# --- output -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Table:
    """Rows of text cells; with no headers it is a key/value listing."""

    headers: Sequence[str]
    rows: Sequence[Sequence[object]]


@dataclass(frozen=True, slots=True)
class Reply:
    """What a command answers: ``data`` for ``--json``, ``text`` otherwise, and the exit code.

    ``note`` is a human remark for stderr, shown in text mode only.
    """

    data: Any
    text: Table | str
    code: int = EXIT_OK
    note: str | None = None


def _cell(value: object) -> str:
    """One table cell: times as UTC ISO, None as '-', and no terminal control characters
    (user agents and user ids come from outside)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ",".join(_cell(v) for v in value) or "-"
    text = str(value)
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


def _utc(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    try:
        return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):  # beyond datetime's range: say it as it is
        return str(timestamp)


def _format_table(table: Table) -> str:
    rows = [[_cell(v) for v in row] for row in table.rows]
    lines = [list(table.headers), *rows] if table.headers else rows
    if not lines:
        return ""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _print(reply: Reply, as_json: bool) -> None:
    if as_json:
        print(json.dumps(reply.data, indent=2))
        return
    text = _format_table(reply.text) if isinstance(reply.text, Table) else reply.text
    if text:
        print(text)
    if reply.note:
        print(reply.note, file=sys.stderr)


def _sessions(count: int, adjective: str = "") -> str:
    """``1 session``, ``2 active sessions``: a count never stands alone in text output."""
    noun = "session" if count == 1 else "sessions"
    return " ".join(filter(None, [str(count), adjective, noun]))


def _span(seconds: float) -> str:
    """A window as the CLI's durations are written (``15m``, ``2h``, ``90s``)."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _humanized(summary: Mapping[str, Any]) -> dict[str, Any]:
    """A record summary with its ``*_at`` times as UTC ISO, for text output."""
    return {k: _utc(v) if k.endswith("_at") else v for k, v in summary.items()}


# --- arguments ----------------------------------------------------------------------------------


def _duration_arg(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


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


def _redacted(url: str) -> str:
    """The store URL with any password masked, fit to print."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


# --- commands -----------------------------------------------------------------------------------


def _migrate(manager: SessionManager, args: argparse.Namespace) -> Reply:
    manager.store.migrate()
    store = _redacted(manager.store.url)
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
            ("revoked_at", _utc(tombstone.revoked_at)),
            ("revoked_until", _utc(tombstone.expires_at)),
        ]
    rows += list(_humanized(summary).items()) if summary else []
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
    for summary in map(_humanized, summaries):
        agent = _cell(summary["user_agent"])
        summary["user_agent"] = agent[: _UA_WIDTH - 1] + "…" if len(agent) > _UA_WIDTH else agent
        rows.append([summary[key] for key in _LIST_COLUMNS])
    return Reply(
        {"user_id": args.user, "sessions": summaries},
        Table(list(_LIST_COLUMNS.values()), rows),
        note=None if rows else f"coatcheck: no live sessions for user {_cell(args.user)}",
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
    text = f"{_sessions(count)} of user {_cell(args.user)} revoked"
    return Reply({"user_id": args.user, "revoked": count}, text)


def _revoke_all(manager: SessionManager, args: argparse.Namespace) -> Reply:
    if not args.yes:
        raise UsageError("revoke-all ends every session of every user; add --yes to confirm")
    count = manager.revoke_all()
    return Reply({"revoked": count}, f"{_sessions(count)} revoked")


def _purge(manager: SessionManager, args: argparse.Namespace) -> Reply:
    count = manager.purge(batch_size=args.batch_size)
    return Reply({"purged": count}, f"{_sessions(count, 'expired')} purged")


def _stats(manager: SessionManager, args: argparse.Namespace) -> Reply:
    since = manager.clock() - args.since
    count = manager.count_active(since)
    text = f"{_sessions(count, 'active')} in the last {_span(args.since)}"
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


# --- parser -------------------------------------------------------------------------------------


class _ArgumentError(Exception):
    """argparse refused the command line: ``prog`` is the (sub)command, ``args[0]`` why."""

    def __init__(self, prog: str, message: str) -> None:
        super().__init__(message)
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage dump), printed by ``main`` (text or JSON)."""

    def error(self, message: str) -> NoReturn:
        raise _ArgumentError(self.prog, f"{message} (see: {self.prog} --help)")


def _global_options() -> argparse.ArgumentParser:
    """Options valid before or after any subcommand (SUPPRESS: absent means "not given")."""
    common = _Parser(add_help=False)
    opt = common.add_argument_group("global options")
    opt.add_argument(
        "--store",
        metavar="URL",
        default=argparse.SUPPRESS,
        help=f"store URL (env {STORE_URL}, default {DEFAULT_URL})",
    )
    opt.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    opt.add_argument(
        "--idle-timeout",
        metavar="DURATION",
        type=_duration_arg,
        default=argparse.SUPPRESS,
        help=f"policy idle timeout, e.g. 30m (env {IDLE_TIMEOUT}, default 30m)",
    )
    opt.add_argument(
        "--absolute-lifetime",
        metavar="DURATION",
        type=_duration_arg,
        default=argparse.SUPPRESS,
        help=f"policy absolute lifetime, e.g. 12h (env {ABSOLUTE_LIFETIME}, default 12h)",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _global_options()
    parser = _Parser(
        prog="coatcheck",
        description="Operate coatcheck session stores.",
        parents=[common],
        epilog="Exit codes: 0 ok, 1 negative answer, 2 usage/config error, 3 store unavailable.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(group: Any, name: str, text: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = group.add_parser(
            name, parents=[common], help=text, description=text
        )
        return sub

    add(commands, "migrate", "create the store's tables and indexes")
    sessions = add(commands, "sessions", "create, check, list and revoke sessions")
    verbs = sessions.add_subparsers(dest="verb", metavar="VERB", required=True)

    create = add(verbs, "create", "create a session and print its token once")
    create.add_argument("--user", required=True, metavar="ID")
    create.add_argument("--kind", choices=KINDS, default="browser")

    from_stdin = "the token, or - to read it from stdin (recommended: keeps it out of argv)"
    check = add(verbs, "check", "is a token a live session? exit 0 if so, 1 if not")
    check.add_argument("token", metavar="TOKEN", help=from_stdin)
    listing = add(verbs, "list", "a user's live sessions")
    listing.add_argument("--user", required=True, metavar="ID")
    revoke = add(
        verbs, "revoke", "end the session of a token or of an id; exit 1 if there was none"
    )
    revoke.add_argument("token", metavar="TOKEN", nargs="?", help=from_stdin)
    revoke.add_argument(
        "--id", metavar="ID", help="the session id that sessions list shows, instead of a token"
    )
    revoke.add_argument(
        "--user", metavar="USER", help="with --id: end it only if it is this user's session"
    )
    revoke_user = add(verbs, "revoke-user", "end every session of one user")
    revoke_user.add_argument("user", metavar="ID")
    revoke_all = add(verbs, "revoke-all", "end every session of every user (incident)")
    revoke_all.add_argument("--yes", action="store_true", help="confirm")

    purge = add(commands, "purge", "delete expired sessions")
    purge.add_argument("--batch-size", type=_positive_int, default=1000, metavar="N")
    stats = add(commands, "stats", "count sessions active within a recent window")
    stats.add_argument(
        "--since", type=_duration_arg, default=parse_duration("15m"), metavar="DURATION"
    )
    return parser


# --- main ---------------------------------------------------------------------------------------


def _settings(args: argparse.Namespace) -> Settings:
    """The environment's ``COATCHECK_*`` settings (the deployment's, read as every adapter
    reads them), with the command line's options over them. Unknown names are warned about
    in one line each, like every other message of the CLI."""
    given: dict[str, object] = {k: v for k, v in os.environ.items() if k != TOUCH_INTERVAL}
    for name, option in (
        (STORE_URL, "store"),
        (IDLE_TIMEOUT, "idle_timeout"),
        (ABSOLUTE_LIFETIME, "absolute_lifetime"),
    ):
        if getattr(args, option, None):
            given[name] = getattr(args, option)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        settings = read_settings(given)
    for warning in caught:
        print(f"coatcheck: warning: {warning.message}", file=sys.stderr)
    # Operators' look-ups come from no client, so binding to one would refuse every session;
    # and the CLI never touches a session, so the touch interval is not read (above).
    return replace(settings, policy=replace(settings.policy, bind_ip=False))


def _fail(code: int, kind: str, message: str, as_json: bool, where: str = "coatcheck") -> int:
    """One line on stderr; with ``--json`` also ``{"error": kind, "message": ...}`` on stdout
    (a program reading stdout must not get plain text, nor nothing, when a command fails)."""
    message = " ".join(message.split())
    label = {"usage": "error", "config": "error", "unavailable": "store unavailable"}.get(kind)
    print(f"{where}: {label}: {message}" if label else f"{where}: {message}", file=sys.stderr)
    if as_json:
        print(json.dumps({"error": kind, "message": message, "exit_code": code}, indent=2))
    return code


@contextmanager
def _driver_logs_quiet() -> Iterator[None]:
    """psycopg_pool logs each failed connection attempt as a warning; the store's error says
    the same in its one line, so while a command runs those records go nowhere."""
    pool_log = logging.getLogger("psycopg.pool")
    handler, propagate = logging.NullHandler(), pool_log.propagate
    pool_log.addHandler(handler)
    pool_log.propagate = False
    try:
        yield
    finally:
        pool_log.propagate = propagate
        pool_log.removeHandler(handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (the console script passes it to ``sys.exit``)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    as_json = "--json" in argv  # a refused command line is answered in JSON too
    try:
        args = build_parser().parse_args(argv)
    except _ArgumentError as exc:
        return _fail(EXIT_USAGE, "usage", str(exc), as_json, where=exc.prog)
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    as_json = getattr(args, "json", False)
    handler = COMMANDS[" ".join(filter(None, [args.command, getattr(args, "verb", None)]))]
    try:
        settings = _settings(args)
        with _driver_logs_quiet():
            manager = SessionManager(
                open_store(settings.store_url or DEFAULT_URL),
                settings.policy,
                log_key=settings.log_key,
                token_key=settings.token_key,
            )
            try:
                reply = handler(manager, args)
            finally:
                manager.close()
    except UsageError as exc:
        return _fail(EXIT_USAGE, "usage", str(exc), as_json)
    except ConfigError as exc:
        return _fail(EXIT_USAGE, "config", str(exc), as_json)
    except StoreUnavailable as exc:
        return _fail(EXIT_UNAVAILABLE, "unavailable", str(exc), as_json)
    except CoatcheckError as exc:
        return _fail(EXIT_NEGATIVE, "refused", f"{type(exc).__name__}: {exc}", as_json)
    except KeyboardInterrupt:
        return _fail(130, "interrupted", "interrupted", as_json)
    _print(reply, as_json)
    return reply.code
