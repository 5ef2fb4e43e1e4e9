"""The Redis store: standalone (``redis://``, ``rediss://``) and Cluster (``redis+cluster://``).

This file is the single source of truth; ``scripts/unasync.py`` generates the synchronous
``RedisStore`` in ``coatcheck/stores/_sync/redis.py``. Operator documentation (URL options,
key layout, memory, failure behaviour, limits): ``docs/stores/redis.md``.

Key layout (``{prefix}`` defaults to ``coatcheck:``)::

    {prefix}{<shard hex>}:s:<digest hex>    HASH    one session, TTL = expires_at + grace
    {prefix}{<user shard hex>}:u:<user id>  ZSET    a user's sessions: digest hex -> created_at
    {prefix}{<slot tag>}:p:<public id>      STRING  a session's key name, same TTL as the session
    {prefix}token_key                       STRING  the store's own token key, no TTL

The ``{<shard hex>}`` part is a Redis Cluster hash tag. A logged-in session's shard is the
user's keyed shard (``TokenCodec.user_shard``, under the manager's token key), so every session
of a user and the user's index live in one slot: the per-user limit, rotation and "log out
everywhere" are single Lua scripts, atomic on a cluster too. Anonymous sessions have a random
shard and appear in no index.

A session's *public id* (what listings show, ``delete_by_public_id`` takes) begins with the
Redis Cluster slot of its keys; its ``:p:`` key is tagged with a tag in that same slot
(:func:`coatcheck.stores.cluster_slots.slot_tag`), named in the session's ``pk`` field, and
written, extended and deleted by the same scripts as the session, so it lives exactly as long.

Sessions of ``cc1_`` tokens (issued before token version 2) carry the unkeyed shard and are
listed in the user's *legacy index*, named by that shard. Until they have expired,
``list_user``, ``delete_user`` and the per-user limit read both indexes; the legacy index may
be in another slot, so the limit evicts a legacy session just after its script, not inside it.

Redis deletes a session key by itself at ``expires_at`` plus ``expired_grace`` (PEXPIREAT;
one hour by default, so a late visitor is told "expired", not "unknown"); the index key's TTL
is pushed to its latest member's expiry, and scripts drop index members whose session key no
longer exists. ``purge_expired`` still deletes what the caller's clock calls expired.
"""

from __future__ import annotations

import math
import threading
from collections.abc import AsyncIterator, Generator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, Final, TypeAlias, cast
from urllib.parse import parse_qsl, unquote, urlsplit

import redis.asyncio
import redis.asyncio.cluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.crc import key_slot
from redis.exceptions import (
    AskError,
    AuthenticationError,
    ClusterDownError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ...config import flag
from ...core.errors import (
    CoatcheckError,
    ConfigError,
    SessionConflict,
    SessionGone,
    SessionLimitReached,
    StoreUnavailable,
)
from ...core.policy import WritePlan
from ...core.records import (
    Kind,
    Revocation,
    SessionRecord,
    Tombstone,
    UserLimit,
    decode_value,
    encode_value,
    public_id_bytes,
)
from ...core.tokens import (
    KEY_BYTES,
    SessionKey,
    TokenCodec,
    configured_token_key,
    new_token_key,
    unkeyed_user_shard,
)
from .. import redis_mux
from ..base import DEFAULT_PURGE_BATCH
from ..cluster_slots import slot_tag
from .redis_lane import AsyncCommandPath, AsyncLane

DEFAULT_PREFIX: Final = "coatcheck:"
DEFAULT_PROTOCOL: Final = 2  # measured faster than RESP3 for a session lookup (docs)
DEFAULT_SOCKET_TIMEOUT: Final = 2.0
DEFAULT_CONNECT_TIMEOUT: Final = 2.0
DEFAULT_EXPIRED_GRACE: Final = 3600.0  # keep an expired session an hour: "expired", not "unknown"
MIN_SERVER_VERSION: Final = (7, 0)  # PEXPIREAT ... GT

Client: TypeAlias = "redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster"
Arg: TypeAlias = "str | int | float"

# --- Lua -------------------------------------------------------------------------------
#
# Every script touches keys of one hash slot only: the session keys it is given, and keys it
# derives from them that carry the same {shard} tag (a user's index and its members).

_LUA_HELPERS: Final = """
-- Push key k's expiry out to ms, never pull it in. PEXPIREAT GT treats a key without a TTL
-- as "infinite" and leaves it alone, so a fresh key gets its first TTL explicitly.
local function extend(k, ms)
  if redis.call('PEXPIREAT', k, ms, 'GT') == 0 and redis.call('PTTL', k) == -1 then
    redis.call('PEXPIREAT', k, ms)
  end
end

-- Delete session key k and the public-id key its 'pk' field names (same slot); given a
-- reason, leave a tombstone beside it (same {shard}, type t) with the reason, the time and
-- the session's expiry, expiring when the session would have. Returns 1 if k existed.
local function drop(k, reason, at)
  local f = redis.call('HMGET', k, 'pk', 'exp')
  if f[1] then redis.call('DEL', f[1]) end
  if reason and f[2] then
    local tomb = string.sub(k, 1, -68) .. ':t:' .. string.sub(k, -64)
    redis.call('HSET', tomb, 'reason', reason, 'at', at, 'exp', f[2])
    redis.call('PEXPIREAT', tomb, string.format('%d', math.ceil(tonumber(f[2]) * 1000)))
  end
  return redis.call('DEL', k)
end

-- cmd key ARGV[first..last], in slices that stay below Lua's unpack() limit. Slices are an
-- even number of arguments, so field/value pairs are never split.
local function call_sliced(cmd, key, first, last)
  local i = first
  while i <= last do
    local j = math.min(i + 999, last)
    redis.call(cmd, key, unpack(ARGV, i, j))
    i = j + 1
  end
end
"""

# KEYS[1] session.  ARGV: expected version or '', expires-at ms, index key base
# '{prefix}{shard}:u:', n = number of fields to delete, n field names, then field/value pairs
# to set (always at least seen and exp).  Returns {1, new version} | {0} gone | {2, version}.
UPDATE_LUA: Final = (
    _LUA_HELPERS
    + """
local key = KEYS[1]
local f = redis.call('HMGET', key, 'v', 'user', 'pk')
if not f[1] then return {0} end
local v = tonumber(f[1])
if ARGV[1] ~= '' and tonumber(ARGV[1]) ~= v then return {2, v} end
local ndel = tonumber(ARGV[4])
if ndel > 0 then call_sliced('HDEL', key, 5, 4 + ndel) end
call_sliced('HSET', key, 5 + ndel, #ARGV)
redis.call('HSET', key, 'v', v + 1)
redis.call('PEXPIREAT', key, ARGV[2])
if f[2] then extend(ARGV[3] .. f[2], ARGV[2]) end
if f[3] then redis.call('PEXPIREAT', f[3], ARGV[2]) end
return {1, v + 1}
"""
)

# KEYS[1] new session, then KEYS[2] the user's index if ARGV[1] == '1', then the replaced
# session if ARGV[2] == '1' (same slot).  ARGV: 1 has index, 2 has old, 3 limit (0 = none),
# 4 refuse ('1'), 5 now, 6 new digest hex, 7 created, 8 expires-at ms, 9 session key base
# of the index's members '{prefix}{shard}:s:', 10 old digest hex, 11 old index key base,
# 12 n, then n pairs (digest hex, created) of the user's live legacy browser sessions (read
# by the caller: their index may be in another slot), then field/value pairs of the new hash.
# Returns {1, evicted digest hex...} (a legacy one prefixed 'L': the caller deletes it)
# | {0} replaced session gone | {2} limit refuses.
INSERT_LUA: Final = (
    _LUA_HELPERS
    + """
local new = KEYS[1]
local has_index = ARGV[1] == '1'
local index = has_index and KEYS[2] or nil
local old = nil
if ARGV[2] == '1' then old = KEYS[has_index and 3 or 2] end
local old_user = nil
if old then
  old_user = redis.call('HGET', old, 'user')
  if not old_user and redis.call('EXISTS', old) == 0 then return {0} end
end
local result = {1}
local limit = tonumber(ARGV[3])
local nlegacy = tonumber(ARGV[12])
if index and limit > 0 then
  -- The live browser sessions of this user, oldest first by (created, digest): ZRANGE
  -- orders equal scores by member, and hex order is byte order.
  local now = tonumber(ARGV[5])
  local base = ARGV[9]
  local live = {}
  for _, m in ipairs(redis.call('ZRANGE', index, 0, -1)) do
    if m ~= ARGV[10] and m ~= ARGV[6] then
      local f = redis.call('HMGET', base .. m, 'kind', 'exp')
      if not f[1] then
        redis.call('ZREM', index, m)  -- its session expired or vanished
      elseif f[1] == 'browser' and tonumber(f[2]) > now then
        live[#live + 1] = m
      end
    end
  end
  local legacy = {}
  if nlegacy > 0 then
    -- Merge in the caller's legacy sessions, again oldest first by (created, digest).
    local created = {}
    for _, m in ipairs(live) do created[m] = tonumber(redis.call('ZSCORE', index, m)) end
    for i = 13, 12 + 2 * nlegacy, 2 do
      local m = ARGV[i]
      if m ~= ARGV[10] and m ~= ARGV[6] then
        live[#live + 1] = m
        created[m] = tonumber(ARGV[i + 1])
        legacy[m] = true
      end
    end
    table.sort(live, function(a, b)
      if created[a] ~= created[b] then return created[a] < created[b] end
      return a < b
    end)
  end
  local excess = #live - limit + 1
  if excess > 0 then
    if ARGV[4] == '1' then return {2} end
    for i = 1, excess do
      local m = live[i]
      if legacy[m] then
        result[#result + 1] = 'L' .. m
      else
        drop(base .. m, 'limit_eviction', ARGV[5])
        redis.call('ZREM', index, m)
        result[#result + 1] = m
      end
    end
  end
end
if old then
  drop(old)
  if old_user then redis.call('ZREM', ARGV[11] .. old_user, ARGV[10]) end
end
drop(new)
call_sliced('HSET', new, 13 + 2 * nlegacy, #ARGV)
redis.call('PEXPIREAT', new, ARGV[8])
local pk = redis.call('HGET', new, 'pk')
if pk then redis.call('SET', pk, new, 'PXAT', ARGV[8]) end
if index then
  redis.call('ZADD', index, ARGV[7], ARGV[6])
  extend(index, ARGV[8])
end
return result
"""
)

# KEYS[1] session.  ARGV: 1 index key base, 2 digest hex, 3 '' or a time: then delete only
# if the stored expiry is at or before it (purge), 4 '' or a user id: then delete only a
# session of that user, 5 '' or a tombstone reason, 6 its time.  Returns 1 if deleted, else 0.
DELETE_LUA: Final = (
    _LUA_HELPERS
    + """
local f = redis.call('HMGET', KEYS[1], 'user', 'exp')
if not f[2] then return 0 end
if ARGV[3] ~= '' and tonumber(f[2]) > tonumber(ARGV[3]) then return 0 end
if ARGV[4] ~= '' and f[1] ~= ARGV[4] then return 0 end
drop(KEYS[1], ARGV[5] ~= '' and ARGV[5] or nil, ARGV[6])
if f[1] then redis.call('ZREM', ARGV[1] .. f[1], ARGV[2]) end
return 1
"""
)

# KEYS[1] user index.  ARGV: session key base, digest hex to keep or '', '' or a tombstone
# reason, its time.  Returns how many sessions were deleted.
DELETE_USER_LUA: Final = (
    _LUA_HELPERS
    + """
local n = 0
local reason = ARGV[3] ~= '' and ARGV[3] or nil
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if m ~= ARGV[2] then
    n = n + drop(ARGV[1] .. m, reason, ARGV[4])
    redis.call('ZREM', KEYS[1], m)
  end
end
return n
"""
)

# KEYS[1] user index.  ARGV: session key base.  Drops members whose session key is gone.
PRUNE_INDEX_LUA: Final = """
local n = 0
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if redis.call('EXISTS', ARGV[1] .. m) == 0 then
    redis.call('ZREM', KEYS[1], m)
    n = n + 1
  end
end
return n
"""

_GONE, _OK, _REFUSED = 0, 1, 2

# --- URL -------------------------------------------------------------------------------

_SCHEMES: Final = {
    "redis": (False, False),
    "rediss": (False, True),
    "redis+cluster": (True, False),
    "rediss+cluster": (True, True),
}
_OPTIONS: Final = (
    "prefix",
    "expired_grace",
    "protocol",
    "socket_timeout",
    "socket_connect_timeout",
    "max_connections",
    "multiplex",
)
_TLS_OPTIONS: Final = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs")


@dataclass(frozen=True, slots=True)
class RedisOptions:
    """Everything a Redis store URL says, checked."""

    cluster: bool
    tls: bool
    host: str
    port: int
    db: int = 0
    username: str | None = None
    password: str | None = None
    prefix: str = DEFAULT_PREFIX
    protocol: int = DEFAULT_PROTOCOL
    socket_timeout: float = DEFAULT_SOCKET_TIMEOUT
    socket_connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    max_connections: int | None = None
    multiplex: bool = True
    expired_grace: float = DEFAULT_EXPIRED_GRACE
    ssl_ca_certs: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_cert_reqs: str = "required"

    @property
    def where(self) -> str:
        """Names the server in error messages (never the password)."""
        if self.cluster:
            return f"Redis Cluster (seed {self.host}:{self.port})"
        return f"Redis at {self.host}:{self.port} db {self.db}"


def parse_url(url: str) -> RedisOptions:
    """``redis[s]://[user:password@]host[:port][/db][?option=value&...]`` or
    ``redis[s]+cluster://[user:password@]host[:port][?option=value&...]``.

    Options: ``prefix``, ``expired_grace`` (seconds an expired session is kept so a late
    visitor hears "expired" rather than "unknown"; default 3600), ``protocol`` (2 or 3),
    ``socket_timeout``, ``socket_connect_timeout`` (seconds), ``max_connections``, ``multiplex``
    (``false``: async requests take a connection per command instead of sharing one pipelined
    connection) and, with
    TLS, ``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``, ``ssl_cert_reqs`` (required,
    optional, none). Anything else is a :class:`ConfigError`.
    """
    try:
        parts = urlsplit(url)
        port = parts.port or 6379
    except ValueError as exc:
        raise ConfigError(f"malformed Redis store URL: {exc}") from None
    if parts.scheme.lower() not in _SCHEMES:
        raise ConfigError(
            f"Redis store URL must start with redis://, rediss://, redis+cluster:// or "
            f"rediss+cluster://, got {parts.scheme!r}"
        )
    cluster, tls = _SCHEMES[parts.scheme.lower()]
    if parts.fragment:
        raise ConfigError("Redis store URL must not have a #fragment")
    path = parts.path.strip("/")
    if cluster and path not in ("", "0"):
        raise ConfigError(f"Redis Cluster has only database 0, the URL names {path!r}")
    try:
        db = int(path) if path else 0
    except ValueError:
        raise ConfigError(f"Redis database must be a number, got {path!r}") from None
    if db < 0:
        raise ConfigError(f"Redis database must be >= 0, got {db}")

    known = _OPTIONS + (_TLS_OPTIONS if tls else ())
    values: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name not in known:
            hint = " (TLS options need rediss://)" if name in _TLS_OPTIONS else ""
            raise ConfigError(
                f"unknown Redis store URL option {name!r}{hint}; known: {', '.join(known)}"
            )
        if name in values:
            raise ConfigError(f"Redis store URL option {name!r} is given twice")
        values[name] = value

    prefix = values.get("prefix", DEFAULT_PREFIX)
    if "{" in prefix or "}" in prefix:
        raise ConfigError(
            f"prefix {prefix!r} must not contain '{{' or '}}' (they would move the cluster "
            "hash tag)"
        )
    protocol = _number(values, "protocol", int, DEFAULT_PROTOCOL)
    if protocol not in (2, 3):
        raise ConfigError(f"protocol must be 2 or 3, got {protocol}")
    cert_reqs = values.get("ssl_cert_reqs", "required")
    if cert_reqs not in ("required", "optional", "none"):
        raise ConfigError(f"ssl_cert_reqs must be required, optional or none, got {cert_reqs!r}")
    max_connections = _number(values, "max_connections", int, None)
    try:
        expired_grace = float(values.get("expired_grace", DEFAULT_EXPIRED_GRACE))
    except ValueError:
        raise ConfigError(
            f"expired_grace must be a number of seconds, got {values['expired_grace']!r}"
        ) from None
    if not expired_grace >= 0:
        raise ConfigError(f"expired_grace must be >= 0 seconds, got {expired_grace}")
    return RedisOptions(
        cluster=cluster,
        tls=tls,
        host=parts.hostname or "localhost",
        port=port,
        db=db,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        prefix=prefix,
        protocol=protocol,
        socket_timeout=_number(values, "socket_timeout", float, DEFAULT_SOCKET_TIMEOUT),
        socket_connect_timeout=_number(
            values, "socket_connect_timeout", float, DEFAULT_CONNECT_TIMEOUT
        ),
        max_connections=max_connections,
        multiplex=flag(values, "multiplex", True),
        expired_grace=expired_grace,
        ssl_ca_certs=values.get("ssl_ca_certs") or None,
        ssl_certfile=values.get("ssl_certfile") or None,
        ssl_keyfile=values.get("ssl_keyfile") or None,
        ssl_cert_reqs=cert_reqs,
    )


def _number(values: dict[str, str], name: str, kind: type[Any], default: Any) -> Any:
    if name not in values:
        return default
    try:
        number = kind(values[name])
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {values[name]!r}") from None
    if not (math.isfinite(number) and number > 0):
        raise ConfigError(f"{name} must be positive, got {values[name]!r}")
    return number


def _connect(options: RedisOptions) -> Client:
    kwargs: dict[str, Any] = {
        "username": options.username,
        "password": options.password,
        "socket_timeout": options.socket_timeout,
        "socket_connect_timeout": options.socket_connect_timeout,
        "protocol": options.protocol,
        # No automatic retries: a write whose reply was lost may have been applied, and a
        # blind retry would apply it twice. Failures surface as StoreUnavailable instead;
        # the pool reconnects on the next call.
        "retry": Retry(NoBackoff(), 0),
    }
    if options.max_connections is not None:
        kwargs["max_connections"] = options.max_connections
    if options.tls:
        kwargs.update(
            ssl=True,
            ssl_ca_certs=options.ssl_ca_certs,
            ssl_certfile=options.ssl_certfile,
            ssl_keyfile=options.ssl_keyfile,
            ssl_cert_reqs=options.ssl_cert_reqs,
        )
    if options.cluster:
        return redis.asyncio.cluster.RedisCluster(host=options.host, port=options.port, **kwargs)
    return redis.asyncio.Redis(host=options.host, port=options.port, db=options.db, **kwargs)


# --- failures --------------------------------------------------------------------------

_FAILURES: Final = (
    RedisConnectionError,  # includes BusyLoadingError, MaxConnectionsError, auth failures
    RedisTimeoutError,
    ClusterDownError,  # includes MasterDownError
    SlotNotCoveredError,
    TryAgainError,
    ReadOnlyError,  # a failed-over primary that is now a replica
    OutOfMemoryError,  # maxmemory reached
    OSError,
)
_FAILURE_REPLIES: Final = ("BUSY ", "LOADING ", "MASTERDOWN ", "CLUSTERDOWN ", "TRYAGAIN ")


def _is_failure(exc: BaseException) -> bool:
    """Is this the server (or the way to it) failing, rather than a mistake in a request?"""
    if isinstance(exc, _FAILURES):
        return True
    if isinstance(exc, ResponseError):
        return str(exc).startswith(_FAILURE_REPLIES)
    if isinstance(exc, RedisClusterException):
        # The slot map could not be loaded: no seed reachable, or slots not covered.
        text = str(exc)
        return (
            isinstance(exc.__cause__, _FAILURES)
            or "cannot be connected" in text
            or ("not covered" in text or "could not agree" in text)
        )
    return False


# --- the store -------------------------------------------------------------------------


class AsyncRedisStore:
    """Sessions in Redis or Redis Cluster. One instance serves a whole application: it holds
    a connection pool and is safe to share between tasks."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.options = parse_url(url)
        self.prefix = self.options.prefix
        self._where = self.options.where
        self._cluster = self.options.cluster
        # Made on first use (a synchronous cluster client reads the slot map when it is made,
        # and a store must be constructible while its server is down).
        self._client: Client | None = None
        self._live: Client | None = None  # the client once it is ready for concurrent use
        # Standalone only: the per-request commands' path (pipelined where it can be).
        self._lane: AsyncCommandPath | None = None
        self._client_lock = threading.Lock()
        self._update_script: AsyncScript
        self._insert_script: AsyncScript
        self._delete_script: AsyncScript
        self._delete_user_script: AsyncScript
        # SCAN patterns: exactly 8 shard hex digits, then the record type.
        glob = _glob_escape(self.prefix)
        self._session_pattern = glob + "{????????}:s:*"
        self._index_pattern = glob + "{????????}:u:*"
        self._tomb_pattern = glob + "{????????}:t:*"
        self._any_pattern = glob + "{????????}:[sup]:*"
        self._prefix_len = len(self.prefix.encode())
        self._token_key_name = self.prefix + "token_key"
        self._token_key: bytes | None = None  # read (or stored) once: see token_key()
        self._tokens: TokenCodec | None = None  # see token_codec()

    def __repr__(self) -> str:
        return f"<AsyncRedisStore {self._where} prefix={self.prefix!r}>"

    def _redis(self) -> Client:
        """The client, made once; its scripts are registered before anyone can see it."""
        with self._client_lock:
            if self._client is None:
                client = _connect(self.options)
                self._update_script = client.register_script(UPDATE_LUA)
                self._insert_script = client.register_script(INSERT_LUA)
                self._delete_script = client.register_script(DELETE_LUA)
                self._delete_user_script = client.register_script(DELETE_USER_LUA)
                if isinstance(client, redis.asyncio.Redis):
                    self._lane = self._new_lane(client)
                self._client = client
            return self._client

    def _new_lane(self, client: redis.asyncio.Redis) -> AsyncCommandPath:
        """The per-request commands' path: one pipelined connection where it can be (the async
        store; the sync one serves threads, with no event loop to pipeline on)."""
        wanted, timeout = self.options.multiplex, self.options.socket_timeout
        pipelined = redis_mux.for_client(client, wanted, timeout)  # unasync: pipelined = None
        return pipelined or AsyncLane(client, timeout, self.options.max_connections)

    async def _connected(self) -> Client:
        """The client, ready for concurrent use (first call only; then ``self._live``)."""
        client = self._redis()
        # redis.asyncio's RedisCluster must load its slot map before concurrent commands, or
        # some of the first ones fail with "Connection closed by server" (redis-py 8.1).
        # The synchronous clients load it in their constructor and have no initialize().
        initialize = getattr(client, "initialize", None)
        if initialize is not None:
            await initialize()
        self._live = client
        return client

    # --- key names -----------------------------------------------------------------

    def session_key(self, key: SessionKey) -> str:
        """The Redis key of a session."""
        return f"{self.prefix}{{{key.shard.hex()}}}:s:{key.digest.hex()}"

    def index_key(self, user_id: str) -> str:
        """The Redis key of a user's session index (once the token codec is known: a manager
        has called :meth:`use_tokens`, or :meth:`token_codec` has run)."""
        if self._tokens is None:
            raise RuntimeError("the store's token codec is not known yet: await token_codec()")
        return self._index_base(self._tokens.user_shard(user_id).hex()) + user_id

    def legacy_index_key(self, user_id: str) -> str:
        """The Redis key of the index of a user's sessions of ``cc1_`` tokens."""
        return self._index_base(unkeyed_user_shard(user_id).hex()) + user_id

    def tombstone_key(self, key: SessionKey) -> str:
        """The Redis key of the tombstone a revoked session leaves (in the session's slot)."""
        return f"{self.prefix}{{{key.shard.hex()}}}:t:{key.digest.hex()}"

    def public_key(self, public_id: bytes) -> str:
        """The Redis key that names the session with this public id (in the session's slot)."""
        tag = slot_tag(int.from_bytes(public_id[:2], "big"))
        return f"{self.prefix}{{{tag}}}:p:{public_id.hex()}"

    def _session_base(self, shard_hex: str) -> str:
        return f"{self.prefix}{{{shard_hex}}}:s:"

    def _index_base(self, shard_hex: str) -> str:
        return f"{self.prefix}{{{shard_hex}}}:u:"

    # --- errors ----------------------------------------------------------------------

    def _translate(self, exc: Exception) -> CoatcheckError | None:
        """What a driver exception means for the caller: StoreUnavailable for a server (or
        the way to it) failing, ConfigError for a URL that names the wrong kind of server, a
        database it lacks or credentials it refuses, None for anything else (a bug or foreign
        data: raised unchanged)."""
        if isinstance(exc, RedisClusterException) and "not enabled" in str(exc):
            return ConfigError(
                f"{self._where}: cluster mode is not enabled on that server; use redis://"
            )
        if isinstance(exc, AskError) and not self._cluster:  # MOVED or ASK
            return ConfigError(f"{self._where} is a Redis Cluster node; use redis+cluster://")
        if isinstance(exc, ResponseError) and "DB index is out of range" in str(exc):
            return ConfigError(
                f"{self._where}: the server has no database {self.options.db} "
                "(its 'databases' setting is lower)"
            )
        if isinstance(exc, AuthenticationError):  # wrong user or password: retrying won't help
            return ConfigError(f"{self._where} refused the credentials: {exc}")
        if _is_failure(exc):
            return StoreUnavailable(f"{self._where} is unavailable: {type(exc).__name__}: {exc}")
        return None

    @contextmanager
    def _guarded(self) -> Generator[None, None, None]:
        """Translates driver exceptions (see _translate) raised inside the block."""
        try:
            yield
        except Exception as exc:
            translated = self._translate(exc)
            if translated is None:
                raise
            raise translated from exc

    # --- the contract ----------------------------------------------------------------

    async def migrate(self) -> None:
        """Checks the server version(s), loads the scripts and makes sure the store's token
        key exists."""
        with self._guarded():
            client = self._live or await self._connected()
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
                        f"{self._where} runs Redis {version}; coatcheck needs Redis >= "
                        f"{'.'.join(map(str, MIN_SERVER_VERSION))}"
                    )
            for script in (
                self._update_script,
                self._insert_script,
                self._delete_script,
                self._delete_user_script,
            ):
                script.sha = await client.script_load(script.script)
        await self.token_key()

    async def token_key(self) -> bytes:
        """Read once per store object: ``SET NX GET`` stores a random key unless one exists and
        answers the existing one, in one atomic command, so every process gets the same."""
        key = self._token_key
        if key is None:
            fresh = new_token_key()
            with self._guarded():
                client = self._live or await self._connected()
                old = await client.set(self._token_key_name, fresh, nx=True, get=True)
            key = fresh if old is None else bytes(cast("bytes", old))
            if len(key) != KEY_BYTES:
                raise ConfigError(
                    f"{self._where}: {self._token_key_name} holds {len(key)} bytes, not a "
                    f"{KEY_BYTES}-byte token key; is another program using prefix {self.prefix!r}?"
                )
            self._token_key = key
        return key

    def use_tokens(self, tokens: TokenCodec) -> None:
        """User-index keys are derived with the manager's codec: one source of truth."""
        current = self._tokens
        if current is not None and not current.same_key(tokens):
            raise ConfigError(
                f"{self._where}: this store object already derives user index keys from "
                "another token key; give every manager of one store the same token key"
            )
        self._tokens = tokens

    async def token_codec(self) -> TokenCodec:
        """The codec user-index keys are derived with: the one a manager gave, else the one a
        manager would resolve (``COATCHECK_TOKEN_KEY``, else :meth:`token_key`)."""
        tokens = self._tokens
        if tokens is None:
            self.use_tokens(TokenCodec(configured_token_key() or await self.token_key()))
            tokens = cast("TokenCodec", self._tokens)
        return tokens

    async def load(self, key: SessionKey) -> SessionRecord | None:
        name = self.session_key(key)
        try:
            client = self._live or await self._connected()
            lane = self._lane
            reply = await (lane.command("HGETALL", name) if lane else client.hgetall(name))
        except Exception as exc:
            translated = self._translate(exc)
            if translated is None:
                raise
            raise translated from exc
        if not reply:
            return None
        return self._decode(key, reply)

    async def load_many(self, keys: Sequence[SessionKey]) -> list[SessionRecord | None]:
        """One pipeline of HGETALLs: one round trip, or on a cluster one per node holding
        any of the keys (redis-py's cluster pipeline groups the commands by node)."""
        if not keys:
            return []
        with self._guarded():
            pipe = (self._live or await self._connected()).pipeline(transaction=False)
            for key in keys:
                pipe.hgetall(self.session_key(key))
            replies = await pipe.execute()
        return [
            self._decode(key, reply) if reply else None
            for key, reply in zip(keys, replies, strict=True)
        ]

    async def insert(
        self,
        record: SessionRecord,
        *,
        replaces: SessionKey | None = None,
        limit: UserLimit | None = None,
    ) -> list[bytes]:
        user = record.user_id
        if user is not None:
            tokens = self._tokens or await self.token_codec()
            if record.key.shard != tokens.user_shard(user):
                raise ValueError(
                    f"a session of user {user!r} must carry the shard TokenCodec.user_shard"
                    "(user_id) under this store's token key (make its token with "
                    "manager.token_codec().new_token(user_id), as the manager does); "
                    f"got {record.key.shard.hex()}"
                )
        if replaces is None or not self._cluster or self._same_slot(record.key, replaces):
            return await self._insert(record, limit, replaces)
        # Cluster, old and new session in different slots (anonymous -> logged in): no
        # script can span both. Insert first (a refusal changes nothing), then take the old
        # session away; if it was already gone, take the new one back.
        with self._guarded():
            exists = await (self._live or await self._connected()).exists(
                self.session_key(replaces)
            )
        if not exists:
            raise SessionGone("the session being replaced no longer exists")
        evicted = await self._insert(record, limit, None, skip=replaces)
        try:
            taken = await self.delete(replaces)
        except Exception:
            await self._discard(record.key)
            raise
        if not taken:
            await self._discard(record.key)
            raise SessionGone("the session being replaced no longer exists")
        return evicted

    async def update(
        self, key: SessionKey, plan: WritePlan, *, expected_version: int | None = None
    ) -> int:
        patch = plan.patch
        shard = key.shard.hex()
        args: list[Arg] = [
            "" if expected_version is None else expected_version,
            _ms(plan.expires_at + self.options.expired_grace),
            self._index_base(shard),
            len(patch.delete),
        ]
        args.extend("d:" + name for name in patch.delete)
        args += ("seen", plan.last_seen_at, "exp", plan.expires_at)
        for name, text in patch.set.items():
            args += ("d:" + name, text)
        keys = [f"{self.prefix}{{{shard}}}:s:{key.digest.hex()}"]
        try:
            if self._live is None:
                await self._connected()
            lane, script = self._lane, self._update_script
            reply = await (
                lane.script(script.sha, UPDATE_LUA, keys, args)
                if lane
                else script(keys=keys, args=args)
            )
        except Exception as exc:
            translated = self._translate(exc)
            if translated is None:
                raise
            raise translated from exc
        if reply[0] == _OK:
            return int(reply[1])
        if reply[0] == _GONE:
            raise SessionGone("the session no longer exists")
        raise SessionConflict(
            f"session changed concurrently (version {reply[1]}, expected {expected_version})"
        )

    async def delete(self, key: SessionKey, *, revoked: Revocation | None = None) -> bool:
        with self._guarded():
            if self._live is None:
                await self._connected()
            deleted = await self._delete_script(
                keys=[self.session_key(key)],
                args=[self._index_base(key.shard.hex()), key.digest.hex(), "", "", *_why(revoked)],
            )
        return bool(deleted)

    async def delete_by_public_id(
        self,
        public_id: bytes,
        *,
        user_id: str | None = None,
        revoked: Revocation | None = None,
    ) -> SessionKey | None:
        """Two round trips: the public-id key names the session, which is then deleted (if it
        is still there, and ``user_id``'s when given) as ``delete`` does."""
        with self._guarded():
            client = self._live or await self._connected()
            name = await client.get(self.public_key(public_id))
        if name is None:
            return None
        p = self._prefix_len
        raw = bytes(cast("bytes", name))
        key = SessionKey(
            bytes.fromhex(raw[p + 1 : p + 9].decode()), bytes.fromhex(raw[p + 13 :].decode())
        )
        args: list[Arg] = [
            self._index_base(key.shard.hex()),
            key.digest.hex(),
            "",
            "" if user_id is None else user_id,
            *_why(revoked),
        ]
        with self._guarded():
            deleted = await self._delete_script(keys=[self.session_key(key)], args=args)
        return key if deleted else None

    async def delete_user(
        self,
        user_id: str,
        *,
        keep: SessionKey | None = None,
        revoked: Revocation | None = None,
    ) -> int:
        """One script per index, the legacy one first: a ``cc1_`` session rotated meanwhile
        has its successor in the user's index, emptied next; one already deleted cannot be
        rotated any more."""
        deleted = 0
        for shard in await self._user_shards(user_id):
            with self._guarded():
                if self._live is None:
                    await self._connected()
                deleted += int(
                    await self._delete_user_script(
                        keys=[self._index_base(shard) + user_id],
                        args=[
                            self._session_base(shard),
                            keep.digest.hex() if keep is not None else "",
                            *_why(revoked),
                        ],
                    )
                )
        return deleted

    async def tombstone(self, key: SessionKey) -> Tombstone | None:
        with self._guarded():
            client = self._live or await self._connected()
            f = cast("dict[bytes, bytes]", await client.hgetall(self.tombstone_key(key)))
        if b"reason" not in f:
            return None
        return Tombstone(f[b"reason"].decode(), float(f[b"at"]), float(f[b"exp"]))

    async def delete_all(self) -> int:
        """Deletes every session and index under this prefix: a SCAN of every (primary)
        node, O(keys in the database)."""
        kind_at = self._prefix_len + 11  # prefix "{" 8 hex "}" ":" -> s or u
        total = 0
        with self._guarded():
            client = self._live or await self._connected()
            async for batch in self._scan(self._any_pattern, DEFAULT_PURGE_BATCH):
                pipe = client.pipeline(transaction=False)
                for name in batch:
                    pipe.execute_command("UNLINK", name)  # ClusterPipeline.unlink is odd
                done = await pipe.execute()
                total += sum(
                    1 for name, n in zip(batch, done, strict=True) if n and name[kind_at] == 115
                )  # 115 = ord("s")
        return total

    async def list_user(self, user_id: str, now: float) -> list[SessionRecord]:
        shards = await self._user_shards(user_id)
        with self._guarded():
            client = self._live or await self._connected()
            pipe = client.pipeline(transaction=False)
            for shard in shards:
                pipe.zrange(self._index_base(shard) + user_id, 0, -1)
            indexes = cast("list[list[bytes]]", await pipe.execute())
            members = [
                (shard, member.decode())
                for shard, found in zip(shards, indexes, strict=True)
                for member in found
            ]
            if not members:
                return []
            pipe = client.pipeline(transaction=False)
            for shard, member in members:
                pipe.hgetall(self._session_base(shard) + member)
            rows = await pipe.execute()
        records = [
            self._decode(SessionKey(bytes.fromhex(shard), bytes.fromhex(member)), row)
            for (shard, member), row in zip(members, rows, strict=True)
            if row
        ]
        live = [r for r in records if r.expires_at > now]
        live.sort(key=lambda r: (r.created_at, r.key.digest))
        return live

    async def purge_expired(self, now: float, *, batch_size: int = DEFAULT_PURGE_BATCH) -> int:
        """Deletes sessions whose stored expiry is at or before ``now``, then drops index
        members whose session is gone. A SCAN of every (primary) node, O(keys)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        p = self._prefix_len
        total = 0
        with self._guarded():
            client = self._live or await self._connected()
            async for batch in self._scan(self._session_pattern, batch_size):
                pipe = client.pipeline(transaction=False)
                for name in batch:
                    pipe.hget(name, "exp")
                expiries = await pipe.execute()
                doomed = [
                    name
                    for name, exp in zip(batch, expiries, strict=True)
                    if exp is not None and float(exp) <= now
                ]
                if not doomed:
                    continue
                # Plain EVAL in pipelines: redis-py's cluster pipeline refuses EVALSHA, and
                # no pipeline can re-load a script after a NOSCRIPT reply.
                pipe = client.pipeline(transaction=False)
                for name in doomed:
                    # Re-checked inside the script: a session touched since the HGET stays.
                    index_base = self._index_base(name[p + 1 : p + 9].decode())
                    pipe.execute_command(
                        "EVAL",
                        DELETE_LUA,
                        1,
                        name,
                        index_base,
                        name[p + 13 :].decode(),
                        now,
                        "",
                        "",
                        "",
                    )
                total += sum(await pipe.execute())
            async for batch in self._scan(self._index_pattern, batch_size):
                pipe = client.pipeline(transaction=False)
                for name in batch:
                    pipe.execute_command(
                        "EVAL",
                        PRUNE_INDEX_LUA,
                        1,
                        name,
                        self._session_base(name[p + 1 : p + 9].decode()),
                    )
                await pipe.execute()
            # Tombstones expire by themselves on the server's clock; these are the ones
            # the caller's clock already calls expired (written once each: no race).
            async for batch in self._scan(self._tomb_pattern, batch_size):
                pipe = client.pipeline(transaction=False)
                for name in batch:
                    pipe.hget(name, "exp")
                expiries = await pipe.execute()
                pipe = client.pipeline(transaction=False)
                for name, exp in zip(batch, expiries, strict=True):
                    if exp is not None and float(exp) <= now:
                        pipe.execute_command("UNLINK", name)
                await pipe.execute()
        return total

    async def count_active(self, since: float, now: float) -> int:
        """Sessions written at or after ``since`` and not expired at ``now``: a SCAN of
        every (primary) node, O(keys)."""
        count = 0
        with self._guarded():
            client = self._live or await self._connected()
            async for batch in self._scan(self._session_pattern, DEFAULT_PURGE_BATCH):
                pipe = client.pipeline(transaction=False)
                for name in batch:
                    pipe.hmget(name, ["seen", "exp"])
                for seen, exp in await pipe.execute():
                    if seen is not None and exp is not None:
                        count += float(seen) >= since and float(exp) > now
        return count

    async def close(self) -> None:
        with self._client_lock:
            client, self._client, self._live = self._client, None, None
            lane, self._lane = self._lane, None
        if lane is not None:
            await lane.close()
        if client is not None:
            await client.aclose()

    # --- helpers ---------------------------------------------------------------------

    async def _insert(
        self,
        record: SessionRecord,
        limit: UserLimit | None,
        replaces: SessionKey | None,
        *,
        skip: SessionKey | None = None,
    ) -> list[bytes]:
        """One script in one slot: evict or refuse, drop the replaced session, write. ``skip``:
        a session being replaced by the caller (not by the script), never a victim."""
        key, user = record.key, record.user_id
        shard = key.shard.hex()
        limited = limit is not None and user is not None and record.kind == "browser"
        legacy: list[tuple[str, float]] = []
        if limited and user is not None:
            legacy = await self._legacy_sessions(user, record.last_seen_at, replaces or skip)
        keys = [self.session_key(key)]
        if user is not None:
            keys.append(self._index_base(shard) + user)  # insert() checked: the user's shard
        if replaces is not None:
            keys.append(self.session_key(replaces))
        args: list[Arg] = [
            "1" if user is not None else "0",
            "1" if replaces is not None else "0",
            limit.max_sessions if limit is not None and limited else 0,
            "1" if limit is not None and limited and limit.refuse else "0",
            # "now" for liveness: the moment of this write (a rotation keeps created_at).
            record.last_seen_at,
            key.digest.hex(),
            record.created_at,
            _ms(record.expires_at + self.options.expired_grace),
            self._session_base(shard),
            replaces.digest.hex() if replaces is not None else "",
            self._index_base(replaces.shard.hex()) if replaces is not None else "",
            len(legacy),
        ]
        for digest_hex, created in legacy:
            args += (digest_hex, created)
        args += _fields(record, self.public_key(public_id_bytes(key)))
        with self._guarded():
            if self._live is None:
                await self._connected()
            reply = await self._insert_script(keys=keys, args=args)
        if reply[0] == _GONE:
            raise SessionGone("the session being replaced no longer exists")
        if reply[0] == _REFUSED:
            raise SessionLimitReached(
                f"user {user!r} already has {limit.max_sessions if limit else 0} browser session(s)"
            )
        evicted = [m.decode() for m in reply[1:]]
        for victim in evicted:
            if victim.startswith("L") and user is not None:
                legacy_key = SessionKey(unkeyed_user_shard(user), bytes.fromhex(victim[1:]))
                await self.delete(
                    legacy_key, revoked=Revocation("limit_eviction", record.last_seen_at)
                )
        return [bytes.fromhex(victim.removeprefix("L")) for victim in evicted]

    async def _user_shards(self, user_id: str) -> list[str]:
        """The hex shards of a user's indexes: the legacy one (``cc1_`` sessions), then the
        user's own, under the token key."""
        tokens = self._tokens or await self.token_codec()
        shards = [unkeyed_user_shard(user_id).hex(), tokens.user_shard(user_id).hex()]
        return shards if shards[0] != shards[1] else shards[1:]

    async def _legacy_sessions(
        self, user: str, now: float, skip: SessionKey | None
    ) -> list[tuple[str, float]]:
        """The user's live browser sessions of ``cc1_`` tokens as (digest hex, created), for
        the per-user limit: read from the legacy index (one round trip while it is empty)."""
        shard = unkeyed_user_shard(user).hex()
        if self._tokens is not None and shard == self._tokens.user_shard(user).hex():
            return []  # one index after all: the script reads it
        base = self._session_base(shard)
        with self._guarded():
            client = self._live or await self._connected()
            members = cast(
                "list[tuple[bytes, float]]",
                await client.zrange(self._index_base(shard) + user, 0, -1, withscores=True),
            )
            if not members:
                return []
            pipe = client.pipeline(transaction=False)
            for member, _ in members:
                pipe.hmget(base + member.decode(), ["kind", "exp"])
            rows = await pipe.execute()
        skipped = skip.digest.hex() if skip is not None else None
        return [
            (member.decode(), float(created))
            for (member, created), (kind, exp) in zip(members, rows, strict=True)
            if kind == b"browser"
            and exp is not None
            and float(exp) > now
            and member.decode() != skipped
        ]

    async def _discard(self, key: SessionKey) -> None:
        """Best effort: undo a just-inserted session (it expires by itself otherwise)."""
        with suppress(Exception):  # the original error is what the caller must see
            await self.delete(key)

    def _same_slot(self, a: SessionKey, b: SessionKey) -> bool:
        return a.shard == b.shard or key_slot(a.shard.hex().encode()) == key_slot(
            b.shard.hex().encode()
        )

    async def _scan(self, pattern: str, size: int) -> AsyncIterator[list[bytes]]:
        """Keys matching ``pattern`` on every (primary) node, in lists of at most ``size``."""
        batch: list[bytes] = []
        async for name in (self._live or await self._connected()).scan_iter(
            match=pattern, count=max(size, 100)
        ):
            batch.append(name)
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch

    def _decode(self, key: SessionKey, reply: Any) -> SessionRecord:
        """A session from an HGETALL reply: a flat field/value list (RESP2) or a mapping."""
        try:
            if isinstance(reply, dict):
                return _decode(key, reply)
            it = iter(reply)
            return _decode(key, dict(zip(it, it, strict=True)))
        except (KeyError, ValueError) as exc:
            raise ValueError(
                f"{self._where}: {self.session_key(key)} is not a coatcheck session "
                f"({type(exc).__name__}: {exc}); is another program using prefix "
                f"{self.prefix!r}?"
            ) from exc


_KINDS: Final[dict[bytes, Kind]] = {b"browser": "browser", b"api": "api"}


def _decode(key: SessionKey, f: dict[bytes, bytes]) -> SessionRecord:
    """A session hash as a record. On the hot path of every request: kept to one pass."""
    data: dict[str, Any] = {}
    for name, raw in f.items():
        if name.startswith(b"d:"):
            data[name[2:].decode()] = decode_value(raw.decode())
    user = f.get(b"user")
    auth = f.get(b"auth")
    ip = f.get(b"ip")
    ua = f.get(b"ua")
    return SessionRecord(
        key,
        None if user is None else user.decode(),
        _KINDS[f[b"kind"]],
        float(f[b"created"]),
        float(f[b"seen"]),
        None if auth is None else float(auth),
        float(f[b"exp"]),
        None if ip is None else ip.decode(),
        None if ua is None else ua.decode(),
        data,
        int(f[b"v"]),
        b"rem" in f,
    )


def _fields(record: SessionRecord, public_key: str) -> list[Arg]:
    """The field/value pairs of a new session hash."""
    out: list[Arg] = [
        "pk",
        public_key,
        "kind",
        record.kind,
        "created",
        record.created_at,
        "seen",
        record.last_seen_at,
        "exp",
        record.expires_at,
        "v",
        record.version,
    ]
    for name, value in (
        ("user", record.user_id),
        ("auth", record.authenticated_at),
        ("ip", record.client_ip),
        ("ua", record.user_agent),
    ):
        if value is not None:
            out += (name, value)
    if record.remember:
        out += ("rem", 1)
    for name, data in record.data.items():
        out += ("d:" + name, encode_value(name, data))
    return out


def _why(revoked: Revocation | None) -> tuple[str, Arg]:
    """The tombstone arguments of the delete scripts: ('', '') for none."""
    return ("", "") if revoked is None else (revoked.reason, revoked.at)


def _ms(seconds: float) -> int:
    """PEXPIREAT's integer milliseconds, rounded up so the key outlives ``expires_at``."""
    return math.ceil(seconds * 1000)


def _glob_escape(text: str) -> str:
    """``text`` as a literal inside a SCAN MATCH pattern."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
