"""The command line of ``coatcheck serve`` and of the service's administration commands."""

from __future__ import annotations

import argparse
from typing import Any

from ..service.keys import SCOPES
from ..service.settings import CONFIG_FILE_ENV, LOGIN_CHOICES, SETTINGS
from .arguments import duration_arg

SERVICE_GROUPS = frozenset({"serve", "users", "service-keys", "tokens"})
"""The commands that read the service's settings and run on its context."""


def _env(name: str) -> str:
    return SETTINGS[name][0]


def _service_options() -> argparse.ArgumentParser:
    """Where the service's store and keys are: the same for ``serve`` and every command."""
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("service options")
    group.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help=f"TOML config file: [service], [sessions], [oidc] tables (env {CONFIG_FILE_ENV})",
    )
    group.add_argument(
        "--data-dir",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help=f"where the SQLite database and secret file live (env {_env('data_dir')}, "
        "default coatcheck-data)",
    )
    group.add_argument(
        "--secret-file",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help=f"the token key and log key (env {_env('secret_file')}, default "
        "DIR/secret.toml with the SQLite store, none with a shared store)",
    )
    return options


def add_service_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """``serve``, ``users``, ``service-keys`` and ``tokens`` under ``commands``."""
    service = _service_options()

    def add(group: Any, name: str, text: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = group.add_parser(
            name, parents=[common, service], help=text, description=text
        )
        return sub

    serve = add(commands, "serve", "run the session service (JSON API and pages)")
    serve.add_argument(
        "--host", default=argparse.SUPPRESS, help=f"(env {_env('host')}, default 127.0.0.1)"
    )
    serve.add_argument(
        "--port", default=argparse.SUPPRESS, help=f"(env {_env('port')}, default 8000)"
    )
    serve.add_argument(
        "--testing",
        action="store_true",
        default=argparse.SUPPRESS,
        help=f"open the autosession test door, loopback only; never in production "
        f"(env {_env('testing')})",
    )
    serve.add_argument(
        "--login",
        choices=LOGIN_CHOICES,
        default=argparse.SUPPRESS,
        help=f"who logs in on the pages: local users, the OpenID Provider's ([oidc], "
        f"COATCHECK_OIDC_*) or both (env {_env('login')}, default local)",
    )
    serve.add_argument(
        "--signup",
        action="store_true",
        default=argparse.SUPPRESS,
        help=f"let people create their own account on /signup (env {_env('signup')})",
    )

    users = add(commands, "users", "add, list, disable, enable and delete local users")
    verbs = users.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb, text in (
        ("add", "add a user; the password comes from a prompt (twice) or stdin"),
        ("disable", "refuse the user's logins and end all their sessions and API tokens"),
        ("enable", "allow a disabled user to log in again"),
        ("delete", "delete the user and end all their sessions and API tokens"),
    ):
        add(verbs, verb, text).add_argument("name", metavar="NAME")
    add(verbs, "list", "every local user")

    keys = add(commands, "service-keys", "create, list and revoke the API's service keys")
    verbs = keys.add_subparsers(dest="verb", metavar="VERB", required=True)
    create = add(verbs, "create", "create a service key and print it once")
    create.add_argument("name", metavar="NAME")
    create.add_argument(
        "--scope",
        choices=SCOPES,
        default="introspect",
        help="introspect: introspect, refresh, events; admin: every call (default introspect)",
    )
    add(verbs, "list", "every service key, revoked ones too")
    add(verbs, "revoke", "revoke a service key").add_argument("key", metavar="NAME|ID")

    tokens = add(commands, "tokens", "create, list and revoke users' API tokens")
    verbs = tokens.add_subparsers(dest="verb", metavar="VERB", required=True)
    create = add(verbs, "create", "create an API token for a user and print it once")
    create.add_argument("--user", required=True, metavar="ID")
    create.add_argument("--name", required=True, metavar="NAME")
    create.add_argument(
        "--scope", action="append", metavar="SCOPE", help="a scope; repeat for several"
    )
    create.add_argument(
        "--expires", type=duration_arg, metavar="DURATION", help="e.g. 30d (default: never)"
    )
    add(verbs, "list", "a user's API tokens").add_argument("--user", required=True, metavar="ID")
    add(verbs, "revoke", "revoke an API token by its id").add_argument("id", metavar="ID")
