"""The Redis store's Lua scripts, and the arguments each one takes.

Every script touches keys of one hash slot only: the session keys it is given, and keys it
derives from them that carry the same ``{shard}`` tag (a user's index and its members). Each
one runs atomically, so a check and the write it guards cannot be split by another client.
"""

from __future__ import annotations

import math
from typing import Final

from ...core.apitokens import API_TOKEN_KEY
from ...core.policy import WritePlan
from ...core.records import Revocation, SessionRecord, UserLimit, public_id_bytes
from ...core.tokens import SessionKey
from .keys import KeyLayout
from .record import Arg, fields

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
# session of that user, 5 '' or a tombstone reason, 6 its time, 7 (optional) '1': delete only
# an API token, '0': only what is not one (as core.apitokens.is_api_token: kind 'api' and a
# JSON object in the reserved data field).  Returns 1 if deleted, else 0.
DELETE_LUA: Final = (
    _LUA_HELPERS
    + f"local TOKEN_FIELD = 'd:{API_TOKEN_KEY}'"
    + """
local f = redis.call('HMGET', KEYS[1], 'user', 'exp', 'kind', TOKEN_FIELD)
if not f[2] then return 0 end
if ARGV[3] ~= '' and tonumber(f[2]) > tonumber(ARGV[3]) then return 0 end
if ARGV[4] ~= '' and f[1] ~= ARGV[4] then return 0 end
if ARGV[7] and ARGV[7] ~= '' then
  local token = f[3] == 'api' and f[4] ~= false and string.sub(f[4], 1, 1) == '{'
  if token ~= (ARGV[7] == '1') then return 0 end
end
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

# KEYS[1] a marker.  ARGV: now in ms.  Deletes the marker if it expires at or before then;
# checked and deleted in one step, so a marker written again meanwhile stays.
PURGE_MARKER_LUA: Final = """
local at = redis.call('PEXPIRETIME', KEYS[1])
if at >= 0 and at <= tonumber(ARGV[1]) then return redis.call('DEL', KEYS[1]) end
return 0
"""

GONE, OK, REFUSED = 0, 1, 2  # the first element of the update and insert scripts' replies


def why(revoked: Revocation | None) -> tuple[str, Arg]:
    """The tombstone arguments of the delete scripts: ('', '') for none."""
    return ("", "") if revoked is None else (revoked.reason, revoked.at)


def only(api_token: bool | None) -> str:
    """``DELETE_LUA``'s kind argument: '' any record, '1' API tokens only, '0' none of them."""
    return "" if api_token is None else "1" if api_token else "0"


def update_args(
    plan: WritePlan, expected_version: int | None, grace: float, index_base: str
) -> list[Arg]:
    """``UPDATE_LUA``'s ARGV for one save: the patch's deleted and set data keys as fields,
    the key's expiry ``grace`` seconds after the session's."""
    patch = plan.patch
    args: list[Arg] = [
        "" if expected_version is None else expected_version,
        math.ceil((plan.expires_at + grace) * 1000),  # keys.ms, inline: on every request
        index_base,
        len(patch.delete),
    ]
    args.extend("d:" + name for name in patch.delete)
    args += ("seen", plan.last_seen_at, "exp", plan.expires_at)
    for name, text in patch.set.items():
        args += ("d:" + name, text)
    return args


def insert_args(
    record: SessionRecord,
    limit: UserLimit | None,
    replaces: SessionKey | None,
    legacy: list[tuple[str, float]],
    expires_ms: int,
    keys: KeyLayout,
) -> list[Arg]:
    """``INSERT_LUA``'s ARGV: the limit applies to a user's browser sessions only."""
    key, user = record.key, record.user_id
    limited = limit is not None and user is not None and record.kind == "browser"
    args: list[Arg] = [
        "1" if user is not None else "0",
        "1" if replaces is not None else "0",
        limit.max_sessions if limit is not None and limited else 0,
        "1" if limit is not None and limited and limit.refuse else "0",
        # "now" for liveness: the moment of this write (a rotation keeps created_at).
        record.last_seen_at,
        key.digest.hex(),
        record.created_at,
        expires_ms,
        keys.session_base(key.shard.hex()),
        replaces.digest.hex() if replaces is not None else "",
        keys.index_base(replaces.shard.hex()) if replaces is not None else "",
        len(legacy),
    ]
    for digest_hex, created in legacy:
        args += (digest_hex, created)
    args += fields(record, keys.public(public_id_bytes(key)))
    return args
