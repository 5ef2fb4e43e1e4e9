"""Opening a SQLite store file: many connections starting on one new file at once."""

from __future__ import annotations

import threading
from pathlib import Path

from coatcheck.stores.sqlite.connections import connect

OPENERS = 8
FILES = 40


def _open_at_once(path: str) -> tuple[list[str], list[BaseException]]:
    """``OPENERS`` threads open ``path`` at the same moment: their journal modes and errors."""
    start = threading.Barrier(OPENERS)
    modes: list[str] = []
    errors: list[BaseException] = []

    def opener() -> None:
        start.wait()
        try:
            conn = connect(path)
            modes.append(conn.execute("PRAGMA journal_mode").fetchone()[0])
            conn.execute("CREATE TABLE IF NOT EXISTS t (a)")
            conn.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(OPENERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return modes, errors


def test_connections_racing_to_open_a_new_file_all_succeed(tmp_path: Path) -> None:
    """SQLite refuses the switch to WAL at once, without waiting, while another connection
    is opening the same new file; before the switch was retried, some of these files gave
    "database is locked" (4 of 60 in one run)."""
    for n in range(FILES):
        modes, errors = _open_at_once(str(tmp_path / f"new-{n}.db"))
        assert errors == []
        assert modes == ["wal"] * OPENERS
