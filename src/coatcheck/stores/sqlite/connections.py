"""Connections to one SQLite file, one per thread, set up alike for every SQLite-backed part
(the session store and the service's own data share the file).

Each connection runs in autocommit mode (``isolation_level=None``: transactions are explicit),
with ``busy_timeout`` (wait for another writer instead of failing at once), WAL (readers run
beside one writer) and ``synchronous=NORMAL`` (a write costs a WAL append, not a disk flush).
``check_same_thread`` is off only so that :meth:`ThreadConnections.close` can reach every
thread's connection. The file is created on first use, in a directory that must exist.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ...core.errors import ConfigError, StoreUnavailable

DEFAULT_BUSY_TIMEOUT_MS = 5000


def connect(path: str, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> sqlite3.Connection:
    """A new connection to ``path``: ConfigError if its directory is missing,
    StoreUnavailable if SQLite cannot open it."""
    folder = Path(path).parent
    if path != ":memory:" and not folder.is_dir():
        # Never created: a typo in the path would otherwise grow a directory tree.
        raise ConfigError(
            f"SQLite store {path!r}: directory {str(folder)!r} does not exist; "
            "create it first (the file itself is created on first use)"
        )
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        _use_wal(conn, busy_timeout_ms / 1000)
        conn.execute("PRAGMA synchronous = NORMAL")
    except (sqlite3.Error, OSError) as exc:
        raise StoreUnavailable(f"cannot open SQLite store {path!r}: {exc}") from exc
    return conn


def _use_wal(conn: sqlite3.Connection, patience: float) -> None:
    """Switch the file to WAL (a no-op once it is: the mode is kept in the file).

    The switch needs the file to itself, and SQLite refuses it at once ("database is
    locked"), without waiting ``busy_timeout``, while another connection is opening the same
    new file: it cannot wait for a lock another reader may be waiting to upgrade. Several
    threads or processes starting on a new file at the same moment do exactly that, so the
    switch is tried again, a few milliseconds apart, for as long as ``busy_timeout``."""
    deadline = time.monotonic() + patience
    pause = 0.002
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


class ThreadConnections:
    """This thread's connection to one file, opened on first use; ``prepare`` runs before
    each use (the owner's "schema made yet?" check, cheap once it is)."""

    def __init__(
        self,
        path: str,
        *,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        prepare: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self._prepare = prepare
        self._local = threading.local()
        self._lock = threading.Lock()
        self.all: list[sqlite3.Connection] = []  # every thread's, for close()

    def get(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, busy_timeout_ms=self.busy_timeout_ms)
            self._local.conn = conn
            with self._lock:
                self.all.append(conn)
        if self._prepare is not None:
            self._prepare(conn)
        return conn

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection; a SQLite failure inside becomes StoreUnavailable."""
        try:
            yield self.get()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite store {self.path!r} failed: {exc}") from exc

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction: the write lock up front makes read-merge-write atomic."""
        with self.read() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def forget_inherited(self) -> list[sqlite3.Connection]:
        """In a forked child: start afresh and return the parent's connections, which the
        caller keeps unused (SQLite forbids using a connection opened before ``fork()``)."""
        inherited, self.all = self.all, []
        self._local = threading.local()
        self._lock = threading.Lock()
        return inherited

    def close(self) -> None:
        """Close every thread's connection; a later use opens new ones."""
        with self._lock:
            conns, self.all = self.all, []
        for conn in conns:
            conn.close()
        self._local = threading.local()
