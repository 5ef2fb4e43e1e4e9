"""The async Redis store's pipelined connection (coatcheck.stores.redis.mux): replies matched to
their commands whatever happens around them, few reads on the server, its own set-up from the
URL (credentials, database, TLS), error replies as redis-py raises them, and the way back to a
connection per command (``multiplex=false``, RESP3)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

import pytest
import redis
import redis.asyncio
from fixtures_redis import RedisServer
from harness import in_a_forked_child
from hypothesis import given
from hypothesis import strategies as st
from redis.exceptions import ResponseError

from coatcheck import ConfigError, StoreUnavailable
from coatcheck._async.stores.redis import AsyncRedisStore
from coatcheck._async.stores.redis_lane import AsyncLane
from coatcheck._sync.stores.redis import RedisStore
from coatcheck.core.policy import WritePlan
from coatcheck.core.records import Patch, SessionRecord
from coatcheck.core.tokens import TokenCodec, new_token_key
from coatcheck.stores.redis.mux import Multiplexer
from coatcheck.stores.redis.url import parse_url
from coatcheck.stores.redis.wire import pack


def in_a_loop(url: str, scenario: Callable[[AsyncRedisStore], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        store = AsyncRedisStore(url)
        try:
            return await scenario(store)
        finally:
            await store.close()

    return asyncio.run(main())


async def path_of(store: AsyncRedisStore) -> Any:
    """The store's per-request command path (made on first use)."""
    await store._conn.ready()
    return store._conn.lane


def stat(client: redis.Redis, section: str, name: str) -> int:
    return int(client.info(section)[name])


async def blocked_on_server(watcher: redis.Redis) -> None:
    """Wait (up to 10 s) until the server holds a client blocked in BLPOP. Other clients of
    the same server may be blocked too (a service following its events with XREAD BLOCK),
    so the BLPOP itself is looked for, not the count of blocked clients."""
    for _ in range(1000):
        clients = watcher.client_list()
        if any(c.get("cmd") == "blpop" and "b" in c.get("flags", "") for c in clients):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the BLPOP never reached the server")


def test_the_async_store_pipelines_and_the_option_or_resp3_turn_it_off(redis_url: str) -> None:
    assert isinstance(in_a_loop(redis_url, path_of), Multiplexer)
    assert isinstance(in_a_loop(redis_url + "&multiplex=false", path_of), AsyncLane)
    assert isinstance(in_a_loop(redis_url + "&protocol=3", path_of), AsyncLane)
    assert parse_url("redis://h/0?multiplex=no").multiplex is False
    assert parse_url("redis://h/0").multiplex is True
    with pytest.raises(ConfigError, match="multiplex must be true or false"):
        parse_url("redis://h/0?multiplex=sometimes")


def test_concurrent_commands_share_one_connection_and_few_reads(
    redis_instance: Callable[[], RedisServer],
) -> None:
    """200 tasks at once: each gets its own reply, over one connection, in far fewer server
    reads than commands (a connection per command costs the server one read each)."""
    server = redis_instance()
    watcher = server.client()
    url = f"redis://{server.address}/0?prefix=mux:"

    async def scenario(store: AsyncRedisStore) -> tuple[list[Any], int, int]:
        mux = await path_of(store)
        await mux.command("PING")  # connected
        reads_before = stat(watcher, "stats", "total_reads_processed")
        replies = await asyncio.gather(*(mux.command("ECHO", f"v{i}") for i in range(200)))
        reads = stat(watcher, "stats", "total_reads_processed") - reads_before
        return replies, reads, stat(watcher, "clients", "connected_clients")

    try:
        replies, reads, clients = in_a_loop(url, scenario)
    finally:
        watcher.close()
    assert replies == [f"v{i}".encode() for i in range(200)]
    assert clients == 2  # the store's one connection and the watcher
    assert reads < 50, f"{reads} server reads for 200 pipelined commands"


def test_a_caller_that_gives_up_keeps_the_order(redis_url: str) -> None:
    """A cancelled command's reply is still read, and dropped: the next caller gets its own."""
    watcher = redis.Redis.from_url(redis_url.split("?")[0])
    prefix = parse_url(redis_url).prefix
    queue = prefix + "queue"

    async def scenario(store: AsyncRedisStore) -> tuple[Any, int]:
        mux = await path_of(store)
        blocked = asyncio.ensure_future(mux.command("BLPOP", queue, 5))
        await blocked_on_server(watcher)
        blocked.cancel()
        after = asyncio.ensure_future(mux.command("ECHO", "after"))
        for _ in range(3):
            await asyncio.sleep(0)  # the ECHO is written, behind the BLPOP
        watcher.rpush(queue, "taken by the cancelled BLPOP")
        with pytest.raises(asyncio.CancelledError):
            await blocked
        return await after, watcher.llen(queue)

    try:
        reply, left = in_a_loop(redis_url, scenario)
    finally:
        watcher.delete(queue)
        watcher.close()
    assert reply == b"after"
    assert left == 0, "the BLPOP's reply was read (and dropped), not left for someone else"


def test_an_error_reply_reaches_its_own_command_only(redis_url: str) -> None:
    prefix = parse_url(redis_url).prefix

    async def scenario(store: AsyncRedisStore) -> list[Any]:
        mux = await path_of(store)
        await mux.command("SET", prefix + "plain", "x")
        return await asyncio.gather(
            mux.command("ECHO", "before"),
            mux.command("HGETALL", prefix + "plain"),
            mux.command("ECHO", "after"),
            return_exceptions=True,
        )

    before, wrong, after = in_a_loop(redis_url, scenario)
    assert (before, after) == (b"before", b"after")
    assert isinstance(wrong, ResponseError) and "WRONGTYPE" in str(wrong)


def test_a_hung_server_fails_every_waiting_command_then_the_store_recovers(
    redis_instance: Callable[[], RedisServer],
) -> None:
    server = redis_instance()
    assert server.process is not None
    url = f"redis://{server.address}/0?prefix=hung:&socket_timeout=0.3"
    keys = [TokenCodec(new_token_key()).new_token("alice")[1] for _ in range(5)]

    async def scenario(store: AsyncRedisStore) -> list[Any]:
        assert await store.load(keys[0]) is None
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGSTOP)
        try:
            failed = await asyncio.gather(*(store.load(k) for k in keys), return_exceptions=True)
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
        assert await store.load(keys[0]) is None, "a new connection serves the next request"
        return failed

    failed = in_a_loop(url, scenario)
    assert all(isinstance(f, StoreUnavailable) for f in failed), failed
    assert "did not answer within 0.3 s" in str(failed[0])


def test_the_store_serves_one_event_loop_after_another(redis_url: str) -> None:
    """asyncio.run() twice (tests, scripts): the second loop opens its own connection."""
    store = AsyncRedisStore(redis_url)
    key = TokenCodec(new_token_key()).new_token("alice")[1]
    try:
        for _ in range(2):
            assert asyncio.run(store.load(key)) is None
    finally:
        asyncio.run(store.close())


def test_closing_the_store_fails_commands_still_waiting(redis_url: str) -> None:
    watcher = redis.Redis.from_url(redis_url.split("?")[0])
    queue = parse_url(redis_url).prefix + "queue"

    async def scenario(store: AsyncRedisStore) -> BaseException | None:
        mux = await path_of(store)
        blocked = asyncio.ensure_future(mux.command("BLPOP", queue, 5))
        await blocked_on_server(watcher)
        await store.close()
        return (await asyncio.gather(blocked, return_exceptions=True))[0]

    try:
        outcome = in_a_loop(redis_url, scenario)
    finally:
        watcher.close()
    assert isinstance(outcome, redis.exceptions.ConnectionError)
    assert "closed" in str(outcome)


class MisbehavingRedis:
    """A loopback peer that reads RESP commands, answers ``+OK`` to any but ``ECHO`` (the pool's
    set-up; the pipelined connection needs none for db 0 without credentials) and ``ECHO`` as
    told: ``garbage`` (not RESP) or ``twice`` (one reply nobody asked for)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.connections = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                command = await read_command(reader)
                if command is None:
                    return
                if command[0].upper() != b"ECHO":
                    writer.write(b"+OK\r\n")
                elif self.mode == "garbage":
                    writer.write(b"?not a reply\r\n")
                else:
                    reply = b"$%d\r\n%s\r\n" % (len(command[1]), command[1])
                    writer.write(reply * 2)  # one write: both arrive before the next command
                await writer.drain()
        finally:
            writer.close()


async def read_command(reader: asyncio.StreamReader) -> list[bytes] | None:
    """One RESP array of bulk strings (what clients send), or None at the end."""
    header = await reader.readline()
    if not header:
        return None
    parts = []
    for _ in range(int(header[1:])):
        size = int((await reader.readline())[1:])
        parts.append((await reader.readexactly(size + 2))[:-2])
    return parts


@pytest.mark.parametrize("mode", ["garbage", "twice"])
def test_a_reply_stream_in_doubt_closes_the_connection(mode: str) -> None:
    """Garbage, or a reply nobody asked for: the connection is closed, no later command reads
    from it, and the next command gets a new connection."""
    peer = MisbehavingRedis(mode)

    async def scenario() -> tuple[Any, Any]:
        server = await asyncio.start_server(peer.serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        mux = await path_of(AsyncRedisStore(f"redis://127.0.0.1:{port}/0?socket_timeout=2"))
        try:
            first = await asyncio.gather(mux.command("ECHO", "one"), return_exceptions=True)
            second = await asyncio.gather(mux.command("ECHO", "two"), return_exceptions=True)
            return first[0], second[0]
        finally:
            await mux.close()
            server.close()
            await server.wait_closed()

    first, second = asyncio.run(scenario())
    if mode == "garbage":
        assert isinstance(first, redis.exceptions.ConnectionError)
        assert "reply stream broken" in str(first)
        assert isinstance(second, redis.exceptions.ConnectionError)
    else:
        assert (first, second) == (b"one", b"two")
    assert peer.connections == 2, "the doubtful connection was closed and a new one opened"


def test_threads_with_loops_of_their_own_each_get_a_connection(redis_url: str) -> None:
    """One store, four threads each running its own event loop at the same time: every load
    succeeds (no loop closes another's connection under its commands)."""
    import threading

    store = AsyncRedisStore(redis_url)
    key = TokenCodec(new_token_key()).new_token("alice")[1]
    outcomes: list[Any] = []

    def worker() -> None:
        async def loads() -> list[Any]:
            results: list[Any] = []
            for _ in range(50):
                results += await asyncio.gather(
                    *(store.load(key) for _ in range(4)), return_exceptions=True
                )
            return results

        outcomes.extend(asyncio.run(loads()))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        asyncio.run(store.close())
    assert len(outcomes) == 4 * 50 * 4
    assert all(outcome is None for outcome in outcomes), [o for o in outcomes if o][:3]


@given(
    st.lists(
        st.one_of(
            st.text(),
            st.binary(),
            st.integers(min_value=-(2**63), max_value=2**63),
            st.floats(allow_nan=False, allow_infinity=False),
        ),
        max_size=12,
    )
)
def test_commands_are_packed_exactly_as_redis_py_packs_them(args: list[Any]) -> None:
    """hiredis's C packer (used by both command paths) against redis.asyncio's own, for every
    argument type the store sends."""
    conn = redis.asyncio.Connection()
    command = ("EVALSHA", *args)
    assert pack(conn, command) == b"".join(conn.pack_command(*command))


@pytest.mark.parametrize("multiplex", ["true", "false"])
def test_a_forked_child_never_uses_the_parents_connections(redis_url: str, multiplex: str) -> None:
    """A child forked while the store holds connections (a pre-forking server, a pool of
    workers) opens its own: sharing the parent's socket would mix their replies."""
    url = f"{redis_url}&multiplex={multiplex}"
    loop = asyncio.new_event_loop()
    store = AsyncRedisStore(url)
    try:
        _, key = loop.run_until_complete(store.token_codec()).new_token("alice")
        now = 1e9
        record = SessionRecord(key, "alice", "browser", now, now, now, now + 1e9)
        loop.run_until_complete(store.insert(record))
        assert loop.run_until_complete(store.load(key)) is not None  # a connection is held
        path = store._conn.lane
        inherited = dict(path._links) if isinstance(path, Multiplexer) else list(path._idle)
        assert inherited

        def child() -> bool:
            held = path._links if isinstance(path, Multiplexer) else path._idle
            if held:
                return False
            loaded = asyncio.run(store.load(key))  # a new loop, new connections
            return loaded is not None and loaded.user_id == "alice"

        assert in_a_forked_child(child)
        again = loop.run_until_complete(store.load(key))
        assert again is not None and again.user_id == "alice", "the parent's connection works"
    finally:
        loop.run_until_complete(store.close())
        loop.close()


def test_a_forked_child_never_uses_the_parents_connections_sync(redis_url: str) -> None:
    """The same for the sync store's lane (a pre-forking WSGI server such as gunicorn with
    --preload): the child's lane starts empty and the parent's connection still works."""
    store = RedisStore(redis_url)
    try:
        _, key = store.token_codec().new_token("alice")
        now = 1e9
        store.insert(SessionRecord(key, "alice", "browser", now, now, now, now + 1e9))
        assert store.load(key) is not None
        lane = store._conn.lane
        assert lane is not None and lane._idle

        def child() -> bool:
            if lane._idle:
                return False
            loaded = store.load(key)
            return loaded is not None and loaded.user_id == "alice"

        assert in_a_forked_child(child)
        again = store.load(key)
        assert again is not None and again.user_id == "alice"
    finally:
        store.close()


# --- its own connection: set up from the URL, errors as redis-py raises them ----------------


def write_and_read(url: str) -> tuple[Any, Any, Any]:
    """A session written through redis-py's pool and read back through the store's
    per-request path, then that path and what the server says about its connection."""

    async def scenario(store: AsyncRedisStore) -> tuple[Any, Any, Any]:
        _, key = (await store.token_codec()).new_token("alice")
        now = time.time()
        await store.insert(SessionRecord(key, "alice", "browser", now, now, now, now + 3600))
        loaded = await store.load(key)
        path = await path_of(store)
        return loaded, path, await path.command("CLIENT", "INFO")

    return cast("tuple[Any, Any, Any]", in_a_loop(url, scenario))


@pytest.mark.parametrize("who", ["acl user", "default user"])
def test_the_pipelined_connection_logs_in_and_selects_the_database_of_the_url(
    redis_instance: Callable[[], RedisServer], who: str
) -> None:
    """Credentials (percent-encoded in the URL) and database come from the URL: a session
    written through redis-py's pool into db 3 is read through the pipelined connection."""
    server = redis_instance()
    admin = server.client()
    try:
        if who == "acl user":
            admin.execute_command("ACL", "SETUSER", "app", "on", ">s3cret:@", "~*", "&*", "+@all")
            credentials, user = "app:s3cret%3A%40", "app"
        else:
            admin.config_set("requirepass", "s3cret:@")
            credentials, user = ":s3cret%3A%40", "default"
    finally:
        admin.close()
    loaded, path, info = write_and_read(f"redis://{credentials}@{server.address}/3?prefix=x:")
    assert isinstance(path, Multiplexer)
    assert loaded is not None and loaded.user_id == "alice"
    fields = dict(item.split("=", 1) for item in info.decode().split())
    assert (fields["user"], fields["db"]) == (user, "3")


@pytest.mark.parametrize(
    ("credentials", "db", "says"),
    [("nobody_cc:wrong@", "0", "refused the credentials"), ("", "99", "has no database 99")],
)
def test_settings_the_server_refuses_are_config_errors_on_the_pipelined_path(
    redis_url: str, credentials: str, db: str, says: str
) -> None:
    """Only the load's HGETALL runs, so only the pipelined connection meets the server."""
    options = parse_url(redis_url)
    url = f"redis://{credentials}{options.host}:{options.port}/{db}?prefix={options.prefix}"
    key = TokenCodec(new_token_key()).new_token("alice")[1]

    async def scenario(store: AsyncRedisStore) -> Any:
        assert isinstance(await path_of(store), Multiplexer)
        return await store.load(key)

    with pytest.raises(ConfigError, match=says):
        in_a_loop(url, scenario)


def test_error_replies_raise_what_redis_py_raises(redis_url: str) -> None:
    """The same commands through redis-py and through the pipelined connection: the same
    exception class and message (NOSCRIPT must be NoScriptError for the store to re-load a
    script; READONLY, OOM, LOADING must be the classes the store reports as unavailable)."""
    prefix = parse_url(redis_url).prefix
    lua_error = "return redis.error_reply(ARGV[1])"
    commands: list[tuple[Any, ...]] = [
        ("HGETALL", prefix + "plain"),
        ("EVALSHA", "0" * 40, 0),
        ("NO-SUCH-COMMAND",),
        ("GET",),
        ("SELECT", 99),
        ("AUTH", "nobody_cc", "wrong"),
        *(
            ("EVAL", lua_error, 0, text)
            for text in (
                "READONLY You can't write against a read only replica.",
                "OOM command not allowed when used memory > 'maxmemory'.",
                "LOADING Redis is loading the dataset in memory",
                "BUSY Redis is busy running a script.",
                "MOVED 3999 127.0.0.1:6381",
                "ERR max number of clients reached",
                "SOMETHING else",
            )
        ),
    ]

    async def scenario(store: AsyncRedisStore) -> list[tuple[Any, Any]]:
        path = await path_of(store)
        await path.command("SET", prefix + "plain", "x")
        client = redis.asyncio.Redis.from_url(redis_url.split("?")[0], protocol=2)
        pairs = []
        try:
            for command in commands:
                theirs = (
                    await asyncio.gather(client.execute_command(*command), return_exceptions=True)
                )[0]
                ours = (await asyncio.gather(path.command(*command), return_exceptions=True))[0]
                pairs.append((ours, theirs))
        finally:
            await client.aclose()
        return pairs

    for ours, theirs in in_a_loop(redis_url, scenario):
        assert isinstance(theirs, redis.exceptions.RedisError), theirs
        assert (type(ours), str(ours)) == (type(theirs), str(theirs))


@pytest.mark.parametrize("api", ["async", "async-lane", "sync"])
@pytest.mark.parametrize("trust", ["ca", "none"])
def test_tls_with_a_client_certificate(redis_tls: RedisServer, api: str, trust: str) -> None:
    """``rediss://`` through every path: the pipelined connection's own TLS context, the lane
    and redis-py's pool (which share the URL's settings), with the CA given or not checked."""
    files = redis_tls.tls
    assert files is not None
    url = (
        f"rediss://{redis_tls.address}/0?prefix=tls:&ssl_certfile={files['client_cert']}"
        f"&ssl_keyfile={files['client_key']}"
    )
    url += f"&ssl_ca_certs={files['ca']}" if trust == "ca" else "&ssl_cert_reqs=none"
    if api == "sync":
        store = RedisStore(url)
        try:
            _, key = store.token_codec().new_token("alice")
            now = time.time()
            store.insert(SessionRecord(key, "alice", "browser", now, now, now, now + 3600))
            loaded = store.load(key)
        finally:
            store.close()
    else:
        loaded, path, _ = write_and_read(url + ("&multiplex=false" if api == "async-lane" else ""))
        assert isinstance(path, Multiplexer if api == "async" else AsyncLane)
    assert loaded is not None and loaded.user_id == "alice"


@pytest.mark.parametrize("api", ["async", "sync"])
def test_tls_refuses_a_server_its_ca_did_not_sign(redis_tls: RedisServer, api: str) -> None:
    files = redis_tls.tls
    assert files is not None
    url = (
        f"rediss://{redis_tls.address}/0?ssl_ca_certs={files['foreign_ca']}"
        f"&ssl_certfile={files['client_cert']}&ssl_keyfile={files['client_key']}"
    )
    key = TokenCodec(new_token_key()).new_token(None)[1]

    def load() -> Any:
        if api != "sync":
            return in_a_loop(url, lambda store: store.load(key))
        store = RedisStore(url)
        try:
            return store.load(key)
        finally:
            store.close()

    with pytest.raises(StoreUnavailable, match="certificate verify failed"):
        load()


def test_the_sync_store_imports_none_of_the_asyncio_machinery() -> None:
    """The generated sync store and its helpers import neither the pipelined connection nor
    the async-only helpers (a fresh interpreter: nothing else has imported them)."""
    code = (
        "import sys, coatcheck._sync.stores.redis as s; s.RedisStore('redis://h/0'); "
        "print(' '.join(m for m in sys.modules if m.startswith('coatcheck')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.split()
    assert "coatcheck._sync.stores.redis" in loaded
    async_only = {"coatcheck.stores.redis.mux", "coatcheck.stores.redis.aio"}
    assert async_only.isdisjoint(loaded), sorted(async_only.intersection(loaded))
    assert "coatcheck.stores.deadline" not in loaded
    assert not [m for m in loaded if "_async" in m and "redis" in m]


def event_loops() -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """asyncio's own loop, and uvloop's where it is installed (uvicorn uses it when it is):
    its transports are not ``asyncio.Transport`` subclasses, its TLS is its own."""
    loops: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {"asyncio": asyncio.new_event_loop}
    try:
        import uvloop
    except ImportError:  # pragma: no cover - the benchmarks' requirements bring it
        return loops
    loops["uvloop"] = uvloop.new_event_loop
    return loops


@pytest.mark.parametrize("loop", sorted(event_loops()))
@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_the_pipelined_connection_on_every_installed_event_loop(
    redis_url: str, redis_tls: RedisServer, loop: str, tls: bool
) -> None:
    """Concurrent loads and a patch through the pipelined connection, on each event loop."""
    url = redis_url
    if tls:
        files = redis_tls.tls
        assert files is not None
        url = (
            f"rediss://{redis_tls.address}/0?prefix=loops:&ssl_ca_certs={files['ca']}"
            f"&ssl_certfile={files['client_cert']}&ssl_keyfile={files['client_key']}"
        )

    async def scenario() -> tuple[Any, list[Any], Any]:
        store = AsyncRedisStore(url)
        try:
            _, key = (await store.token_codec()).new_token("alice")
            now = time.time()
            await store.insert(SessionRecord(key, "alice", "browser", now, now, now, now + 3600))
            loads = await asyncio.gather(*(store.load(key) for _ in range(50)))
            plan = WritePlan(Patch({"k": "1"}), now, now + 3600)
            version = await store.update(key, plan)
            return await path_of(store), loads, (version, await store.load(key))
        finally:
            await store.close()

    with asyncio.Runner(loop_factory=event_loops()[loop]) as runner:
        path, loads, (version, after) = runner.run(scenario())
    assert isinstance(path, Multiplexer)
    assert all(r is not None and r.user_id == "alice" for r in loads)
    assert version == 2 and after is not None and after.data == {"k": 1}
