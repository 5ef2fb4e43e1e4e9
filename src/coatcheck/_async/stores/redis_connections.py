"""How the Redis store reaches its server(s): redis-py's client for everything, with the Lua
scripts registered on it, and beside it the per-request commands' path (standalone only).

Made on first use: a store must be constructible while its server is down, and a synchronous
cluster client reads the slot map when it is made.
"""

from __future__ import annotations

import threading
from typing import Any, Final, TypeAlias, cast

import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript

from ...core.errors import ConfigError
from ...stores.redis.aio import LaneIO, command_path
from ...stores.redis.lua import DELETE_LUA, DELETE_USER_LUA, INSERT_LUA, UPDATE_LUA
from ...stores.redis.url import RedisOptions, client_kwargs
from .redis_lane import AsyncCommandPath, AsyncLane

Client: TypeAlias = "redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster"
MIN_SERVER_VERSION: Final = (7, 0)  # PEXPIREAT ... GT


def new_client(options: RedisOptions) -> Client:
    """redis-py's client for the URL's server(s). No automatic retries: a write whose reply
    was lost may have been applied, and a blind retry would apply it twice. Failures surface
    as StoreUnavailable instead; the pool reconnects on the next call."""
    kwargs = {**client_kwargs(options), "retry": redis.asyncio.retry.Retry(NoBackoff(), 0)}
    if options.cluster:
        return redis.asyncio.cluster.RedisCluster(host=options.host, port=options.port, **kwargs)
    return redis.asyncio.Redis(host=options.host, port=options.port, db=options.db, **kwargs)


class AsyncConnections:
    """One store's client, scripts and per-request path; safe to share between tasks."""

    update_script: AsyncScript
    insert_script: AsyncScript
    delete_script: AsyncScript
    delete_user_script: AsyncScript

    def __init__(self, options: RedisOptions) -> None:
        self.options = options
        self.live: Client | None = None  # the client once it is ready for concurrent use
        self.lane: AsyncCommandPath | None = None  # standalone only (pipelined where it can be)
        self._client: Client | None = None
        self._lock = threading.Lock()

    def client(self) -> Client:
        """The client, made once; its scripts are registered before anyone can see it."""
        with self._lock:
            if self._client is None:
                client = new_client(self.options)
                self.update_script = client.register_script(UPDATE_LUA)
                self.insert_script = client.register_script(INSERT_LUA)
                self.delete_script = client.register_script(DELETE_LUA)
                self.delete_user_script = client.register_script(DELETE_USER_LUA)
                if isinstance(client, redis.asyncio.Redis):
                    timeout = self.options.socket_timeout
                    lane = AsyncLane(client, LaneIO(timeout), self.options.max_connections)
                    self.lane = command_path(self.options, lane)
                self._client = client
            return self._client

    async def ready(self) -> Client:
        """The client, ready for concurrent use (first call only; then ``self.live``)."""
        client = self.client()
        # redis.asyncio's RedisCluster must load its slot map before concurrent commands, or
        # some of the first ones fail with "Connection closed by server" (redis-py 8.1).
        # The synchronous clients load it in their constructor and have no initialize().
        initialize = getattr(client, "initialize", None)
        if initialize is not None:
            await initialize()
        self.live = client
        return client

    async def check_versions(self) -> None:
        """ConfigError unless the server, or every primary of a cluster, is new enough."""
        client = self.live or await self.ready()
        if isinstance(client, redis.asyncio.cluster.RedisCluster):
            per_node = await client.info(
                "server", target_nodes=redis.asyncio.cluster.RedisCluster.PRIMARIES
            )
            infos = list(cast("dict[str, dict[str, Any]]", per_node).values())
        else:
            infos = [await client.info("server")]
        for info in infos:
            version = str(info.get("redis_version", "0"))
            if tuple(int(p) for p in version.split(".")[:2]) < MIN_SERVER_VERSION:
                raise ConfigError(
                    f"{self.options.where} runs Redis {version}; coatcheck needs Redis >= "
                    f"{'.'.join(map(str, MIN_SERVER_VERSION))}"
                )

    async def load_scripts(self) -> None:
        """Every script loaded ahead of its first use (on every primary of a cluster)."""
        client = self.live or await self.ready()
        for script in (
            self.update_script,
            self.insert_script,
            self.delete_script,
            self.delete_user_script,
        ):
            script.sha = await client.script_load(script.script)

    async def close(self) -> None:
        with self._lock:
            client, self._client, self.live = self._client, None, None
            lane, self.lane = self.lane, None
        if lane is not None:
            await lane.close()
        if client is not None:
            await client.aclose()
