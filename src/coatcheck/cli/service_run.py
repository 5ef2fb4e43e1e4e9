"""Running ``coatcheck serve`` and the service's commands: their settings, the first start, the
context. Errors are raised for :func:`coatcheck.cli.run.main` to print as one line."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import TextIO

from ..apitokens import ApiTokenError
from ..config.settings import ABSOLUTE_LIFETIME, IDLE_TIMEOUT
from ..core.errors import ConfigError
from ..service.context import ServiceContext
from ..service.keys import ServiceKeyError
from ..service.settings import ServiceSettings, load_service_settings
from ..service.users import UserError
from .commands import redacted
from .firststart import next_steps, prepare_first_start
from .output import Reply, UsageError, warnings_as_lines
from .service_commands import SERVICE_COMMANDS

_OVERRIDES = {
    "store": "store_url",
    "host": "host",
    "port": "port",
    "data_dir": "data_dir",
    "secret_file": "secret_file",
    "testing": "testing",
    "signup": "signup",
    "login": "login",
}


def service_settings(args: argparse.Namespace) -> ServiceSettings:
    """The settings ``serve`` would run with, given this command line and environment."""
    overrides = {field: getattr(args, dest) for dest, field in _OVERRIDES.items() if dest in args}
    environ = dict(os.environ)
    for name, option in ((IDLE_TIMEOUT, "idle_timeout"), (ABSOLUTE_LIFETIME, "absolute_lifetime")):
        if option in args:
            environ[name] = str(getattr(args, option))
    config = Path(args.config) if "config" in args else None
    with warnings_as_lines():
        return load_service_settings(config, environ, overrides)


def _prepared(args: argparse.Namespace, out: TextIO) -> ServiceSettings:
    """The settings after the first start's files exist; what was created goes to ``out``."""
    settings, created = prepare_first_start(service_settings(args))
    if created:
        print("coatcheck: first start, created:", file=out)
        width = max(len(path) for path, _ in created)
        for path, what in created:
            print(f"  {path.ljust(width)}  {what}", file=out)
        steps = next_steps(settings)
        width = max(len(what) for what, _ in steps)
        for what, command in steps:
            print(f"coatcheck: {what.ljust(width)}  {command}", file=out)
    return settings


def run_service_command(args: argparse.Namespace, name: str) -> Reply:
    """One of :data:`SERVICE_COMMANDS` on the service's store; creation lines go to stderr."""
    settings = _prepared(args, sys.stderr)
    handler = SERVICE_COMMANDS[name]

    async def run() -> Reply:
        ctx = ServiceContext.build(settings)
        try:
            await ctx.data.migrate()
            return await handler(ctx, args)
        finally:
            await ctx.close()

    try:
        return asyncio.run(run())
    except (UserError, ServiceKeyError, ApiTokenError) as exc:  # a refused name or value
        raise UsageError(str(exc)) from None


TESTING_WARNING = """\
coatcheck: !!! TESTING MODE: GET /autosession?user=NAME logs anyone on this machine in as one of
coatcheck: !!! the test users ({users}) without a password. Never run this in production.\
"""


def run_serve(args: argparse.Namespace) -> int:
    """``coatcheck serve``: first start, what it serves, then uvicorn until stopped."""
    settings = _prepared(args, sys.stdout)
    try:
        import uvicorn

        from ..service import heap
        from ..service.app import create_app
    except ImportError as exc:
        raise ConfigError(f"coatcheck serve: pip install 'coatcheck[service]' ({exc})") from None
    if settings.testing:
        print(TESTING_WARNING.format(users=", ".join(settings.test_users)), file=sys.stderr)
    address = f"http://{settings.host}:{settings.port}"
    if settings.development_cookies:
        print(
            f"coatcheck: plain http on loopback: {address} gets the development cookie "
            "('session', no Secure); behind TLS set public_url = \"https://...\" for the secure "
            "__Host- cookie"
        )
    if settings.oidc_login:
        print(oidc_line(settings, address))
    print(f"coatcheck: serving {address} on {redacted(settings.store_url)}", flush=True)
    app = create_app(settings)
    heap.settle()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        proxy_headers=False,  # coatcheck's trusted_proxies decides who may forward
        server_header=False,
        log_level="info",
    )
    return 0


def oidc_line(settings: ServiceSettings, address: str) -> str:
    """Where people log in, and the three addresses to register at the provider."""
    oidc = settings.oidc
    assert oidc is not None
    base = oidc.base_url or address
    return (
        f"coatcheck: login = {settings.login} through the OpenID Provider {oidc.issuer}; "
        f"register there: redirect URI {base}{oidc.callback_path}, post-logout redirect URI "
        f"{base}{oidc.logged_out_path}, back-channel logout URI "
        f"{base}{oidc.backchannel_logout_path}"
    )
