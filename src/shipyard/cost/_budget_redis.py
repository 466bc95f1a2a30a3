"""Budget counters in Redis, shared by every replica: one Lua script per reserve, one per settle.

Keys (all under one hash tag, `{prefix}`, so a Redis Cluster keeps them on one node and a script
may touch any of them):

    {prefix}:b:<budget>:<scope>:<value>:<window>      hash: spent, reserved (integers)
    ...:r                                            sorted set: request id -> when its hold lapses (ms)
    ...:a                                            hash: request id -> amount held
    {prefix}:req:<request id>                        hash: state = reserved | settled

`reserve` first drops lapsed holds of each counter (a crashed replica's), then checks every counter
and only then writes, so a call holds all its counters or none; a request id seen before answers ok
without holding twice. `settle` drops the request's holds and adds what was spent, once per request
id (a retry, or a settle after the hold lapsed, counts it once).
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from shipyard.cost._budgets import REQUEST_TTL_S, Counter, Reserved

RESERVE = """
local req = KEYS[1]
local now = tonumber(ARGV[1])
local lapse = tonumber(ARGV[2])
local req_ttl = tonumber(ARGV[3])
local n = #KEYS - 1
local levels = {}
for i = 1, n do
  local k = KEYS[i + 1]
  local z, a = k .. ':r', k .. ':a'
  local lapsed = redis.call('ZRANGEBYSCORE', z, '-inf', now)
  for _, r in ipairs(lapsed) do
    local amt = tonumber(redis.call('HGET', a, r) or '0')
    redis.call('HINCRBY', k, 'reserved', -amt)
    redis.call('HDEL', a, r)
    redis.call('ZREM', z, r)
  end
  local spent = tonumber(redis.call('HGET', k, 'spent') or '0')
  local reserved = tonumber(redis.call('HGET', k, 'reserved') or '0')
  levels[#levels + 1] = spent
  levels[#levels + 1] = reserved
end
if redis.call('EXISTS', req) == 1 then
  return {1, 0, 0, levels}
end
for i = 1, n do
  local limit = tonumber(ARGV[1 + 3 * i])
  local amount = tonumber(ARGV[2 + 3 * i])
  local spent, reserved = levels[2 * i - 1], levels[2 * i]
  if spent + reserved + amount > limit then
    local exhausted = 0
    if spent + amount > limit then exhausted = 1 end
    return {0, i, exhausted, levels}
  end
end
for i = 1, n do
  local k = KEYS[i + 1]
  local amount = tonumber(ARGV[2 + 3 * i])
  local ttl = tonumber(ARGV[3 + 3 * i])
  redis.call('HINCRBY', k, 'reserved', amount)
  redis.call('ZADD', k .. ':r', lapse, ARGV[4 + 3 * n])
  redis.call('HSET', k .. ':a', ARGV[4 + 3 * n], amount)
  redis.call('PEXPIRE', k, ttl)
  redis.call('PEXPIRE', k .. ':r', ttl)
  redis.call('PEXPIRE', k .. ':a', ttl)
  levels[2 * i] = levels[2 * i] + amount
end
redis.call('HSET', req, 'state', 'reserved')
redis.call('PEXPIRE', req, req_ttl)
return {1, 0, 0, levels}
"""

SETTLE = """
local req = KEYS[1]
local rid = ARGV[1]
local req_ttl = tonumber(ARGV[2])
if redis.call('HGET', req, 'state') == 'settled' then
  return 0
end
local n = #KEYS - 1
for i = 1, n do
  local k = KEYS[i + 1]
  local amt = redis.call('HGET', k .. ':a', rid)
  if amt then
    redis.call('HINCRBY', k, 'reserved', -tonumber(amt))
    redis.call('HDEL', k .. ':a', rid)
    redis.call('ZREM', k .. ':r', rid)
  end
  redis.call('HINCRBY', k, 'spent', tonumber(ARGV[2 + i]))
  local ttl = tonumber(ARGV[2 + n + i])
  if redis.call('PTTL', k) < ttl then redis.call('PEXPIRE', k, ttl) end
end
redis.call('HSET', req, 'state', 'settled')
redis.call('PEXPIRE', req, req_ttl)
return 1
"""

LEVELS = """
local now = tonumber(ARGV[1])
local out = {}
for i = 1, #KEYS do
  local k = KEYS[i]
  local z, a = k .. ':r', k .. ':a'
  local lapsed = redis.call('ZRANGEBYSCORE', z, '-inf', now)
  for _, r in ipairs(lapsed) do
    local amt = tonumber(redis.call('HGET', a, r) or '0')
    redis.call('HINCRBY', k, 'reserved', -amt)
    redis.call('HDEL', a, r)
    redis.call('ZREM', z, r)
  end
  out[#out + 1] = tonumber(redis.call('HGET', k, 'spent') or '0')
  out[#out + 1] = tonumber(redis.call('HGET', k, 'reserved') or '0')
end
return out
"""

RAISE = """
local spent = tonumber(redis.call('HGET', KEYS[1], 'spent') or '0')
local floor = tonumber(ARGV[1])
if floor > spent then
  redis.call('HSET', KEYS[1], 'spent', floor)
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
  return floor
end
return spent
"""

DEFAULT_URL = "redis://127.0.0.1:6379/0"


def redis_url(configured: str | None) -> str:
    """`SHIPYARD_REDIS_URL`, else `budgets.redis_url`, else the local Redis."""
    return os.environ.get("SHIPYARD_REDIS_URL") or configured or DEFAULT_URL


def _pairs(flat: list[Any]) -> list[tuple[int, int]]:
    return [(int(flat[i]), int(flat[i + 1])) for i in range(0, len(flat), 2)]


class RedisBackend:
    """Counters in Redis (`redis.asyncio`): each method is one script call, one round trip.

    Args:
        url: the Redis URL.
        prefix: the key prefix (the hash tag of every key).
        timeout_s: a call slower than this raises (the budget's on_unavailable decides).
    """

    def __init__(self, url: str, prefix: str, *, timeout_s: float = 0.5) -> None:
        import redis.asyncio as aioredis
        from redis.exceptions import NoScriptError

        self.url = url
        self.prefix = prefix
        self.client: Any = aioredis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry_on_timeout=False
        )
        self._reserve = self.client.register_script(RESERVE)
        self._settle = self.client.register_script(SETTLE)
        self._levels = self.client.register_script(LEVELS)
        self._raise = self.client.register_script(RAISE)
        self._no_script = NoScriptError

    def _req(self, rid: str) -> str:
        return f"{self.prefix}:req:{rid}"

    async def _eval(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        """EVALSHA straight through the client (what redis-py's Script object does, without its
        per-call layers: these calls are on every model call's path); a Redis that lost the script
        (a restart, SCRIPT FLUSH) is sent it again."""
        try:
            return await self.client.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
        except self._no_script:
            script.sha = await self.client.script_load(script.script)
            return await self.client.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)

    async def reserve(
        self, rid: str, counters: list[Counter], amounts: list[int], ttl_s: float, now: float
    ) -> Reserved:
        now_ms = int(now * 1000)
        args: list[Any] = [now_ms, now_ms + int(ttl_s * 1000), int(REQUEST_TTL_S * 1000)]
        for c, amount in zip(counters, amounts, strict=True):
            args += [c.limit, amount, int(c.ttl_s * 1000)]
        args.append(rid)
        ok, blocked, exhausted, levels = await self._eval(
            self._reserve, [self._req(rid), *(c.key for c in counters)], args
        )
        return Reserved(bool(ok), _pairs(levels), int(blocked) - 1 if not ok else None, bool(exhausted))

    async def settle(self, rid: str, counters: list[Counter], amounts: list[int], now: float) -> bool:
        args: list[Any] = [rid, int(REQUEST_TTL_S * 1000), *amounts, *(int(c.ttl_s * 1000) for c in counters)]
        done = await self._eval(self._settle, [self._req(rid), *(c.key for c in counters)], args)
        return bool(done)

    async def levels(self, counters: list[Counter], now: float) -> list[tuple[int, int]]:
        flat = await self._eval(self._levels, [c.key for c in counters], [int(now * 1000)])
        return _pairs(flat)

    async def raise_spent(self, counter: Counter, spent: int) -> None:
        await self._eval(self._raise, [counter.key], [spent, int(counter.ttl_s * 1000)])

    async def ping(self) -> None:
        await self.client.ping()

    async def aclose(self) -> None:
        with contextlib.suppress(RuntimeError):  # made on another event loop: nothing to close here
            await self.client.aclose()
