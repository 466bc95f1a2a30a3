"""KPIs shared by every replica of a project: each one's bucket deltas merged in Redis, read back as one
`Aggregates`, and alert transitions claimed fleet-wide so one alert fires once.

Without Redis nothing here runs and a server's KPIs are its own (`KpiWindow`). With it (a server with
`SHIPYARD_REDIS_URL`), each replica:

- adds every interaction to its own window, as always, and to an outbox of deltas (`KpiOutbox`): per
  (agent, version) and bucket (the window's 5 s and 5 min buckets), counters, latency sketch bins and
  HyperLogLog register maxima. That is in memory and takes microseconds: the request path never waits
  on Redis.
- every `interval_s` (`SharedKpis.sync`, in a worker thread) flushes its outbox in one script call
  (counters by `HINCRBYFLOAT`, sketch bins by `HINCRBY`, registers by a max per register) and reads
  back the buckets that may have changed since its last read, into a merged `Aggregates` that the
  dashboard, `/admin/kpis` and the alert rules read. Settled buckets are read once (and again on a
  full read every `FULL_READ_S`), so a read costs a few keys, whatever the horizon.
- claims each alert transition (`SharedKpis.claim`): a rule's fleet state lives in one key, changed by a
  compare-and-set script; only the replica whose evaluation changes it delivers the transition, the
  others take the state (and when it began) as they are.

Numbers from the merged view are the sketches' (latency quantiles within 1%, session counts from
HyperLogLog registers, within a few sessions of exact for small counts), because replicas can only share
what merges. Sessions are hashed with a hash every process agrees on (`session_hash`).

A flush that fails (Redis unreachable) puts its deltas back in the outbox, so nothing is lost while
Redis is away; a merged view older than `STALE_AFTER_S` is not used (the replica falls back on its own
window), and an alert that cannot be claimed is delivered (a duplicate rather than a miss).

Keys, under `shipyard:{project}:kpi`: `:f:{k}` / `:c:{k}` (hash: `{group}:c{i}` counters,
`{group}:b{i}` sketch bins), `:f:{k}:r:{group}` (registers, one byte each), `:groups` (group → agent,
version), `:since` (when the fleet began sharing: the merged view holds everything from then on),
`:alert:{rule}:{digest}` (state and since of a rule). Bucket keys expire after the horizon.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Iterable
from typing import Any

import numpy as np
import orjson

from shipyard.observe._aggregates import (
    COARSE_S,
    COUNTERS,
    FINE_S,
    FINE_SPAN_S,
    HLL_M,
    LATENCY_BINS,
    RATING_SUM,
    RATINGS,
    Aggregates,
    bucket_delta,
    hll_slot,
    latency_bin,
    session_hash,
)

FULL_READ_S = 300.0
"""How often every bucket of the horizon is read again (catches flushes that arrived late)."""

RECENT_S = 60.0
"""Buckets starting this long before a read, up to this long after it (clocks differ), are read on
every sync."""

STALE_AFTER_S = 30.0
"""A merged view not refreshed for this long is not used."""

_WIDTHS = (("f", FINE_S), ("c", COARSE_S))

_FLUSH = """
local p = cjson.decode(ARGV[1])
for gid, names in pairs(p.groups) do redis.call('HSET', KEYS[1], gid, names) end
for _, b in ipairs(p.buckets) do
  local key, ttl = b[1], b[2]
  for f, v in pairs(b[3]) do redis.call('HINCRBYFLOAT', key, f, v) end
  for f, v in pairs(b[4]) do redis.call('HINCRBY', key, f, v) end
  redis.call('EXPIRE', key, ttl)
  for gid, regs in pairs(b[5]) do
    local rk = key .. ':r:' .. gid
    for i = 1, #regs, 2 do
      local at = '#' .. regs[i]
      local cur = redis.call('BITFIELD', rk, 'GET', 'u8', at)[1]
      if regs[i + 1] > cur then redis.call('BITFIELD', rk, 'SET', 'u8', at, regs[i + 1]) end
    end
    redis.call('EXPIRE', rk, ttl)
  end
end
redis.call('SET', KEYS[2], ARGV[2], 'NX')
return redis.call('GET', KEYS[2])
"""

_CLAIM = """
local cur = redis.call('GET', KEYS[1])
local state = cur and string.match(cur, '^[^|]*') or 'no_data'
if state == ARGV[1] then
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  return {0, cur}
end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2], 'EX', ARGV[3])
return {1, cur or ''}
"""

ALERT_KEY_TTL_S = 7 * 86400


def group_id(agent: str, version: str) -> str:
    """The short id of an (agent, version) in Redis field names."""
    return hashlib.blake2b(f"{agent}\0{version}".encode(), digest_size=6).hexdigest()


class _Delta:
    """What one bucket of one group gained since the last flush."""

    __slots__ = ("bins", "c", "regs")

    def __init__(self) -> None:
        self.c = [0.0] * len(COUNTERS)
        self.bins: dict[int, int] = {}
        self.regs: dict[int, int] = {}

    def absorb(self, other: _Delta) -> None:
        for i, v in enumerate(other.c):
            self.c[i] += v
        for b, n in other.bins.items():
            self.bins[b] = self.bins.get(b, 0) + n
        for i, r in other.regs.items():
            if r > self.regs.get(i, 0):
                self.regs[i] = r


_Key = tuple[str, str, str, int]  # agent, version, width ("f" | "c"), bucket key


class KpiOutbox:
    """Bucket deltas not flushed yet. Thread-safe; `add` and `rate` take microseconds."""

    def __init__(self) -> None:
        self._deltas: dict[_Key, _Delta] = {}
        self._lock = threading.Lock()

    def add(
        self,
        agent: str,
        version: str,
        at: float,
        status: str,
        safety: bool,
        cost_usd: float,
        latency_s: float,
        tool_calls: int,
        tool_errors: int,
        rating: float | None,
        session: str,
    ) -> None:
        counts = bucket_delta(status, safety, cost_usd, latency_s, tool_calls, tool_errors, rating)
        b = latency_bin(latency_s)
        slot, rho = hll_slot(session_hash(session))
        with self._lock:
            for width, size in _WIDTHS:
                key = (agent, version, width, int(at // size))
                d = self._deltas.get(key)
                if d is None:
                    d = self._deltas[key] = _Delta()
                c = d.c
                for i, v in counts:
                    c[i] += v
                d.bins[b] = d.bins.get(b, 0) + 1
                if rho > d.regs.get(slot, 0):
                    d.regs[slot] = rho

    def rate(self, agent: str, version: str, at: float, old: float | None, new: float | None) -> None:
        """The rating of an interaction added earlier changed."""
        with self._lock:
            for width, size in _WIDTHS:
                key = (agent, version, width, int(at // size))
                d = self._deltas.get(key)
                if d is None:
                    d = self._deltas[key] = _Delta()
                if old is not None:
                    d.c[RATINGS] -= 1
                    d.c[RATING_SUM] -= old
                if new is not None:
                    d.c[RATINGS] += 1
                    d.c[RATING_SUM] += new

    def take(self) -> dict[_Key, _Delta]:
        """Everything held, emptying the outbox."""
        with self._lock:
            out, self._deltas = self._deltas, {}
        return out

    def put_back(self, deltas: dict[_Key, _Delta]) -> None:
        """Deltas a flush could not deliver: they go with the next one."""
        with self._lock:
            for key, d in deltas.items():
                mine = self._deltas.get(key)
                if mine is None:
                    self._deltas[key] = d
                else:
                    mine.absorb(d)

    def __len__(self) -> int:
        return len(self._deltas)


class SharedKpis:
    """The fleet's KPIs in Redis (see the module docstring).

    Args:
        url: the Redis URL.
        project: the project's name (the key prefix).
        horizon_s: how far back buckets are kept (the window's horizon).
        interval_s: how often `run` flushes and reads.
        client: a redis-py client to use instead of one made from `url` (tests).
    """

    def __init__(
        self,
        url: str,
        project: str,
        *,
        horizon_s: float = 86400.0,
        interval_s: float = 2.0,
        client: Any = None,
    ) -> None:
        if client is None:
            import redis

            client = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self.client = client
        self.url = url
        self.prefix = f"shipyard:{project}:kpi"
        self.horizon_s = horizon_s
        self.interval_s = interval_s
        self.outbox = KpiOutbox()
        self.merged = Aggregates(horizon_s)
        self.since: float | None = None  # from when the merged view holds every interaction
        self.read_at: float | None = None  # when the merged view was last refreshed (time.time())
        self._cache: dict[tuple[str, int], dict[str, tuple[list[float], np.ndarray, np.ndarray]]] = {}
        self._groups: dict[str, tuple[str, str]] = {}
        self._full_at = -math.inf
        self._flush = client.register_script(_FLUSH)
        self._claim = client.register_script(_CLAIM)
        self._sync_lock = threading.Lock()
        self.reachable = True  # the last sync worked (a stop skips its last flush when it did not)

    # writing -----------------------------------------------------------------------------------
    def add(self, sample: Any) -> None:
        """Queue one interaction's `Sample` for the next flush (in memory only)."""
        self.outbox.add(
            sample.agent,
            sample.version,
            sample.at,
            sample.status,
            sample.safety,
            sample.cost_usd,
            sample.latency_s,
            sample.tool_calls,
            sample.tool_errors,
            sample.rating,
            sample.session_id,
        )

    def flush(self, now: float | None = None) -> None:
        """Send the outbox to Redis in one script call; on failure the deltas stay queued."""
        now = time.time() if now is None else now
        deltas = self.outbox.take()
        try:
            since = self._flush(
                keys=[f"{self.prefix}:groups", f"{self.prefix}:since"],
                args=[self._payload(deltas), repr(now)],
            )
        except BaseException:
            self.outbox.put_back(deltas)
            raise
        if since is not None:
            self.since = float(since)

    def _payload(self, deltas: dict[_Key, _Delta]) -> bytes:
        groups: dict[str, str] = {}
        buckets: dict[tuple[str, int], list[Any]] = {}
        for (agent, version, width, k), d in deltas.items():
            gid = group_id(agent, version)
            groups[gid] = orjson.dumps([agent, version]).decode()
            entry = buckets.get((width, k))
            if entry is None:
                ttl = (FINE_SPAN_S + 2 * COARSE_S) if width == "f" else (self.horizon_s + 2 * COARSE_S)
                entry = buckets[(width, k)] = [f"{self.prefix}:{width}:{k}", int(ttl), {}, {}, {}]
            counters, bins, regs = entry[2], entry[3], entry[4]
            for i, v in enumerate(d.c):
                if v:
                    counters[f"{gid}:c{i}"] = v
            for b, n in d.bins.items():
                bins[f"{gid}:b{b}"] = n
            if d.regs:
                regs[gid] = [x for i, r in sorted(d.regs.items()) for x in (i, r)]
        return orjson.dumps({"groups": groups, "buckets": list(buckets.values())})

    # reading -----------------------------------------------------------------------------------
    def refresh(self, now: float | None = None) -> None:
        """Read the buckets that may have changed (all of them every FULL_READ_S) into `merged`."""
        now = time.time() if now is None else now
        full = now - self._full_at >= FULL_READ_S
        wanted: list[tuple[str, int]] = []
        for width, size in _WIDTHS:
            span = (FINE_SPAN_S + COARSE_S) if width == "f" else self.horizon_s
            lo = math.floor((now - span) / size)
            hi = math.floor((now + RECENT_S) / size)  # a replica whose clock runs ahead writes there
            first = lo if full else max(lo, math.floor((now - RECENT_S) / size))
            wanted += [(width, k) for k in range(first, hi + 1)]
            for key in [key for key in self._cache if key[0] == width and key[1] < lo]:
                del self._cache[key]
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(f"{self.prefix}:groups")
        pipe.get(f"{self.prefix}:since")
        for width, k in wanted:
            pipe.hgetall(f"{self.prefix}:{width}:{k}")
        found = pipe.execute()
        for gid, names in found[0].items():
            agent, version = orjson.loads(names)
            self._groups[gid.decode()] = (agent, version)
        since = found[1]
        parsed: dict[tuple[str, int], dict[str, tuple[list[float], np.ndarray, np.ndarray]]] = {}
        reg_keys: list[tuple[tuple[str, int], str]] = []
        for (width, k), fields in zip(wanted, found[2:], strict=True):
            if not fields:
                self._cache.pop((width, k), None)
                continue
            per: dict[str, tuple[list[float], np.ndarray, np.ndarray]] = {}
            for raw, value in fields.items():
                gid, _, name = raw.decode().partition(":")
                got = per.get(gid)
                if got is None:
                    got = per[gid] = ([0.0] * len(COUNTERS), np.zeros(LATENCY_BINS, np.int32), np.empty(0))
                if name[0] == "c":
                    got[0][int(name[1:])] = float(value)
                else:
                    got[1][int(name[1:])] = int(value)
            parsed[(width, k)] = per
            reg_keys += [((width, k), gid) for gid in per]
        pipe = self.client.pipeline(transaction=False)
        for (width, k), gid in reg_keys:
            pipe.get(f"{self.prefix}:{width}:{k}:r:{gid}")
        for ((width, k), gid), raw in zip(reg_keys, pipe.execute(), strict=True):
            regs = np.zeros(HLL_M, np.uint8)
            if raw:
                got_regs = np.frombuffer(raw[:HLL_M], np.uint8)
                regs[: got_regs.size] = got_regs
            counts, hist, _ = parsed[(width, k)][gid]
            parsed[(width, k)][gid] = (counts, hist, regs)
        self._cache.update(parsed)
        if full:
            self._full_at = now
        self.merged = self._build(now)
        self.since = float(since) if since is not None else None
        self.read_at = now

    def _build(self, now: float) -> Aggregates:
        out = Aggregates(self.horizon_s)
        for (width, k), per in self._cache.items():
            for gid, (counts, hist, regs) in per.items():
                names = self._groups.get(gid)
                if names is not None:
                    out.put(names[0], names[1], width == "f", k, counts, hist, regs)
        out.settle(now)
        return out

    def sync(self, now: float | None = None) -> None:
        """Flush this replica's deltas, then refresh the merged view (blocking: a worker thread)."""
        with self._sync_lock:
            try:
                self.flush(now)
                self.refresh(now)
            except BaseException:
                self.reachable = False
                raise
            self.reachable = True

    def fresh(self, now: float | None = None) -> bool:
        """Whether the merged view is recent enough to be used."""
        now = time.time() if now is None else now
        return self.read_at is not None and now - self.read_at < STALE_AFTER_S

    # alerts -------------------------------------------------------------------------------------
    def claim(self, rule: str, digest: str, state: str, at: float) -> tuple[bool, str | None, float | None]:
        """Move the fleet's state of a rule to `state`: (True, the fleet's previous state, its since)
        when this call changed it (deliver the transition), (False, state, since) when the fleet was in
        `state` already (another replica delivered it)."""
        changed, cur = self._claim(
            keys=[f"{self.prefix}:alert:{rule}:{digest}"], args=[state, repr(at), ALERT_KEY_TTL_S]
        )
        prev_state, prev_since = None, None
        if cur:
            text = cur.decode() if isinstance(cur, bytes) else str(cur)
            prev_state, _, when = text.partition("|")
            prev_since = float(when) if when else None
        return bool(changed), prev_state, prev_since

    def close(self) -> None:
        self.client.close()


def clear(client: Any, project: str) -> int:
    """Delete every shared KPI key of a project (tests, `shipyard` tooling); returns how many."""
    keys: Iterable[Any] = list(client.scan_iter(match=f"shipyard:{project}:kpi:*", count=1000))
    keys = list(keys)
    return int(client.delete(*keys)) if keys else 0
