"""Where a session's tier is kept, so a session stays on one tier (warm provider prompt caches)
and only ever moves up: in this process (`memory`) or in Redis, shared by every replica (`redis`).

The tier is kept as its rank (0 = the cheapest tier) and only ever raised, atomically (one Lua
script in Redis), so two replicas deciding the same session's first call at once agree on the higher
tier, and an escalation on one replica is seen by the others on their next call. An interaction's
first routed call makes one round trip (`decide`: read the session's rank, and keep the router's
rank for a new session, or for a harder new turn); an escalation later makes one more (`raise_to`)."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from shipyard.config._routing import SessionsConfig

MEMORY_SESSIONS = 100_000
"""The most sessions the in-process store keeps (the least recently used are dropped first)."""

# KEYS[1] the session's key; ARGV[1] the rank to raise to (-1: only read), ARGV[2] the TTL in ms;
# ARGV[3] 1: raise a session that has a rank, 0: only give a rank to a session without one.
# Returns {the rank kept, the rank before (-1: none)}.
_RAISE = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '-1')
local new = tonumber(ARGV[1])
if new > cur and (cur < 0 or ARGV[3] == '1') then
  redis.call('SET', KEYS[1], new, 'PX', ARGV[2])
  return {new, cur}
end
if cur >= 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return {cur, cur}
"""


class SessionTiers(Protocol):
    """A session's tier rank: read it, or raise it (never lower)."""

    async def get(self, key: str) -> int | None:
        """The session's rank, None when it has none (a new or expired session)."""
        ...

    async def raise_to(self, key: str, rank: int) -> int:
        """Keep at least `rank` for the session; returns the rank now kept."""
        ...

    async def decide(self, key: str, rank: int, *, raise_kept: bool) -> tuple[int, int | None]:
        """A session's first call of an interaction, in one step: give a session without a rank
        `rank`, and raise one that has a lower rank only when `raise_kept`. Returns (the rank now
        kept, the rank it had before; None: it had none)."""
        ...


class MemoryTiers:
    """Session tiers in this process (one machine, or tests)."""

    def __init__(self, ttl_s: float, capacity: int = MEMORY_SESSIONS) -> None:
        self.ttl_s = ttl_s
        self.capacity = capacity
        self._ranks: OrderedDict[str, tuple[int, float]] = OrderedDict()

    async def get(self, key: str) -> int | None:
        found = self._ranks.get(key)
        if found is None:
            return None
        rank, expires = found
        if expires < time.monotonic():
            del self._ranks[key]
            return None
        self._ranks[key] = (rank, time.monotonic() + self.ttl_s)
        self._ranks.move_to_end(key)
        return rank

    async def raise_to(self, key: str, rank: int) -> int:
        return self._keep(key, rank, await self.get(key))

    async def decide(self, key: str, rank: int, *, raise_kept: bool) -> tuple[int, int | None]:
        cur = await self.get(key)
        if cur is not None and not raise_kept:
            return cur, cur
        return self._keep(key, rank, cur), cur

    def _keep(self, key: str, rank: int, cur: int | None) -> int:
        kept = rank if cur is None else max(cur, rank)
        self._ranks[key] = (kept, time.monotonic() + self.ttl_s)
        self._ranks.move_to_end(key)
        while len(self._ranks) > self.capacity:
            self._ranks.popitem(last=False)
        return kept


class RedisTiers:
    """Session tiers in Redis, shared by every replica; one script call per read, decision or raise."""

    def __init__(self, url: str, prefix: str, ttl_s: float) -> None:
        self.url = url
        self.prefix = prefix
        self.ttl_ms = int(ttl_s * 1000)
        self._clients: dict[asyncio.AbstractEventLoop, Any] = {}

    def _client(self) -> Any:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            import redis.asyncio as aioredis

            for old in [lp for lp in self._clients if lp.is_closed()]:
                del self._clients[old]
            client = aioredis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)
            self._clients[loop] = (client, client.register_script(_RAISE))
            return self._clients[loop]
        return client

    async def _run(self, key: str, rank: int, raise_kept: bool = True) -> tuple[int, int]:
        """EVALSHA straight through the client (a Redis that lost the script is sent it again)."""
        from redis.exceptions import NoScriptError

        client, script = self._client()
        args = (1, self.prefix + key, rank, self.ttl_ms, 1 if raise_kept else 0)
        try:
            kept, before = await client.execute_command("EVALSHA", script.sha, *args)
        except NoScriptError:
            script.sha = await client.script_load(script.script)
            kept, before = await client.execute_command("EVALSHA", script.sha, *args)
        return int(kept), int(before)

    async def get(self, key: str) -> int | None:
        rank, _ = await self._run(key, -1)
        return None if rank < 0 else rank

    async def raise_to(self, key: str, rank: int) -> int:
        return (await self._run(key, rank))[0]

    async def decide(self, key: str, rank: int, *, raise_kept: bool) -> tuple[int, int | None]:
        kept, before = await self._run(key, rank, raise_kept)
        return kept, None if before < 0 else before

    async def aclose(self) -> None:
        for loop, (client, _) in list(self._clients.items()):
            if loop is asyncio.get_running_loop():
                await client.aclose()
                del self._clients[loop]


def session_tiers(cfg: SessionsConfig, redis_url: str | None) -> MemoryTiers | RedisTiers:
    """The configured store (`redis_url`: the resolved URL for the redis backend)."""
    if cfg.backend == "redis":
        assert redis_url is not None
        return RedisTiers(redis_url, cfg.key_prefix, cfg.ttl_s)
    return MemoryTiers(cfg.ttl_s)
