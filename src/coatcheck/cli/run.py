"""Parsing the command line, reading the settings, running one command, exit codes."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, NoReturn

from .._sync.manager import SessionManager
from ..config import Settings, parse_duration, read_settings
from ..config.settings import ABSOLUTE_LIFETIME, IDLE_TIMEOUT, STORE_URL, TOUCH_INTERVAL
from ..core.errors import CoatcheckError, ConfigError, StoreUnavailable
from ..core.records import KINDS
from ..stores import DEFAULT_URL, open_store
from .arguments import duration_arg as _duration_arg
from .arguments import positive_int as _positive_int
from .commands import COMMANDS
from .output import (
    EXIT_NEGATIVE,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    UsageError,
    print_reply,
    warnings_as_lines,
)
from .service_parser import SERVICE_GROUPS, add_service_commands

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
    add_service_commands(commands, common)
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
    with warnings_as_lines():
        settings = read_settings(given)
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
    name = " ".join(filter(None, [args.command, getattr(args, "verb", None)]))
    try:
        if args.command in SERVICE_GROUPS:  # imported here: they need coatcheck[service]
            from .service_run import run_serve, run_service_command

            if args.command == "serve":
                return run_serve(args)
            with _driver_logs_quiet():
                reply = run_service_command(args, name)
            print_reply(reply, as_json)
            return reply.code
        handler = COMMANDS[name]
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
    print_reply(reply, as_json)
    return reply.code
