"""The operator command line: ``coatcheck migrate | sessions ... | purge | stats``.

Every command is one small function from ``(manager, args)`` to a :class:`Reply`; ``main``
parses, picks the function from :data:`COMMANDS`, prints the reply as JSON (``--json``) or as
text, and turns coatcheck errors into one-line messages and exit codes (see ``docs/cli.md``):

0 ok, 1 negative answer (token not active, nothing revoked), 2 usage or configuration error,
3 store unavailable.
"""

from __future__ import annotations

from ..config import parse_duration
from .commands import COMMANDS
from .output import EXIT_NEGATIVE, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE, Reply, Table, UsageError
from .run import build_parser, main

__all__ = [
    "COMMANDS",
    "EXIT_NEGATIVE",
    "EXIT_OK",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "Reply",
    "Table",
    "UsageError",
    "build_parser",
    "main",
    "parse_duration",
]
