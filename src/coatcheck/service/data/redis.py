"""``redis://`` and ``redis+cluster://``: the service data as keys under one hash tag.

Every key is ``<prefix>{coatcheck-service}:...`` (``prefix`` from the URL, ``coatcheck:`` by
default), so on a Cluster all of it lives in one slot: scripts and multi-key reads stay on one
node. The data is small (users, service keys, a few throttle counters, at most about
``EVENTS_KEPT`` events), so one node holds it easily; that node also serves every event
stream's blocking read and every failed login's counter, the two hot spots.

* values: plain string keys ``...:kv:<key>``, with a sorted set ``...:kv-index`` of the keys
  (updated in the same script) so that ``scan`` is a ``ZRANGE BYLEX`` range read, sorted by
  Redis itself, and never walks the node's whole key space (where the sessions are too);
* hits: a hash ``...:hits:<key>`` {window number, count} that expires when its window ends;
* events: a Stream ``...:events`` whose entry ids are ``<n>-0`` for the integer event id
  ``n`` (from ``INCR ...:event-id`` in the same script), trimmed with ``MAXLEN ~``;
  ``wait_events`` is ``XREAD BLOCK`` in slices shorter than the socket timeout.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any, Final

from redis.commands.core import AsyncScript

from ..._async.stores.redis_connections import Client, new_client
from ...stores.redis.failures import guarded
from ...stores.redis.url import parse_url
from .base import (
    EVENTS_KEPT,
    check_after,
    check_key,
    check_limit,
    check_prefix,
    check_timeout,
    check_value,
    check_window,
    window_end,
    window_number,
)

HASH_TAG: Final = "{coatcheck-service}"
_MGET_CHUNK: Final = 500
_EXPIRY_MARGIN_MS: Final = 1000  # a hit counter outlives its window by this much

PUT_LUA: Final = """
if ARGV[2] == '1' and redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], 0, ARGV[3])
return 1
"""
DELETE_LUA: Final = """
local gone = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return gone
"""
HIT_LUA: Final = """
local count
if redis.call('HGET', KEYS[1], 'w') == ARGV[1] then
  count = redis.call('HINCRBY', KEYS[1], 'c', 1)
else
  redis.call('HSET', KEYS[1], 'w', ARGV[1], 'c', 1)
  count = 1
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return count
"""
# If the counter was lost while the stream was kept (eviction), continue after the stream.
APPEND_LUA: Final = """
local n = redis.call('INCR', KEYS[1])
local added = redis.pcall('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], n .. '-0',
                          'p', ARGV[1], 'at', ARGV[2])
if type(added) == 'table' and added.err then
  local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
  n = tonumber(string.match(last[1][1], '^(%d+)')) + 1
  redis.call('SET', KEYS[1], n)
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], n .. '-0', 'p', ARGV[1], 'at', ARGV[2])
end
return n
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entries(raw: Any) -> list[tuple[int, str]]:
    """Stream entries ``[(b"<n>-0", {b"p": payload, ...}), ...]`` -> ``[(n, payload)]``."""
    found = []
    for entry_id, fields in raw or ():
        payload = fields.get(b"p", fields.get("p")) if isinstance(fields, dict) else None
        if payload is not None:
            found.append((int(_text(entry_id).split("-", 1)[0]), _text(payload)))
    return found


def _read_reply(raw: Any) -> list[tuple[int, str]]:
    """XREAD's reply for one stream: a list of [name, entries] (RESP2) or a dict (RESP3)."""
    if not raw:
        return []
    if isinstance(raw, dict):
        streams = list(raw.values())
        first = streams[0]
        return _entries(first[0] if first and isinstance(first[0], list) else first)
    return _entries(raw[0][1])


class RedisServiceData:
    """The service data on the session store's Redis server or Cluster."""

    def __init__(self, url: str, *, events_kept: int = EVENTS_KEPT) -> None:
        self.url = url
        self.options = parse_url(url)
        self.events_kept = events_kept
        base = f"{self.options.prefix}{HASH_TAG}:"
        self._kv = base + "kv:"
        self._index = base + "kv-index"
        self._hits = base + "hits:"
        self._events = base + "events"
        self._event_id = base + "event-id"
        self._client: Client | None = None
        self._ready = False
        self._lock: asyncio.Lock | None = None
        self._scripts: dict[str, AsyncScript] = {}  # by Lua source, registered on the client

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.options.where} keys={self._kv[:-3]}*>"

    async def _live(self) -> Client:
        """The client, made on first use; a cluster client loads its slot map first."""
        if self._ready and self._client is not None:
            return self._client
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._client is None:
                client = new_client(self.options)
                for lua in (PUT_LUA, DELETE_LUA, HIT_LUA, APPEND_LUA):
                    self._scripts[lua] = client.register_script(lua)
                self._client = client
            if not self._ready:
                initialize = getattr(self._client, "initialize", None)
                with guarded(self.options):
                    if initialize is not None:
                        await initialize()
                self._ready = True
            return self._client

    async def _script(self, lua: str, keys: list[str], args: list[Any]) -> Any:
        await self._live()
        with guarded(self.options):
            return await self._scripts[lua](keys=keys, args=args)

    async def migrate(self) -> None:
        await self.ping()

    async def ping(self) -> None:
        client = await self._live()
        with guarded(self.options):
            await client.ping()

    async def get(self, key: str) -> str | None:
        client = await self._live()
        with guarded(self.options):
            raw = await client.get(self._kv + check_key(key))
        return None if raw is None else _text(raw)

    async def put(self, key: str, value: str, *, only_if_absent: bool = False) -> bool:
        check_key(key)
        args = [check_value(value), "1" if only_if_absent else "0", key]
        return bool(await self._script(PUT_LUA, [self._kv + key, self._index], args))

    async def delete(self, key: str) -> bool:
        check_key(key)
        gone = await self._script(DELETE_LUA, [self._kv + key, self._index], [key])
        return bool(gone)

    async def scan(self, prefix: str) -> list[tuple[str, str]]:
        check_prefix(prefix)
        client = await self._live()
        low, high = (f"[{prefix}", f"({prefix}\x7f") if prefix else ("-", "+")
        with guarded(self.options):
            names = [_text(n) for n in await client.zrange(self._index, low, high, bylex=True)]
            found = []
            for start in range(0, len(names), _MGET_CHUNK):
                chunk = names[start : start + _MGET_CHUNK]
                values = await client.mget([self._kv + name for name in chunk])
                found += [
                    (n, _text(v)) for n, v in zip(chunk, values, strict=True) if v is not None
                ]
        return found

    async def hit(self, key: str, window: float, now: float) -> int:
        check_key(key)
        window = check_window(window)
        ttl_ms = math.ceil((window_end(window, now) - now) * 1000) + _EXPIRY_MARGIN_MS
        args = [str(window_number(window, now)), max(1, ttl_ms)]
        return int(await self._script(HIT_LUA, [self._hits + key], args))

    async def clear_hits(self, key: str) -> None:
        client = await self._live()
        with guarded(self.options):
            await client.delete(self._hits + check_key(key))

    async def append_event(self, payload: str, now: float) -> int:
        args = [check_value(payload), repr(float(now)), self.events_kept]
        return int(await self._script(APPEND_LUA, [self._event_id, self._events], args))

    async def events_after(self, after: int, limit: int = 100) -> list[tuple[int, str]]:
        start, count = f"{check_after(after) + 1}-0", check_limit(limit)
        client = await self._live()
        with guarded(self.options):
            return _entries(await client.xrange(self._events, start, "+", count=count))

    async def oldest_event_id(self) -> int | None:
        client = await self._live()
        with guarded(self.options):
            first = _entries(await client.xrange(self._events, "-", "+", count=1))
        return first[0][0] if first else None

    async def newest_event_id(self) -> int | None:
        """The stream's last entry, not the ``event-id`` counter: the entry is what readers
        see, and it stays right when the counter alone was lost (eviction)."""
        client = await self._live()
        with guarded(self.options):
            last = _entries(await client.xrevrange(self._events, "+", "-", count=1))
        return last[0][0] if last else None

    async def wait_events(self, after: int, timeout: float) -> list[tuple[int, str]]:  # noqa: ASYNC109 (spec 12's API)
        after = check_after(after)
        deadline = time.monotonic() + check_timeout(timeout)
        # A blocked read must end before the socket timeout, or it would look like an outage.
        longest = max(0.001, self.options.socket_timeout / 2)
        found = await self.events_after(after)
        client = await self._live()
        while not found:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            block_ms = max(1, int(min(remaining, longest) * 1000))
            with guarded(self.options):
                raw = await client.xread({self._events: f"{after}-0"}, count=100, block=block_ms)
            found = _read_reply(raw)
        return found

    async def close(self) -> None:
        client, self._client, self._ready = self._client, None, False
        if client is not None:
            await client.aclose()
