"""The operator CLI, run for real: in-process through ``main`` and as the installed script."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from servers import (
    POSTGRES_HOST,
    POSTGRES_PORT,
    REDIS_HOST,
    REDIS_PORT,
    free_port,
    require_server,
)

from coatcheck import FakeClock, Policy, SessionConflict, SessionManager, open_store
from coatcheck.cli import main, parse_duration
from coatcheck.config import NAMES

ENV_VARS = tuple(name for name in os.environ if name.startswith("COATCHECK_")) + tuple(NAMES)


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator's own environment must not leak into these runs."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/sessions.db"


@pytest.fixture
def cli(url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """Runs ``coatcheck --store URL ARGS`` in-process; ``stdin`` feeds a token to ``-``."""

    def run(*args: str, stdin: str | None = None, store: str | None = url) -> Run:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin or ""))
        capsys.readouterr()
        code = main([*(["--store", store] if store else []), *args])
        out, err = capsys.readouterr()
        return Run(code, out, err)

    return run


@pytest.fixture
def past_manager(url: str) -> Iterator[Any]:
    """Builds managers on the CLI's SQLite file whose clock stands ``ago`` seconds back."""
    made: list[SessionManager] = []

    def make(ago: float, policy: Policy | None = None) -> SessionManager:
        manager = SessionManager(open_store(url), policy, clock=FakeClock(time.time() - ago))
        made.append(manager)
        return manager

    yield make
    for manager in made:
        manager.close()


def assert_one_line_error(run: Run, code: int) -> None:
    assert run.code == code
    assert run.out == ""
    assert run.err.startswith("coatcheck")
    assert run.err.count("\n") == 1, run.err
    assert "Traceback" not in run.err


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the session lifecycle ----------------------------------------------------------------------


def test_create_check_list_revoke_check(cli: Any) -> None:
    assert cli("migrate").code == 0

    created = cli("sessions", "create", "--user", "alice")
    assert created.code == 0
    token = created.out.strip()
    assert created.out == token + "\n"
    assert token.startswith("cc2_")
    assert token not in created.err
    assert "not be shown again" in created.err or "shown once" in created.err

    checked = cli("--json", "sessions", "check", token)
    assert checked.code == 0
    assert checked.json["active"] is True
    assert checked.json["reason"] == "valid"
    assert checked.json["session"]["user_id"] == "alice"
    assert checked.json["session"]["kind"] == "browser"
    session_id = checked.json["session"]["id"]

    listed = cli("sessions", "list", "--user", "alice")
    assert listed.code == 0
    header, row = listed.out.splitlines()
    columns = ["ID", "KIND", "CREATED", "LAST SEEN", "EXPIRES", "IP", "USER AGENT"]
    assert re.split(r"\s{2,}", header) == columns
    assert row.split()[:2] == [session_id, "browser"]
    assert row.split()[2] == iso(checked.json["session"]["created_at"])
    assert row.split()[4] == iso(checked.json["session"]["expires_at"])

    revoked = cli("sessions", "revoke", token)
    assert (revoked.code, revoked.out.strip()) == (0, "revoked")

    again = cli("sessions", "check", token, "--json")
    assert again.code == 1
    answer = again.json
    revocation = answer.pop("revocation")
    assert answer == {"active": False, "reason": "revoked", "session": None}
    assert revocation["reason"] == "revoked_by_admin"
    assert revocation["expires_at"] == checked.json["session"]["expires_at"]
    text = cli("sessions", "check", token)
    assert text.code == 1
    assert re.search(r"^reason\s+revoked$", text.out, re.M)
    assert re.search(r"^revoked\s+revoked_by_admin$", text.out, re.M)
    assert re.search(r"^revoked_at\s+\d{4}-\d\d-\d\dT", text.out, re.M)
    assert cli("sessions", "revoke", token).code == 1
    assert cli("--json", "sessions", "list", "--user", "alice").json["sessions"] == []


def test_create_json_prints_token_and_summary(cli: Any) -> None:
    created = cli("sessions", "create", "--user", "svc-1", "--kind", "api", "--json")
    assert created.code == 0
    assert created.err == ""
    body = created.json
    assert set(body) == {"token", "session"}
    assert body["session"]["kind"] == "api"
    assert body["session"]["user_id"] == "svc-1"
    checked = cli("sessions", "check", body["token"], "--json").json
    assert checked["session"]["id"] == body["session"]["id"]


def test_check_text_output_is_a_readable_listing(cli: Any) -> None:
    token = cli("sessions", "create", "--user", "alice").out.strip()
    result = cli("sessions", "check", token)
    assert result.code == 0
    fields = dict(line.split(None, 1) for line in result.out.splitlines())
    assert fields["active"] == "yes"
    assert fields["reason"] == "valid"
    assert fields["user_id"] == "alice"
    assert fields["authenticated_at"] == "-"
    datetime.strptime(fields["expires_at"], "%Y-%m-%dT%H:%M:%SZ")  # UTC ISO, not a float

    bad = cli("sessions", "check", "not-a-token")
    assert bad.code == 1
    assert dict(line.split(None, 1) for line in bad.out.splitlines()) == {
        "active": "no",
        "reason": "unknown",
    }


def test_token_from_stdin(cli: Any) -> None:
    token = cli("sessions", "create", "--user", "alice").out.strip()
    checked = cli("sessions", "check", "-", "--json", stdin=token + "\n")
    assert checked.code == 0
    assert checked.json["active"] is True
    assert cli("sessions", "revoke", "-", stdin=token + "\n").code == 0
    assert cli("sessions", "check", "-", stdin=token).code == 1
    assert_one_line_error(cli("sessions", "check", "-", stdin=""), 2)
    assert_one_line_error(cli("sessions", "revoke", "-", stdin="\n"), 2)


def test_list_table_shows_client_details_safely(cli: Any, past_manager: Any) -> None:
    manager = past_manager(60)
    agent = "Mozilla/5.0 \x1b[31mred\x1b[0m " + "x" * 60
    _, record = manager.create("alice", client_ip="203.0.113.9", user_agent=agent)
    manager.create("bob")

    listed = cli("sessions", "list", "--user", "alice")
    assert listed.code == 0
    lines = listed.out.splitlines()
    assert len(lines) == 2
    row = lines[1]
    assert "\x1b" not in row
    assert "\\x1b[31mred" in row
    assert row.endswith("…")
    assert len(row.split("  ")[-1].strip()) == 40
    assert record.key.hex[:8] not in row
    assert row.split()[:7] == [
        record.public_id,
        "browser",
        iso(record.created_at),
        iso(record.last_seen_at),
        iso(record.expires_at),
        "203.0.113.9",
        "Mozilla/5.0",
    ]
    as_json = cli("sessions", "list", "--user", "alice", "--json").json
    assert [s["user_agent"] for s in as_json["sessions"]] == [agent]

    empty = cli("sessions", "list", "--user", "nobody")
    assert empty.code == 0
    assert "no live sessions" in empty.err


def test_json_flag_before_or_after_the_subcommand(cli: Any) -> None:
    cli("sessions", "create", "--user", "alice")
    before = cli("--json", "sessions", "list", "--user", "alice")
    middle = cli("sessions", "--json", "list", "--user", "alice")
    after = cli("sessions", "list", "--user", "alice", "--json")
    assert before.json == middle.json == after.json
    assert len(after.json["sessions"]) == 1


# --- revocation ---------------------------------------------------------------------------------


def test_revoke_user_ends_only_that_users_sessions(cli: Any) -> None:
    alice = [cli("sessions", "create", "--user", "alice").out.strip() for _ in range(2)]
    bob = cli("sessions", "create", "--user", "bob").out.strip()

    result = cli("sessions", "revoke-user", "alice")
    assert (result.code, result.out) == (0, "2 sessions of user alice revoked\n")
    assert all(cli("sessions", "check", t).code == 1 for t in alice)
    assert cli("sessions", "check", bob).code == 0
    assert cli("sessions", "revoke-user", "alice", "--json").json == {
        "user_id": "alice",
        "revoked": 0,
    }


def test_revoke_by_the_id_that_sessions_list_shows(cli: Any) -> None:
    tokens = [cli("sessions", "create", "--user", "alice").out.strip() for _ in range(2)]
    bob = cli("sessions", "create", "--user", "bob").out.strip()
    listed = cli("--json", "sessions", "list", "--user", "alice").json["sessions"]
    ids = [s["id"] for s in listed]
    bobs_id = cli("--json", "sessions", "list", "--user", "bob").json["sessions"][0]["id"]
    assert all(len(i) == 16 for i in ids) and len(set(ids)) == 2

    assert cli("sessions", "revoke", "--id", bobs_id, "--user", "alice").code == 1
    assert cli("sessions", "check", bob).code == 0
    done = cli("sessions", "revoke", "--id", ids[0])
    assert (done.code, done.out) == (0, "revoked\n")
    assert cli("--json", "sessions", "revoke", "--id", ids[0]).json == {"revoked": False}
    assert cli("sessions", "revoke", "--id", ids[0]).code == 1
    assert cli("sessions", "revoke", "--id", ids[1], "--user", "alice").code == 0
    assert [cli("sessions", "check", t).code for t in tokens] == [1, 1]
    assert cli("sessions", "check", bob).code == 0


@pytest.mark.parametrize(
    "argv",
    [
        ["sessions", "revoke", "--id", "not-an-id"],
        ["sessions", "revoke", "--id", "abc"],
        ["sessions", "revoke"],
        ["sessions", "revoke", "cc2_" + "A" * 48, "--id", "0" * 16],
        ["sessions", "revoke", "cc2_" + "A" * 48, "--user", "alice"],
    ],
)
def test_revoke_needs_exactly_a_token_or_a_well_formed_id(cli: Any, argv: list[str]) -> None:
    assert_one_line_error(cli(*argv), 2)


def test_revoke_all_needs_yes(cli: Any) -> None:
    tokens = [cli("sessions", "create", "--user", u).out.strip() for u in ("alice", "bob")]

    refused = cli("sessions", "revoke-all")
    assert_one_line_error(refused, 2)
    assert "--yes" in refused.err
    assert all(cli("sessions", "check", t).code == 0 for t in tokens)

    done = cli("sessions", "revoke-all", "--yes", "--json")
    assert (done.code, done.json) == (0, {"revoked": 2})
    assert all(cli("sessions", "check", t).code == 1 for t in tokens)


# --- policy, purge, stats -----------------------------------------------------------------------


def test_check_judges_with_the_given_idle_timeout(
    cli: Any, past_manager: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = past_manager(10 * 60)  # last seen ten minutes ago, default policy (30m idle)
    token, _ = manager.create("alice")
    token2, _ = manager.create("alice")

    assert cli("sessions", "check", token).code == 0
    short = cli("--idle-timeout", "5m", "sessions", "check", token, "--json")
    assert short.code == 1
    assert short.json == {"active": False, "reason": "expired_idle", "session": None}
    # The check only reports: with the deployment's policy the session is still live.
    assert cli("sessions", "check", token).code == 0

    monkeypatch.setenv("COATCHECK_IDLE_TIMEOUT", "30s")
    assert cli("sessions", "check", token2, "--idle-timeout", "1h").code == 0  # flag beats env
    assert cli("sessions", "check", token2, "--json").json["reason"] == "expired_idle"


def test_check_judges_with_the_given_absolute_lifetime(
    cli: Any, past_manager: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = past_manager(2 * 3600, Policy(idle_timeout=3 * 3600))
    token, _ = manager.create("alice")

    assert cli("--idle-timeout", "3h", "sessions", "check", token).code == 0
    monkeypatch.setenv("COATCHECK_IDLE_TIMEOUT", "3h")
    monkeypatch.setenv("COATCHECK_ABSOLUTE_LIFETIME", "1h")
    result = cli("sessions", "check", token, "--json")
    assert (result.code, result.json["reason"]) == (1, "expired_absolute")


def test_check_judges_remembered_sessions_with_the_remember_limits(
    cli: Any, past_manager: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every policy variable the application reads, the CLI reads too (one reader)."""
    remember = Policy(remember_absolute_lifetime=30 * 86400, remember_idle_timeout=86400)
    token, _ = past_manager(13 * 3600, remember).create("alice", remember=True)
    assert cli("sessions", "check", token, "--json").json["reason"] == "expired_absolute"
    monkeypatch.setenv("COATCHECK_REMEMBER_ABSOLUTE_LIFETIME", "30d")
    monkeypatch.setenv("COATCHECK_REMEMBER_IDLE_TIMEOUT", "1d")
    assert cli("sessions", "check", token).code == 0


def test_create_obeys_the_per_user_limit_from_the_environment(
    cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COATCHECK_MAX_SESSIONS_PER_USER", "1")
    monkeypatch.setenv("COATCHECK_ON_LIMIT", "refuse")
    assert cli("sessions", "create", "--user", "alice").code == 0
    refused = cli("sessions", "create", "--user", "alice")
    assert_one_line_error(refused, 1)
    assert "SessionLimitReached" in refused.err


def test_ip_binding_and_touch_interval_do_not_apply_to_commands(
    cli: Any, past_manager: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command comes from no client and touches nothing: the deployment's IP binding would
    refuse every bound session, its touch interval could clash with --idle-timeout."""
    token, _ = past_manager(0).create("alice", client_ip="192.0.2.7")
    monkeypatch.setenv("COATCHECK_BIND_IP", "true")
    monkeypatch.setenv("COATCHECK_TOUCH_INTERVAL", "10m")
    assert cli("sessions", "check", token, "--idle-timeout", "5m").code == 0


def test_unknown_variables_are_one_warning_line_each(
    cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COATCHECK_IDEL_TIMEOUT", "5m")
    result = cli("stats", "--json")
    assert result.code == 0 and result.json["active"] == 0
    assert result.err == (
        "coatcheck: warning: COATCHECK_IDEL_TIMEOUT is not a coatcheck setting and is "
        "ignored; did you mean COATCHECK_IDLE_TIMEOUT?\n"
    )


def test_purge_deletes_expired_sessions_only(cli: Any, past_manager: Any, url: str) -> None:
    expired = past_manager(3600, Policy(idle_timeout=60, touch_interval=0))
    for user in ("alice", "alice", "bob"):
        expired.create(user)
    live = cli("sessions", "create", "--user", "carol").out.strip()

    purged = cli("purge", "--batch-size", "2")
    assert (purged.code, purged.out) == (0, "3 expired sessions purged\n")
    assert cli("purge", "--json").json == {"purged": 0}
    assert cli("sessions", "check", live).code == 0
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        (rows,) = db.execute("SELECT count(*) FROM coatcheck_sessions").fetchone()
    assert rows == 1


def test_stats_counts_sessions_active_in_the_window(cli: Any, past_manager: Any) -> None:
    for user in ("alice", "bob"):
        cli("sessions", "create", "--user", user)
    past_manager(2 * 3600, Policy(idle_timeout=5 * 3600)).create("carol")

    default = cli("stats")
    assert (default.code, default.out) == (0, "2 active sessions in the last 15m\n")
    wide = cli("stats", "--since", "3h", "--json")
    assert wide.json["active"] == 3
    assert wide.json["window_seconds"] == 3 * 3600
    assert wide.json["since"] == pytest.approx(time.time() - 3 * 3600, abs=60)
    assert cli("stats", "--since", "30s").out == "2 active sessions in the last 30s\n"


def test_memory_store(cli: Any) -> None:
    assert cli("migrate", store="memory://").code == 0
    created = cli("sessions", "create", "--user", "a", "--json", store="memory://")
    assert created.code == 0
    assert created.json["session"]["user_id"] == "a"
    assert cli("purge", store="memory://").out == "0 expired sessions purged\n"
    assert cli("stats", store="memory://").out == "0 active sessions in the last 15m\n"


# --- store selection ----------------------------------------------------------------------------


def test_migrate_creates_the_schema(cli: Any, url: str) -> None:
    result = cli("migrate")
    assert result.code == 0
    assert url in result.out
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    assert "coatcheck_sessions" in names


def test_store_from_env_and_default(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_db = tmp_path / "env.db"
    monkeypatch.setenv("COATCHECK_STORE_URL", f"sqlite:///{env_db}")
    token = cli("sessions", "create", "--user", "alice", store=None).out.strip()
    assert env_db.exists()
    assert cli("sessions", "check", token, store=None).code == 0
    assert cli("sessions", "check", token).code == 1  # --store wins over the env var

    monkeypatch.delenv("COATCHECK_STORE_URL")
    monkeypatch.chdir(tmp_path)
    assert cli("migrate", store=None).code == 0
    assert (tmp_path / "coatcheck.db").exists()  # DEFAULT_URL, relative to the working dir


def test_password_in_store_url_is_not_printed() -> None:
    from coatcheck.cli.commands import redacted

    assert redacted("postgresql://app:s3cret@db:5432/x") == "postgresql://app:***@db:5432/x"
    assert redacted("sqlite:///a.db") == "sqlite:///a.db"


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["sessions"],
        ["frobnicate"],
        ["sessions", "create"],
        ["sessions", "create", "--user", "a", "--kind", "robot"],
        ["sessions", "check"],
        ["stats", "--since", "5x"],
        ["stats", "--since", "0s"],
        ["--idle-timeout", "soon", "stats"],
        ["purge", "--batch-size", "-3"],
        ["purge", "--batch-size", "lots"],
    ],
)
def test_bad_arguments_exit_2_with_one_line(cli: Any, args: list[str]) -> None:
    assert_one_line_error(cli(*args), 2)


def test_malformed_duration_in_env_exits_2(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COATCHECK_ABSOLUTE_LIFETIME", "forever")
    result = cli("stats")
    assert_one_line_error(result, 2)
    assert "COATCHECK_ABSOLUTE_LIFETIME" in result.err


@pytest.mark.parametrize("store", ["mongodb://localhost/x", "no-scheme-at-all", "sqlite:///"])
def test_bad_store_url_exits_2(cli: Any, store: str) -> None:
    assert_one_line_error(cli("migrate", store=store), 2)


def test_unopenable_store_exits_3(cli: Any, tmp_path: Path) -> None:
    result = cli("sessions", "list", "--user", "a", store=f"sqlite:///{tmp_path}")  # a directory
    assert_one_line_error(result, 3)
    assert result.err.startswith("coatcheck: store unavailable: ")


def test_unreachable_postgres_exits_3(cli: Any) -> None:
    result = cli("stats", store="postgresql://postgres@127.0.0.1:1/test?timeout=1")
    assert_one_line_error(result, 3)
    assert result.err.startswith("coatcheck: store unavailable: ")


def run_script(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m coatcheck ARGS`` in a child process: what an operator's terminal shows,
    including anything a driver logs (pytest's log capture would hide it in-process)."""
    clean = {k: v for k, v in os.environ.items() if k not in ENV_VARS} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "coatcheck", *args],
        capture_output=True,
        text=True,
        env=clean,
        timeout=60,  # a guard against a hang, far below the URLs' own timeout=600
        check=False,
    )


def assert_script_one_line(result: subprocess.CompletedProcess[str], code: int) -> None:
    assert result.returncode == code, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("coatcheck")
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_refused_postgres_connection_is_one_line_without_waiting_out_the_timeout() -> None:
    # With timeout=600 the old code waited ten minutes for the pool, and the pool's three
    # warnings preceded the message; the refusal itself is the answer.
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/test?timeout=600"
    result = run_script("--store", url, "stats")
    assert_script_one_line(result, 3)
    assert result.stderr.startswith("coatcheck: store unavailable: PostgreSQL at 127.0.0.1:")
    assert "Connection refused" in result.stderr
    assert "no connection within" not in result.stderr


@pytest.mark.parametrize(
    ("path", "named"),
    [
        ("postgresql://no_such_role_cc@127.0.0.1:5432/test", 'role "no_such_role_cc"'),
        ("postgresql://postgres@127.0.0.1:5432/no_such_db_cc", 'database "no_such_db_cc"'),
    ],
)
def test_unknown_postgres_role_or_database_is_a_configuration_error(path: str, named: str) -> None:
    require_server("postgresql", POSTGRES_HOST, POSTGRES_PORT)
    result = run_script("--store", f"{path}?timeout=600", "stats")
    assert_script_one_line(result, 2)
    assert result.stderr.startswith("coatcheck: error: PostgreSQL at 127.0.0.1:5432/")
    assert named in result.stderr and "does not exist" in result.stderr


def test_redis_database_out_of_range_is_a_configuration_error(cli: Any) -> None:
    require_server("redis", REDIS_HOST, REDIS_PORT)
    result = cli("stats", store=f"redis://{REDIS_HOST}:{REDIS_PORT}/99")
    assert_one_line_error(result, 2)
    assert "database 99" in result.err
    script = run_script("--store", f"redis://{REDIS_HOST}:{REDIS_PORT}/99", "stats")
    assert_script_one_line(script, 2)


def test_sqlite_missing_directory_is_refused_not_created(cli: Any, tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir"
    result = cli("migrate", store=f"sqlite:///{missing}/x.db")
    assert_one_line_error(result, 2)
    assert f"directory {str(missing)!r} does not exist" in result.err
    assert not (tmp_path / "no").exists()


def test_json_errors_are_a_json_object_on_stdout(cli: Any, tmp_path: Path) -> None:
    cases = [
        (["stats", "--since", "soon", "--json"], 2, "usage", "malformed duration"),
        (["--json", "sessions", "revoke-all"], 2, "usage", "--yes"),
        (["--json", "migrate"], 2, "config", "unknown store scheme"),
        (["--json", "stats"], 3, "unavailable", "cannot open SQLite store"),
    ]
    stores = {"config": "mongodb://db/x", "unavailable": f"sqlite:///{tmp_path}"}
    for args, code, kind, text in cases:
        result = cli(*args, store=stores.get(kind, f"sqlite:///{tmp_path}/j.db"))
        assert result.code == code, result
        assert result.json["error"] == kind
        assert result.json["exit_code"] == code
        assert text in result.json["message"]
        assert "\n" not in result.json["message"]
        assert result.err.count("\n") == 1  # the one line for people stays on stderr


def test_counts_are_labelled_in_text_and_bare_in_json(cli: Any) -> None:
    cli("sessions", "create", "--user", "alice")
    assert cli("stats", "--since", "2h").out == "1 active session in the last 2h\n"
    assert cli("stats", "--since", "90").out == "1 active session in the last 90s\n"
    assert cli("stats", "--json").json["active"] == 1
    assert cli("sessions", "revoke-all", "--yes").out == "1 session revoked\n"
    assert cli("sessions", "revoke-user", "bob").out == "0 sessions of user bob revoked\n"


def test_other_coatcheck_errors_are_one_line(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def conflict(*args: Any, **kwargs: Any) -> Any:
        raise SessionConflict("two writers\nat once")

    monkeypatch.setattr(SessionManager, "create", conflict)
    result = cli("sessions", "create", "--user", "a")
    assert_one_line_error(result, 1)
    assert "SessionConflict: two writers at once" in result.err


def test_help_exits_0(cli: Any) -> None:
    result = cli("--help")
    assert result.code == 0
    assert "sessions" in result.out and "Exit codes" in result.out


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("2h", 7200), ("7d", 604800), ("90", 90), ("1.5h", 5400)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


# --- the installed entry points -----------------------------------------------------------------


def test_console_script_and_module_entry_points(tmp_path: Path) -> None:
    script = shutil.which("coatcheck", path=str(Path(sys.executable).parent))
    assert script is not None, "the coatcheck console script is not installed in this venv"
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    env["COATCHECK_STORE_URL"] = f"sqlite:///{tmp_path}/sub.db"

    def run(*argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv, input=stdin, capture_output=True, text=True, env=env, timeout=60, check=False
        )

    created = run(script, "sessions", "create", "--user", "alice")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()

    checked = run(
        sys.executable, "-m", "coatcheck", "sessions", "check", "-", "--json", stdin=token
    )
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["session"]["user_id"] == "alice"
    assert token not in checked.stdout

    down = run(script, "--store", f"sqlite:///{tmp_path}", "stats")
    assert down.returncode == 3
    assert down.stderr.startswith("coatcheck: store unavailable: ")
    assert down.stderr.count("\n") == 1 and "Traceback" not in down.stderr

    usage = run(sys.executable, "-m", "coatcheck", "stats", "--since", "soon")
    assert usage.returncode == 2
    assert usage.stderr.startswith("coatcheck stats: error:")
