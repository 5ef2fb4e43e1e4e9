"""The secret file: the token key and log key of an embedded service, kept out of the database.

``coatcheck-data/secret.toml`` (mode 0600) holds both keys as URL-safe base64. The SQLite
database keeps only token digests, and with the token key elsewhere a copy of the database
alone cannot even tell which user a token's shard belongs to. A file readable by others is
refused, not used: it would hand the token key to every account on the machine.
"""

from __future__ import annotations

import base64
import os
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import ConfigError
from ..core.tokens import decode_token_key, new_token_key

SECRET_FILE_NAME = "secret.toml"  # noqa: S105  # a file name, not a secret
FILE_MODE = 0o600

_HEADER = (
    "# coatcheck service keys, generated on first start. Keep this file private (mode 0600)\n"
    "# and back it up with the database: without the token key no session or API token in\n"
    "# the store can be read. Every process on the same store must use the same keys.\n"
)


@dataclass(frozen=True, slots=True)
class Secrets:
    """The two keys, raw bytes (never in the ``repr``)."""

    token_key: bytes = field(repr=False)
    log_key: bytes = field(repr=False)


def _text(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode().rstrip("=")


def read_secret_file(path: Path | None) -> Secrets | None:
    """The keys in ``path``; None when there is no such file (yet). A file that others may
    read, that is not a regular file or that does not hold both keys raises ConfigError."""
    if path is None:
        return None
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"secret file {path} cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"secret file {path} is not a regular file")
    refuse_if_shared("secret file", path, info, "it holds the token key")
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"secret file {path} cannot be read: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        raise ConfigError(f"secret file {path} is not valid TOML") from None  # no excerpt: secret
    unknown = sorted(document.keys() - {"token_key", "log_key"})
    if unknown:
        raise ConfigError(f"secret file {path}: unknown key {unknown[0]!r}")
    keys: list[bytes] = []
    for name in ("token_key", "log_key"):
        if name not in document:
            raise ConfigError(f"secret file {path} lacks {name}")
        keys.append(decode_token_key(document[name], f"secret file {path}: {name}"))
    return Secrets(token_key=keys[0], log_key=keys[1])


def refuse_if_shared(
    what: str, path: Path, info: os.stat_result, holds: str, instead: str = ""
) -> None:
    """A ConfigError when the file at ``path`` (``info``: its stat) may be read by its group
    or others: ``{what} {path} has permissions 0644, wider than 0600: {holds}, so other
    users must not read it; run: chmod 600 {path}`` and ``instead``, another way out."""
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise ConfigError(
            f"{what} {path} has permissions {mode:04o}, wider than 0600: {holds}, so other "
            f"users must not read it; run: chmod 600 {path}{instead}"
        )


def create_secret_file(path: Path) -> bool:
    """Write fresh keys to ``path`` if it does not exist; True if this call created it.

    The keys go to a temporary file opened with ``O_CREAT | O_EXCL`` and mode 0600, which is
    then hard-linked to ``path``: the file never exists with wider permissions nor half
    written, and of two processes starting at once exactly one creates it (the other reads
    what the first wrote).
    """
    if path.exists():
        return False
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{new_token_key().hex()[:8]}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(temporary, flags, FILE_MODE)
    except OSError as exc:
        raise ConfigError(f"secret file {path} cannot be created: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(
                f'{_HEADER}token_key = "{_text(new_token_key())}"\n'
                f'log_key = "{_text(new_token_key())}"\n'
            )
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temporary, path)
    except FileExistsError:
        return False
    except OSError as exc:
        raise ConfigError(f"secret file {path} cannot be created: {exc.strerror}") from None
    finally:
        temporary.unlink(missing_ok=True)
    return True
