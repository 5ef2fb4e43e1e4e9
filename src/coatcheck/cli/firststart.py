"""What the service needs on disk before it runs: the data directory, the SQLite database and
the secret file with the keys. The first ``coatcheck serve`` (or the first service command) in
an empty directory creates them and says so; later runs find them and say nothing."""

from __future__ import annotations

import asyncio
import os
from dataclasses import replace
from pathlib import Path

from ..core.errors import ConfigError
from ..service.data import open_service_data
from ..service.secretfile import create_secret_file, read_secret_file
from ..service.settings import ServiceSettings, default_store_url
from ..stores import open_store
from ..stores.sqlite.url import path_from_url

DATA_DIR_MODE = 0o700
DATABASE_MODE = 0o600


def prepare_first_start(
    settings: ServiceSettings,
) -> tuple[ServiceSettings, list[tuple[str, str]]]:
    """Create what is missing; returns the settings with the secret file's keys and, for each
    thing created, its path and what it is (empty when nothing was)."""
    created: list[tuple[str, str]] = []
    database = Path(path_from_url(settings.store_url)) if settings.embedded else None
    in_data_dir = [
        p for p in (database, settings.secret_file) if p and p.parent == settings.data_dir
    ]
    if in_data_dir and not settings.data_dir.exists():
        settings.data_dir.mkdir(mode=DATA_DIR_MODE, parents=True)
        created.append((f"{settings.data_dir}/", "data directory (mode 0700)"))
    library = settings.library
    both_keys_given = library.token_key is not None and library.log_key is not None
    if settings.secret_file is not None and not both_keys_given:
        if create_secret_file(settings.secret_file):
            created.append(
                (
                    str(settings.secret_file),
                    "token key and log key (mode 0600; keep it private, back it up with the "
                    "database)",
                )
            )
        secrets = read_secret_file(settings.secret_file)
        if secrets is None:  # removed between the two calls
            raise ConfigError(f"secret file {settings.secret_file} vanished while starting")
        library = replace(
            library,
            token_key=library.token_key or secrets.token_key,
            log_key=library.log_key or secrets.log_key,
        )
    if database is not None:
        made = _create_private_file(database)
        _migrate(settings.store_url)
        if made:
            created.append(
                (str(database), "SQLite database (sessions, API tokens, users, keys; mode 0600)")
            )
    return replace(settings, library=library), created


def _create_private_file(path: Path) -> bool:
    """Create ``path`` empty (an empty file is an empty SQLite database) with mode 0600,
    whatever the umask: it will hold password hashes and session digests, and SQLite gives
    its -wal and -shm files the database file's mode. True if this call created it; a file
    that exists keeps its mode (the owner chose it). A missing directory is left for the
    store to report."""
    if str(path) == ":memory:":
        return False
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, DATABASE_MODE)
    except (FileExistsError, FileNotFoundError):
        return False
    except OSError as exc:
        raise ConfigError(f"SQLite database {path} cannot be created: {exc.strerror}") from None
    try:
        os.fchmod(fd, DATABASE_MODE)  # the umask may have taken owner bits away
    finally:
        os.close(fd)
    return True


def _migrate(url: str) -> None:
    """The embedded store's tables, sessions and service data, made now so the file exists."""
    store = open_store(url)
    try:
        store.migrate()
    finally:
        store.close()

    async def migrate_data() -> None:
        data = open_service_data(url)
        try:
            await data.migrate()
        finally:
            await data.close()

    asyncio.run(migrate_data())


def next_steps(settings: ServiceSettings) -> list[tuple[str, str]]:
    """What to do after a first start: add a user (unless only the OpenID Provider's log
    in), make a service key."""
    options = _where(settings)
    steps = [
        ("add a user:", f"coatcheck users add NAME{options}  (asks for the password)"),
        ("a key for the API:", f"coatcheck service-keys create NAME --scope admin{options}"),
    ]
    return steps[1:] if settings.login == "oidc" else steps


def _where(settings: ServiceSettings) -> str:
    """The options the next commands need to find the same store (none for the defaults)."""
    if settings.config_file is not None:
        return f" --config {settings.config_file}"
    options = ""
    if settings.data_dir != ServiceSettings().data_dir:
        options += f" --data-dir {settings.data_dir}"
    if settings.store_url != default_store_url(settings.data_dir):
        options += f" --store {settings.store_url}"
    return options
