"""Budget counters in Redis, shared by every replica: one Lua script applies a batch of budget steps.

Keys (all under one hash tag, `{prefix}`, so a Redis Cluster keeps them on one node and a script
may touch any of them):

    {prefix}:b:<budget>:<scope>:<value>:<window>      hash: spent, reserved (integers)
    ...:r                                            sorted set: request id -> when its hold lapses (ms)
    ...:a                                            hash: request id -> amount held
    {prefix}:req:<request id>                        hash: state = reserved | settled

The steps (`BATCH`, applied in order, each atomic on its own):

- reserve: first drops lapsed holds of each counter (a crashed replica's), then checks every counter
  and only then writes, so a call holds all its counters or none; a request id seen before answers
  ok without holding twice. Answers the counters' levels, which are what `ctx.budget` shows.
- settle: drops the request's holds and adds what was spent, once per request id (a retry, or a
  settle after the hold lapsed, counts it once).
- levels (read), raise (reconciliation: spent = max(spent, floor)).
- end: an interaction is over; its own counters (window `interaction`) are deleted, unless a call of it
  still holds a reservation (a cancelled call whose settle is late: then they expire by their TTL).
  Queued as a settle is, after the interaction's settles, so they reach Redis first.

A request id is remembered `REQUEST_TTL_S` (an hour; retries of a reserve or a settle come seconds
after the first), so a day of traffic does not leave a key per model call in Redis.

Round trips: the steps a process issues are queued per event loop and sent as one script call, one
batch in flight at a time. A reserve (or a read) goes out at once; a settle waits up to
`SETTLE_DELAY_S` to ride with the next reserve of any interaction of this process (a model call's
settle usually travels with the next call's reserve), so a model call costs one round trip, and
the response never waits on its settle. A step this process queued always reaches Redis before the
steps it queues after it (a read sees this process's settles). A batch that fails (Redis down, a
timeout) fails its reserves and reads (the budget's on_unavailable decides); its settles are tried
again with the next batches (they count once per request id), `SETTLE_TRIES` times in all.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from shipyard.cost._budgets import REQUEST_TTL_S, Counter, Reserved
from shipyard.observe import log_event

BATCH = """
-- ARGV[1]: how long a request id is remembered (ms); ARGV[2]: the steps, as JSON (one argument is
-- far cheaper for the client to send than a few per counter): [kind, request id, now (ms), lapse
-- (ms), [[limit, amount, ttl (ms)] per counter]]. KEYS: per step, its request key (reserve, settle),
-- then its counters' keys. Integers are written with %d: a Lua number past 1e14 prints as 1e+14.
local req_ttl = ARGV[1]
local steps = cjson.decode(ARGV[2])
local k = 1
local out = {}

local function int(v) return string.format('%d', v) end

local function levels_of(keys)
  local levels = {}
  for i = 1, #keys do
    local v = redis.call('HMGET', keys[i], 'spent', 'reserved')
    levels[#levels + 1] = tonumber(v[1] or '0')
    levels[#levels + 1] = tonumber(v[2] or '0')
  end
  return levels
end

local function unhold(key, amt)
  local v = tonumber(amt)
  if v ~= 0 then redis.call('HINCRBY', key, 'reserved', int(-v)) end
end

local function drop_lapsed(key, now)
  local z, h = key .. ':r', key .. ':a'
  local lapsed = redis.call('ZRANGEBYSCORE', z, '-inf', now)
  for _, r in ipairs(lapsed) do
    unhold(key, redis.call('HGET', h, r) or '0')
    redis.call('HDEL', h, r)
    redis.call('ZREM', z, r)
  end
end

for _, step in ipairs(steps) do
  local kind, rid, now, lapse, counters = step[1], step[2], int(step[3]), int(step[4]), step[5]
  local n = #counters
  local req = nil
  if kind == 'r' or kind == 's' then
    req = KEYS[k]
    k = k + 1
  end
  local keys = {}
  for i = 1, n do
    keys[i] = KEYS[k]
    k = k + 1
  end
  if kind == 'r' then
    for i = 1, n do drop_lapsed(keys[i], now) end
    local levels = levels_of(keys)
    local result = nil
    if redis.call('EXISTS', req) == 1 then
      result = {1, 0, 0, levels}
    else
      for i = 1, n do
        local limit, amount = counters[i][1], counters[i][2]
        local spent, reserved = levels[2 * i - 1], levels[2 * i]
        if spent + reserved + amount > limit then
          local exhausted = 0
          if spent + amount > limit then exhausted = 1 end
          result = {0, i, exhausted, levels}
          break
        end
      end
    end
    if result == nil then
      for i = 1, n do
        local key, amount, ttl = keys[i], int(counters[i][2]), int(counters[i][3])
        redis.call('HINCRBY', key, 'reserved', amount)
        redis.call('ZADD', key .. ':r', lapse, rid)
        redis.call('HSET', key .. ':a', rid, amount)
        redis.call('PEXPIRE', key, ttl)
        redis.call('PEXPIRE', key .. ':r', ttl)
        redis.call('PEXPIRE', key .. ':a', ttl)
        levels[2 * i] = levels[2 * i] + counters[i][2]
      end
      redis.call('HSET', req, 'state', 'reserved')
      redis.call('PEXPIRE', req, req_ttl)
      result = {1, 0, 0, levels}
    end
    out[#out + 1] = result
  elseif kind == 's' then
    local done = 0
    if redis.call('HGET', req, 'state') ~= 'settled' then
      done = 1
      for i = 1, n do
        local key = keys[i]
        local amt = redis.call('HGET', key .. ':a', rid)
        if amt then
          unhold(key, amt)
          redis.call('HDEL', key .. ':a', rid)
          redis.call('ZREM', key .. ':r', rid)
        end
        redis.call('HINCRBY', key, 'spent', int(counters[i][2]))
        if redis.call('PTTL', key) < counters[i][3] then redis.call('PEXPIRE', key, int(counters[i][3])) end
      end
      redis.call('HSET', req, 'state', 'settled')
      redis.call('PEXPIRE', req, req_ttl)
    end
    out[#out + 1] = {done, levels_of(keys)}
  elseif kind == 'l' then
    for i = 1, n do drop_lapsed(keys[i], now) end
    out[#out + 1] = levels_of(keys)
  elseif kind == 'e' then
    for i = 1, n do
      local key = keys[i]
      drop_lapsed(key, now)
      if redis.call('HLEN', key .. ':a') == 0 then redis.call('DEL', key, key .. ':r', key .. ':a') end
    end
    out[#out + 1] = 0
  else -- 'x': raise spent to a floor (reconciliation)
    local spent = tonumber(redis.call('HGET', keys[1], 'spent') or '0')
    local floor = counters[1][2]
    if floor > spent then
      redis.call('HSET', keys[1], 'spent', int(floor))
      redis.call('PEXPIRE', keys[1], int(counters[1][3]))
      spent = floor
    end
    out[#out + 1] = spent
  end
end
return out
"""

DEFAULT_URL = "redis://127.0.0.1:6379/0"
REQUEST_TTL_MS = int(REQUEST_TTL_S * 1000)
SETTLE_DELAY_S = 0.05
"""How long a settle waits for a reserve to ride with (then it goes on its own)."""
SETTLE_TRIES = 3
"""How often a settle is sent before it is given up (its hold lapses; reconciliation counts it)."""
BATCH_MAX = 64
"""The most steps in one script call (a long script holds up every other client of Redis)."""
KNOWN_MAX = 100_000
"""The most counters whose last levels this process remembers (`peek`); then it starts afresh."""


def redis_url(configured: str | None) -> str:
    """`SHIPYARD_REDIS_URL`, else `budgets.redis_url`, else the local Redis."""
    return os.environ.get("SHIPYARD_REDIS_URL") or configured or DEFAULT_URL


def _pairs(flat: list[Any]) -> list[tuple[int, int]]:
    return [(int(flat[i]), int(flat[i + 1])) for i in range(0, len(flat), 2)]


@dataclass(slots=True)
class _Step:
    """One queued budget step: `kind` r (reserve) | s (settle) | l (levels) | x (raise spent) | e (end
    of an interaction: its own counters go)."""

    kind: str
    rid: str
    counters: list[Counter]
    amounts: list[int]
    now_ms: int
    lapse_ms: int = 0
    future: asyncio.Future[Any] | None = None  # None: nobody waits (a settle sent in the background)
    quiet: bool = False  # a release of a reserve that may not have happened: no log if it fails
    tries: int = 0


@dataclass(slots=True)
class _Queue:
    """The steps of one event loop not sent yet, and its one flusher."""

    loop: asyncio.AbstractEventLoop
    steps: list[_Step] = field(default_factory=list)
    urgent: bool = False  # a step someone waits for is queued: send at once
    task: asyncio.Task[None] | None = None
    timer: asyncio.TimerHandle | None = None


class RedisBackend:
    """Counters in Redis (`redis.asyncio`): the steps are batched into one script call per round trip.

    Args:
        url: the Redis URL.
        prefix: the key prefix (the hash tag of every key).
        timeout_s: a call slower than this raises (the budget's on_unavailable decides).
        settle_delay_s: how long a settle waits for a reserve to ride with.
    """

    def __init__(
        self, url: str, prefix: str, *, timeout_s: float = 0.5, settle_delay_s: float = SETTLE_DELAY_S
    ) -> None:
        import redis.asyncio as aioredis
        from redis.exceptions import NoScriptError

        self.url = url
        self.prefix = prefix
        self.settle_delay_s = settle_delay_s
        self.client: Any = aioredis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry_on_timeout=False
        )
        self._batch = self.client.register_script(BATCH)
        self._no_script = NoScriptError
        self._queues: dict[asyncio.AbstractEventLoop, _Queue] = {}
        self._known: dict[str, tuple[int, int]] = {}  # counter key -> (spent, reserved) as last answered
        self.script_calls = 0  # round trips made (benchmarks and tests read it)

    def _req(self, rid: str) -> str:
        return f"{self.prefix}:req:{rid}"

    # the steps ---------------------------------------------------------------------------------------
    async def reserve(
        self, rid: str, counters: list[Counter], amounts: list[int], ttl_s: float, now: float
    ) -> Reserved:
        now_ms = int(now * 1000)
        step = _Step("r", rid, counters, amounts, now_ms, now_ms + int(ttl_s * 1000))
        ok, blocked, exhausted, levels = await self._wait(step)
        return Reserved(bool(ok), _pairs(levels), int(blocked) - 1 if not ok else None, bool(exhausted))

    async def settle(self, rid: str, counters: list[Counter], amounts: list[int], now: float) -> bool:
        done, _ = await self._wait(_Step("s", rid, counters, amounts, int(now * 1000)))
        return bool(done)

    def settle_soon(
        self, rid: str, counters: list[Counter], amounts: list[int], now: float, *, quiet: bool = False
    ) -> None:
        """`settle` without waiting: queued, and sent with the next reserve (or within
        `settle_delay_s`), before any step queued after it."""
        self._queue(_Step("s", rid, counters, amounts, int(now * 1000), quiet=quiet), urgent=False)

    async def levels(self, counters: list[Counter], now: float) -> list[tuple[int, int]]:
        return _pairs(await self._wait(_Step("l", "", counters, [0] * len(counters), int(now * 1000))))

    def peek(self, counters: list[Counter], now: float) -> list[tuple[int, int] | None]:
        """The levels Redis last answered for each counter to this process (None: never), without a
        round trip. Spent only grows within a window, so a spent counter seen here is spent."""
        return [self._known.get(c.key) for c in counters]

    async def raise_spent(self, counter: Counter, spent: int) -> None:
        await self._wait(_Step("x", "", [counter], [spent], 0))

    def end_interaction(self, counters: list[Counter]) -> None:
        """Forget the levels last seen of an interaction's own counters, and delete them in Redis
        (queued as a settle is, after the interaction's settles; no round trip is waited for). Were
        the step lost (Redis down), they would expire by their TTL."""
        for c in counters:
            self._known.pop(c.key, None)
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # no event loop (a synchronous caller): they expire by their TTL
            return
        self._queue(
            _Step("e", "", counters, [0] * len(counters), int(time.time() * 1000), quiet=True), urgent=False
        )

    async def ping(self) -> None:
        await self.client.ping()

    # batching ----------------------------------------------------------------------------------------
    def _queue(self, step: _Step, *, urgent: bool) -> _Queue:
        loop = asyncio.get_running_loop()
        q = self._queues.get(loop)
        if q is None:
            for old in [lp for lp in self._queues if lp.is_closed()]:
                del self._queues[old]
            q = self._queues[loop] = _Queue(loop)
        q.steps.append(step)
        if urgent:
            q.urgent = True
            if q.task is None:
                q.task = loop.create_task(self._flush(q))
        elif q.task is None and q.timer is None:
            q.timer = loop.call_later(self.settle_delay_s, self._due, q)
        return q

    async def _wait(self, step: _Step) -> Any:
        step.future = asyncio.get_running_loop().create_future()
        self._queue(step, urgent=True)
        return await step.future

    def _due(self, q: _Queue) -> None:
        q.timer = None
        q.urgent = True
        if q.task is None and q.steps:
            q.task = q.loop.create_task(self._flush(q))

    async def _flush(self, q: _Queue) -> None:
        """Send the queued steps, one batch at a time, while someone waits for one of them."""
        try:
            while q.steps and q.urgent:
                batch, q.steps = q.steps[:BATCH_MAX], q.steps[BATCH_MAX:]
                q.urgent = any(s.future is not None for s in q.steps)
                if not q.steps and q.timer is not None:
                    q.timer.cancel()
                    q.timer = None
                await self._send(batch, q)
        finally:
            q.task = None
            if q.steps and q.timer is None and not q.loop.is_closed():
                q.timer = q.loop.call_later(self.settle_delay_s, self._due, q)

    async def _send(self, batch: list[_Step], q: _Queue) -> None:
        """One script call for `batch`; a failure (of Redis or of this code) reaches every step."""
        try:
            keys: list[str] = []
            steps: list[Any] = []
            for s in batch:
                if s.kind in ("r", "s"):
                    keys.append(self._req(s.rid))
                keys += [c.key for c in s.counters]
                counters = [
                    [c.limit, a, int(c.ttl_s * 1000)] for c, a in zip(s.counters, s.amounts, strict=True)
                ]
                steps.append([s.kind, s.rid, s.now_ms, s.lapse_ms, counters])
            replies = await self._eval(keys, [REQUEST_TTL_MS, orjson.dumps(steps)])
            self._answered(batch, replies)
        except Exception as e:  # every step learns of it; the settles are tried again
            for s in batch:
                if s.future is not None:
                    if not s.future.done():
                        s.future.set_exception(e)
                    continue
                s.tries += 1
                if s.tries < SETTLE_TRIES:
                    q.steps.append(s)
                elif not s.quiet:  # its hold lapses; reconciliation counts what was spent
                    log_event(
                        "budget_settle_failed",
                        level="warning",
                        request_id=s.rid,
                        error=f"{type(e).__name__}: {e}"[:300],
                    )

    def _answered(self, batch: list[_Step], replies: list[Any]) -> None:
        """Hand each step its answer, and remember the levels Redis answered (for `peek`)."""
        known = self._known
        if len(known) > KNOWN_MAX:
            known.clear()
        for s, reply in zip(batch, replies, strict=True):
            if s.kind == "e":
                pass  # nothing to learn: the counters are gone
            elif s.kind == "x":
                key = s.counters[0].key
                known[key] = (int(reply), known.get(key, (0, 0))[1])
            else:
                flat = reply[3] if s.kind == "r" else reply[1] if s.kind == "s" else reply
                for c, i in zip(s.counters, range(0, len(flat), 2), strict=True):
                    known[c.key] = (int(flat[i]), int(flat[i + 1]))
            if s.future is not None and not s.future.done():
                s.future.set_result(reply)

    async def _eval(self, keys: list[str], args: list[Any]) -> Any:
        """EVALSHA straight through the client (what redis-py's Script object does, without its
        per-call layers); a Redis that lost the script (a restart, SCRIPT FLUSH) is sent it again."""
        self.script_calls += 1
        script = self._batch
        try:
            return await self.client.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
        except self._no_script:
            script.sha = await self.client.script_load(script.script)
            return await self.client.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)

    async def aclose(self) -> None:
        """Send what this event loop still has queued, then close the connections."""
        q = self._queues.get(asyncio.get_running_loop())
        if q is not None:
            if q.timer is not None:
                q.timer.cancel()
                q.timer = None
            while q.task is not None:
                await asyncio.wait({q.task})
            while q.steps:
                batch, q.steps = q.steps[:BATCH_MAX], q.steps[BATCH_MAX:]
                for s in batch:
                    s.tries = SETTLE_TRIES - 1  # no more tries after this one: the process is ending
                await self._send(batch, q)
        with contextlib.suppress(RuntimeError):  # made on another event loop: nothing to close here
            await self.client.aclose()
