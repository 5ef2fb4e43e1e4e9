"""What a command answers and how it is printed: exit codes, tables, times, counts."""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

EXIT_OK = 0
EXIT_NEGATIVE = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3


class UsageError(Exception):
    """A command line the CLI refuses (exit 2); raised by commands, printed by ``main``."""


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


def cell(value: object) -> str:
    """One table cell: times as UTC ISO, None as '-', and no terminal control characters
    (user agents and user ids come from outside)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ",".join(cell(v) for v in value) or "-"
    text = str(value)
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


def utc(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    try:
        return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):  # beyond datetime's range: say it as it is
        return str(timestamp)


def _format_table(table: Table) -> str:
    rows = [[cell(v) for v in row] for row in table.rows]
    lines = [list(table.headers), *rows] if table.headers else rows
    if not lines:
        return ""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def print_reply(reply: Reply, as_json: bool) -> None:
    if as_json:
        print(json.dumps(reply.data, indent=2))
        return
    text = _format_table(reply.text) if isinstance(reply.text, Table) else reply.text
    if text:
        print(text)
    if reply.note:
        print(reply.note, file=sys.stderr)


def count_of(count: int, adjective: str = "") -> str:
    """``1 session``, ``2 active sessions``: a count never stands alone in text output."""
    noun = "session" if count == 1 else "sessions"
    return " ".join(filter(None, [str(count), adjective, noun]))


def span(seconds: float) -> str:
    """A window as the CLI's durations are written (``15m``, ``2h``, ``90s``)."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def humanized(summary: Mapping[str, Any]) -> dict[str, Any]:
    """A record summary with its ``*_at`` times as UTC ISO, for text output."""
    return {k: utc(v) if k.endswith("_at") else v for k, v in summary.items()}


@contextmanager
def warnings_as_lines() -> Iterator[None]:
    """Warnings raised inside (unknown ``COATCHECK_*`` names) as one line each on stderr,
    like every other message of the CLI."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for warning in caught:
        print(f"coatcheck: warning: {warning.message}", file=sys.stderr)
