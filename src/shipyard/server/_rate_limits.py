"""Rate limits of the gateway routes, per API key and per user (`rate_limits:` in shipyard.yaml).

Each caller (an API key's prefix, or a user id) has requests and tokens counted in a sliding one-minute
window, estimated from two fixed windows (the current minute, and the last one weighted by the part of
it still inside the sliding minute): `previous * (60 - elapsed) / 60 + current`. A request is let in
when one more request, and one more token, still fit under every limit of every caller it belongs to;
then its request is counted. Tokens are counted after the interaction (input + output on its record),
so an interaction is never cut short: once a minute's tokens reach the limit, the next request is
refused. A refusal is `429` with `Retry-After`: the whole seconds until the estimate has room again.

Backends:
- `redis`: one hash per caller, `{prefix}:rl:<key|user>:<id>`, with a field per minute and kind
  (`<minute>:r`, `<minute>:t`). A check is one Lua script (all callers checked before any is counted,
  so a refused request counts nowhere), the time is Redis's own (`TIME`), so replicas with skewed
  clocks agree. Unreachable Redis: `on_unavailable` decides, fail_closed (503 with Retry-After) or
  fail_open (let in, logged at most every 10 s); tokens that cannot be counted are dropped (logged).
- `memory`: the same counting in this process (one machine, one worker).

Metrics: `shipyard_rate_limited_total{scope, limit}` (429s by key / user and requests / tokens) and
`shipyard_rate_limits_unavailable_total{policy}` (checks Redis did not answer).

The limits are read from the running config at each request (a reload changes them); the backend, its
Redis URL, key prefix and timeout need a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter

from shipyard.config import RateLimit, RateLimitsConfig
from shipyard.observe import log_event
from shipyard.server._auth import RetryLater
from shipyard.server._http import ApiError, error_response

WINDOW_MS = 60_000
OPEN_CALLER = "open"  # the one caller of a server in open mode (no API keys): per_key counts it as one key
UNAVAILABLE_RETRY_S = 5
LOG_EVERY_S = 10.0
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
MAX_MEMORY_CALLERS = 100_000

# KEYS: one hash per caller. ARGV: window ms, then per caller its request and token limit (0: none).
# Returns {1} when let in (its request counted), else {0, caller index, 1 requests | 2 tokens, wait ms}.
CHECK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local w = tonumber(ARGV[1])
local win = math.floor(now / w)
local e = now - win * w
local cur, prev = tostring(win), tostring(win - 1)
local worst, which, what = 0, 0, 0
for i = 1, #KEYS do
  local v = redis.call('HMGET', KEYS[i], cur .. ':r', prev .. ':r', cur .. ':t', prev .. ':t')
  local counts = {{tonumber(ARGV[2 * i]), tonumber(v[1] or '0'), tonumber(v[2] or '0')},
                  {tonumber(ARGV[2 * i + 1]), tonumber(v[3] or '0'), tonumber(v[4] or '0')}}
  for j = 1, 2 do
    local lim, c, p = counts[j][1], counts[j][2], counts[j][3]
    if lim > 0 and p * (w - e) / w + c + 1 > lim then
      local wait
      if c + 1 <= lim then
        wait = w * (1 - (lim - c - 1) / p) - e
      else
        wait = (w - e) + w * (1 - (lim - 1) / c)
      end
      if which == 0 or wait > worst then
        worst, which, what = wait, i, j
      end
    end
  end
end
if which > 0 then
  return {0, which, what, math.ceil(worst)}
end
local old1, old2 = tostring(win - 2), tostring(win - 3)
for i = 1, #KEYS do
  redis.call('HINCRBY', KEYS[i], cur .. ':r', 1)
  redis.call('HDEL', KEYS[i], old1 .. ':r', old1 .. ':t', old2 .. ':r', old2 .. ':t')
  redis.call('PEXPIRE', KEYS[i], 2 * w + 1000)
end
return {1}
"""

# KEYS: the callers' hashes. ARGV: window ms, tokens.
ADD_TOKENS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local w = tonumber(ARGV[1])
local cur = tostring(math.floor(now / w))
for i = 1, #KEYS do
  redis.call('HINCRBY', KEYS[i], cur .. ':t', tonumber(ARGV[2]))
  redis.call('PEXPIRE', KEYS[i], 2 * w + 1000)
end
return 1
"""


def wait_ms(
    limit: int, current: float, previous: float, elapsed_ms: float, window_ms: int = WINDOW_MS
) -> float:
    """How long until one more unit fits under `limit` (the same sum as the Lua script)."""
    if current + 1 <= limit:
        return window_ms * (1 - (limit - current - 1) / previous) - elapsed_ms
    return (window_ms - elapsed_ms) + window_ms * (1 - (limit - 1) / current)


@dataclass(frozen=True, slots=True)
class Caller:
    """One counted caller of a request: `kind` key or user, its id, and its limits."""

    kind: str
    id: str
    limit: RateLimit

    @property
    def label(self) -> str:
        return f"{'API key' if self.kind == 'key' else 'user'} {self.id!r}"

    @property
    def setting(self) -> str:
        return f"rate_limits.per_{self.kind}"


@dataclass(frozen=True, slots=True)
class Refusal:
    caller: int  # index into the callers
    kind: str  # requests | tokens
    wait_ms: float


class RateLimited(ApiError):
    """429 with `Retry-After` (whole seconds, at least 1)."""

    def __init__(self, caller: Caller, kind: str, wait_ms: float) -> None:
        self.retry_after_s = max(1, math.ceil(wait_ms / 1000))
        limit = caller.limit.requests_per_minute if kind == "requests" else caller.limit.tokens_per_minute
        super().__init__(
            429,
            f"rate limit reached: {caller.label} has used its {limit} {kind} per minute "
            f"({caller.setting}.{kind}_per_minute); retry in {self.retry_after_s} s",
            type="rate_limit_error",
        )

    def response(self) -> Any:
        resp = error_response(self.status, self.message, type=self.type, param=self.param)
        resp.headers["Retry-After"] = str(self.retry_after_s)
        return resp


class MemoryCounters:
    """The counting of the Lua scripts, in this process (time from this machine's clock)."""

    def __init__(self) -> None:
        self._counts: dict[str, dict[str, int]] = {}
        self._swept = 0

    def _sweep(self, win: int) -> None:
        if win == self._swept and len(self._counts) < MAX_MEMORY_CALLERS:
            return
        self._swept = win
        keep = (f"{win}:", f"{win - 1}:")
        for name in list(self._counts):
            fields = {k: v for k, v in self._counts[name].items() if k.startswith(keep)}
            if fields:
                self._counts[name] = fields
            else:
                del self._counts[name]

    async def check(self, keys: list[str], limits: list[tuple[int, int]]) -> Refusal | None:
        now = time.time() * 1000
        win = int(now // WINDOW_MS)
        self._sweep(win)
        elapsed = now - win * WINDOW_MS
        worst: Refusal | None = None
        for i, (key, (req_limit, tok_limit)) in enumerate(zip(keys, limits, strict=True)):
            held = self._counts.get(key, {})
            for kind, lim, unit in (("requests", req_limit, "r"), ("tokens", tok_limit, "t")):
                c, p = held.get(f"{win}:{unit}", 0), held.get(f"{win - 1}:{unit}", 0)
                if lim > 0 and p * (WINDOW_MS - elapsed) / WINDOW_MS + c + 1 > lim:
                    wait = wait_ms(lim, c, p, elapsed)
                    if worst is None or wait > worst.wait_ms:
                        worst = Refusal(i, kind, wait)
        if worst is not None:
            return worst
        for key in keys:
            held = self._counts.setdefault(key, {})
            held[f"{win}:r"] = held.get(f"{win}:r", 0) + 1
        return None

    async def add_tokens(self, keys: list[str], tokens: int) -> None:
        win = int(time.time() * 1000 // WINDOW_MS)
        for key in keys:
            held = self._counts.setdefault(key, {})
            held[f"{win}:t"] = held.get(f"{win}:t", 0) + tokens

    async def aclose(self) -> None:
        return None


class RedisCounters:
    """The counters in Redis (`redis.asyncio`): one script call per check, one per token count."""

    def __init__(self, url: str, timeout_s: float) -> None:
        import redis.asyncio as aioredis

        self.url = url
        self.timeout_s = timeout_s
        self.client: Any = aioredis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry_on_timeout=False
        )
        self._check = self.client.register_script(CHECK)
        self._add = self.client.register_script(ADD_TOKENS)

    async def _call(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        # the socket timeouts bound each step; this bounds the whole call (a reconnect included)
        return await asyncio.wait_for(script(keys=keys, args=args), timeout=self.timeout_s * 4)

    async def check(self, keys: list[str], limits: list[tuple[int, int]]) -> Refusal | None:
        args: list[Any] = [WINDOW_MS]
        for req_limit, tok_limit in limits:
            args += [req_limit, tok_limit]
        answer = await self._call(self._check, keys, args)
        if int(answer[0]) == 1:
            return None
        return Refusal(int(answer[1]) - 1, "requests" if int(answer[2]) == 1 else "tokens", float(answer[3]))

    async def add_tokens(self, keys: list[str], tokens: int) -> None:
        await self._call(self._add, keys, [WINDOW_MS, tokens])

    async def aclose(self) -> None:
        with contextlib.suppress(RuntimeError):  # made on another event loop: nothing to close here
            await self.client.aclose()


def redis_url(configured: str | None) -> str:
    """`SHIPYARD_REDIS_URL`, else `rate_limits.redis_url`, else the local Redis."""
    return os.environ.get("SHIPYARD_REDIS_URL") or configured or DEFAULT_REDIS_URL


def _safe_url(url: str) -> str:
    """The URL without a password."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"


class RateLimiter:
    """Checks and counts the gateway's requests against `rate_limits` (see the module docstring).

    Args:
        cfg: the `rate_limits` section the server started with (its backend is kept until a restart).
        registry: where its counters go (the server's metrics registry; default: a registry of its own).
    """

    def __init__(self, cfg: RateLimitsConfig, registry: CollectorRegistry | None = None) -> None:
        r = registry or CollectorRegistry()
        self.refused = PromCounter(
            "shipyard_rate_limited",
            "Gateway requests refused with 429, by whose limit (key, user) and which (requests, tokens).",
            ["scope", "limit"],
            registry=r,
        )
        self.unavailable = PromCounter(
            "shipyard_rate_limits_unavailable",
            "Rate-limit checks Redis did not answer, by on_unavailable policy (fail_closed refused them).",
            ["policy"],
            registry=r,
        )
        self.backend_name = cfg.backend
        self.prefix = cfg.key_prefix
        self.url = redis_url(cfg.redis_url) if cfg.backend == "redis" else None
        self._timeout_s = cfg.redis_timeout_s
        self._counters: MemoryCounters | RedisCounters | None = None
        self._logged_at = float("-inf")

    @property
    def counters(self) -> MemoryCounters | RedisCounters:
        if self._counters is None:  # made on first use, on the serving event loop
            self._counters = (
                RedisCounters(self.url, self._timeout_s) if self.url is not None else MemoryCounters()
            )
        return self._counters

    def callers(self, cfg: RateLimitsConfig, *, api_key: str | None, user_id: str | None) -> list[Caller]:
        """Whom a request counts for: its API key (OPEN_CALLER in open mode) and its user, if any."""
        found = []
        if cfg.per_key is not None:
            found.append(Caller("key", api_key or OPEN_CALLER, cfg.per_key))
        if cfg.per_user is not None and user_id:
            found.append(Caller("user", user_id, cfg.per_user))
        return found

    def _key(self, caller: Caller) -> str:
        return f"{{{self.prefix}}}:rl:{caller.kind}:{caller.id}"

    def _unavailable(self, e: BaseException, cfg: RateLimitsConfig, doing: str) -> None:
        reason = f"{type(e).__name__}: {e}".splitlines()[0][:200]
        now = time.monotonic()
        if now - self._logged_at >= LOG_EVERY_S:
            self._logged_at = now
            log_event(
                "rate_limits_unavailable",
                level="warning",
                redis=_safe_url(self.url or ""),
                doing=doing,
                policy=cfg.on_unavailable,
                error=reason,
            )
        if doing == "check":
            self.unavailable.labels(cfg.on_unavailable).inc()
        if doing == "check" and cfg.on_unavailable == "fail_closed":
            raise RetryLater(
                f"rate limits cannot be checked now: Redis at {_safe_url(self.url or '')} does not answer "
                f"({reason}); rate_limits.on_unavailable is fail_closed, so requests wait; retry in "
                f"{UNAVAILABLE_RETRY_S} s",
                UNAVAILABLE_RETRY_S,
            ) from None

    async def admit(self, cfg: RateLimitsConfig, *, api_key: str | None, user_id: str | None) -> list[Caller]:
        """Let one request in, or raise RateLimited (429) / RetryLater (503, fail_closed with Redis
        down). Returns the callers it was counted for (to count its tokens after the interaction)."""
        callers = self.callers(cfg, api_key=api_key, user_id=user_id)
        if not callers:
            return []
        limits = [(c.limit.requests_per_minute or 0, c.limit.tokens_per_minute or 0) for c in callers]
        try:
            refused = await self.counters.check([self._key(c) for c in callers], limits)
        except Exception as e:  # Redis unreachable or too slow
            self._unavailable(e, cfg, "check")
            return []  # fail_open: let in, not counted
        if refused is not None:
            self.refused.labels(callers[refused.caller].kind, refused.kind).inc()
            raise RateLimited(callers[refused.caller], refused.kind, refused.wait_ms)
        return callers

    async def count_tokens(self, cfg: RateLimitsConfig, callers: list[Caller], tokens: int) -> None:
        """Add an interaction's tokens to its callers' minute (never raises: the answer is made)."""
        counted = [c for c in callers if c.limit.tokens_per_minute is not None]
        if not counted or tokens <= 0:
            return
        try:
            await self.counters.add_tokens([self._key(c) for c in counted], tokens)
        except Exception as e:
            self._unavailable(e, cfg, "count_tokens")

    async def aclose(self) -> None:
        if self._counters is not None:
            await self._counters.aclose()
