"""The service's administration commands, run in-process through ``main`` on real stores:
``users``, ``service-keys`` and ``tokens``, their JSON output, exit codes and one-line errors."""

from __future__ import annotations

import asyncio
import io
import json
import os
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from coatcheck.cli import main
from coatcheck.cli.firststart import prepare_first_start
from coatcheck.core.policy import Verdict
from coatcheck.service.context import ServiceContext
from coatcheck.service.settings import load_service_settings

from .test_data import drop_service_tables

T = TypeVar("T")


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture(autouse=True)
def clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh directory and none of the operator's own ``COATCHECK_*`` variables."""
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("COATCHECK_")]:
        monkeypatch.delenv(name)


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None: the default embedded store in ./coatcheck-data; else a shared store's URL."""
    if request.param == "sqlite":
        yield None
        return
    if request.param == "redis":
        yield str(request.getfixturevalue("redis_url"))
        return
    url = str(request.getfixturevalue("postgres_url"))
    yield url
    drop_service_tables(url)


@pytest.fixture
def cc(
    store: str | None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Run]:
    """Runs ``coatcheck ARGS`` on the test's store, with ``stdin`` as standard input."""

    def run(*args: str, stdin: str = "") -> Run:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        capsys.readouterr()
        where = ["--store", store] if store else []
        code = main([*args, *where])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture
def ctx(store: str | None) -> Callable[[Callable[[ServiceContext], Awaitable[T]]], T]:
    """Runs ``f(context)`` on a service context over the same store and keys as the CLI."""
    overrides = {"store_url": store} if store else {}

    def on(f: Callable[[ServiceContext], Awaitable[T]]) -> T:
        settings, _ = prepare_first_start(load_service_settings(None, {}, overrides))

        async def run() -> T:
            context = ServiceContext.build(settings)
            try:
                return await f(context)
            finally:
                await context.close()

        return asyncio.run(run())

    return on


def one_error_line(run: Run, code: int = 2) -> str:
    assert run.code == code, run
    lines = run.err.splitlines()
    assert len(lines) == 1, run.err
    assert lines[0].startswith("coatcheck")
    assert "Traceback" not in run.err
    return lines[0]


# --- users ---------------------------------------------------------------------------------------


def test_users_add_from_stdin_and_list(cc: Callable[..., Run], ctx: Any) -> None:
    added = cc("users", "add", "alice", stdin="correct horse battery\n")
    assert added.code == 0, added
    assert added.out == "user alice added\n"
    assert cc("users", "add", "bob", "--json", stdin="bob-password").json["user"] == "bob"
    listed = cc("users", "list")
    assert [line.split()[0] for line in listed.out.splitlines()] == ["NAME", "alice", "bob"]
    users = cc("users", "list", "--json").json["users"]
    assert [(u["user"], u["disabled"]) for u in users] == [("alice", False), ("bob", False)]
    assert ctx(lambda c: c.users.authenticate("alice", "correct horse battery")) is not None
    assert ctx(lambda c: c.users.authenticate("alice", "correct horse battery\n")) is None
    assert ctx(lambda c: c.users.authenticate("bob", "bob-password")) is not None


def test_users_add_refusals(cc: Callable[..., Run]) -> None:
    assert cc("users", "add", "alice", stdin="pw-1\n").code == 0
    assert "already exists" in one_error_line(cc("users", "add", "alice", stdin="pw-2\n"))
    assert "empty" in one_error_line(cc("users", "add", "carol", stdin=""))
    assert "name" in one_error_line(cc("users", "add", "bad name!", stdin="pw\n"))
    refused = cc("users", "add", "carol", "--json", stdin="")
    assert refused.json["error"] == "usage" and refused.json["exit_code"] == 2
    assert [u["user"] for u in cc("users", "list", "--json").json["users"]] == ["alice"]


def test_password_is_never_an_argument(cc: Callable[..., Run]) -> None:
    line = one_error_line(cc("users", "add", "alice", "secret-password", stdin="x\n"))
    assert "unrecognized arguments" in line


@pytest.mark.parametrize("verb", ["disable", "delete"])
def test_disable_and_delete_end_every_session_and_token(
    cc: Callable[..., Run], ctx: Any, verb: str
) -> None:
    cc("users", "add", "alice", stdin="alice-password\n")
    cc("users", "add", "bob", stdin="bob-password\n")

    async def sessions(c: ServiceContext) -> tuple[list[str], str, str]:
        browser, _ = await c.sessions.create("alice")
        api, _ = await c.sessions.create("alice", kind="api")
        token, _ = await c.tokens.create("alice", "ci")
        other, _ = await c.sessions.create("bob")
        return [browser, api], token, other

    alice_sessions, alice_token, bob_session = ctx(sessions)
    ended = cc("users", verb, "alice", "--json")
    assert ended.code == 0, ended
    assert ended.json["ended"] == 3 and ended.json["user"] == "alice"

    async def verdicts(c: ServiceContext) -> tuple[list[Verdict], Verdict, Verdict]:
        alice = [(await c.sessions.inspect(t))[0] for t in alice_sessions]
        token = (await c.tokens.check(alice_token))[0]
        bob = (await c.sessions.inspect(bob_session))[0]
        return alice, token, bob

    assert ctx(verdicts) == ([Verdict.REVOKED] * 2, Verdict.REVOKED, Verdict.VALID)
    assert ctx(lambda c: c.users.authenticate("alice", "alice-password")) is None
    listed = {u["user"]: u["disabled"] for u in cc("users", "list", "--json").json["users"]}
    assert listed == ({"alice": True, "bob": False} if verb == "disable" else {"bob": False})
    if verb == "disable":
        assert cc("users", "enable", "alice").out == "user alice enabled\n"
        assert ctx(lambda c: c.users.authenticate("alice", "alice-password")) is not None


@pytest.mark.parametrize("verb", ["disable", "enable", "delete"])
def test_unknown_user(cc: Callable[..., Run], verb: str) -> None:
    run = cc("users", verb, "nobody")
    assert (run.code, run.out) == (1, "no user nobody\n")
    assert cc("users", verb, "nobody", "--json").json == {"user": "nobody", "found": False}


# --- service keys --------------------------------------------------------------------------------


def test_service_keys_create_list_revoke(cc: Callable[..., Run], ctx: Any) -> None:
    created = cc("service-keys", "create", "billing", "--scope", "admin")
    assert created.code == 0, created
    key = created.out.strip()
    assert key.startswith("cck_") and "\n" not in key
    assert "shown once" in created.err
    info = ctx(lambda c: c.service_keys.authenticate(key))
    assert info is not None and (info.name, info.scope) == ("billing", "admin")
    reader = cc("service-keys", "create", "reader", "--json").json
    assert reader["scope"] == "introspect" and reader["key"].startswith("cck_")

    listed = cc("service-keys", "list", "--json").json["service_keys"]
    assert sorted((k["name"], k["scope"]) for k in listed) == [
        ("billing", "admin"),
        ("reader", "introspect"),
    ]
    assert all("key" not in k for k in listed)
    assert key not in cc("service-keys", "list").out

    assert cc("service-keys", "revoke", "billing").out == "revoked\n"
    assert ctx(lambda c: c.service_keys.authenticate(key)) is None
    assert cc("service-keys", "revoke", reader["id"], "--json").json == {"revoked": True}
    again = cc("service-keys", "revoke", "billing")
    assert again.code == 1 and again.out == "no live service key named billing\n"
    revoked = cc("service-keys", "list", "--json").json["service_keys"]
    assert all(k["revoked_at"] is not None for k in revoked)


def test_service_key_scope_refused(cc: Callable[..., Run]) -> None:
    line = one_error_line(cc("service-keys", "create", "x", "--scope", "root"))
    assert "invalid choice: 'root'" in line
    assert cc("service-keys", "list", "--json").json == {"service_keys": []}


# --- API tokens ----------------------------------------------------------------------------------


def test_tokens_create_list_revoke(cc: Callable[..., Run], ctx: Any) -> None:
    created = cc(
        "tokens", "create", "--user", "alice", "--name", "deploy",
        "--scope", "repo:read", "--scope", "repo:write", "--expires", "30d", "--json",
    )  # fmt: skip
    assert created.code == 0, created
    made = created.json
    token = made["token"]
    assert token.startswith("cc_")
    assert (made["user_id"], made["name"], made["scopes"]) == (
        "alice",
        "deploy",
        ["repo:read", "repo:write"],
    )
    assert made["expires_at"] == pytest.approx(made["created_at"] + 30 * 86400)
    info = ctx(lambda c: c.tokens.verify(token, scope="repo:write"))
    assert info is not None and info.id == made["id"]

    plain = cc("tokens", "create", "--user", "alice", "--name", "other")
    assert plain.out.strip().startswith("cc_") and "shown once" in plain.err

    listed = cc("tokens", "list", "--user", "alice", "--json").json
    assert sorted(t["name"] for t in listed["tokens"]) == ["deploy", "other"]
    assert (
        token not in json.dumps(listed) and token not in cc("tokens", "list", "--user", "alice").out
    )
    empty = cc("tokens", "list", "--user", "bob", "--json").json
    assert empty == {"user_id": "bob", "tokens": []}

    assert cc("tokens", "revoke", made["id"]).out == "revoked\n"
    assert ctx(lambda c: c.tokens.check(token))[0] is Verdict.REVOKED
    again = cc("tokens", "revoke", made["id"], "--json")
    assert again.code == 1 and again.json == {"revoked": False}
    names = [t["name"] for t in cc("tokens", "list", "--user", "alice", "--json").json["tokens"]]
    assert names == ["other"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["tokens", "revoke", "not-an-id"], "is not a session id"),
        (["tokens", "create", "--user", "a", "--name", "n", "--expires", "soon"], "malformed"),
        (["tokens", "create", "--user", "a", "--name", "n", "--scope", "BAD SCOPE"], "scope"),
        (["tokens", "create", "--user", "a"], "--name"),
        (["tokens", "list"], "--user"),
    ],
)
def test_token_errors(cc: Callable[..., Run], args: list[str], expected: str) -> None:
    cc("users", "list")  # past the first start, whose lines come before any error
    assert expected in one_error_line(cc(*args))
    answer = cc(*args, "--json").json
    assert answer["exit_code"] == 2 and expected in answer["message"]


def test_json_stdout_stays_json_on_first_start(cc: Callable[..., Run], store: str | None) -> None:
    first = cc("users", "list", "--json")
    assert first.json == {"users": []}
    if store is None:
        assert "coatcheck: first start, created:" in first.err
        assert "coatcheck users add NAME" in first.err
        assert "first start" not in cc("users", "list", "--json").err
    else:
        assert "first start" not in first.err
        assert not Path("coatcheck-data").exists()


@pytest.mark.parametrize("store", [None])  # the data directory holds the embedded store
def test_commands_act_on_the_data_dir_they_are_given(
    cc: Callable[..., Run], tmp_path: Path
) -> None:
    cc("users", "add", "alice", "--data-dir", "elsewhere", stdin="pw-alice\n")
    assert (tmp_path / "elsewhere" / "coatcheck.db").is_file()
    assert cc("users", "list", "--json").json == {"users": []}
    assert (
        cc("users", "list", "--json", "--data-dir", "elsewhere").json["users"][0]["user"] == "alice"
    )
