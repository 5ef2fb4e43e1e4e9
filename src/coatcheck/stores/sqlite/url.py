"""A ``sqlite:///`` store URL -> the database file's path (or ConfigError)."""

from __future__ import annotations

from ...core.errors import ConfigError


def path_from_url(url: str) -> str:
    """``sqlite:///relative.db`` or ``sqlite:////abs/path.db`` (SQLAlchemy's convention)."""
    if not url.startswith("sqlite:///"):
        raise ConfigError(f"SQLite store URL must look like sqlite:///path/to/file.db, got {url!r}")
    path = url[len("sqlite:///") :].split("?", 1)[0]
    if not path:
        raise ConfigError(f"SQLite store URL {url!r} names no file")
    return path
