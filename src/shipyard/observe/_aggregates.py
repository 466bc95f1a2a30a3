"""KPIs as incremental aggregates: per-time-bucket counters, latency sketches and session sketches,
updated once per interaction, so what a KPI question costs is bounded by the buckets it merges, not by
the interactions behind them.

One `Summary` is what the KPIs need of a set of interactions, in a form two summaries can be merged in:
- counters (interactions, statuses, safety, cost, latency sum, tool calls and errors, ratings);
- latencies: the exact values while a bucket holds few of them, else a log-bucket histogram
  (DDSketch's logarithmic mapping: relative accuracy `LATENCY_ALPHA`, so a quantile read from it is
  within 1% of a latency that was really observed at that rank);
- sessions: the exact session hashes while a bucket holds few of them, else HyperLogLog registers
  (`HLL_P`: 4096 registers, about 1.6% standard error).
A merged summary is exact while every part is, so low traffic (and every test with a handful of
interactions) gets exact numbers and high traffic gets bounded memory and work.

`Aggregates` keeps, per (agent, version), buckets of `FINE_S` seconds for the last `FINE_SPAN_S` and
of `COARSE_S` seconds for the whole horizon. A bucket counts for a window when its start lies in the
window: a window ending now holds everything up to now, and its start is rounded up to the next bucket
boundary (by less than 5 s within the last hour, less than 300 s before that). Windows never split a
bucket, so consecutive windows (and chart buckets on multiples of 5 s) partition the interactions:
nothing is counted twice or lost between them.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from shipyard.observe._kpis import Kpis, Sample

# the latency sketch (DDSketch's logarithmic mapping) -------------------------------------------------
LATENCY_ALPHA = 0.01
_GAMMA = (1 + LATENCY_ALPHA) / (1 - LATENCY_ALPHA)
_LOG_GAMMA = math.log(_GAMMA)
LATENCY_MIN_S = 1e-5  # smaller latencies (but > 0) are counted as this
LATENCY_MAX_S = 1e5  # larger ones as this
_OFFSET = math.ceil(math.log(LATENCY_MIN_S) / _LOG_GAMMA) - 1  # key of the bin just below the minimum
LATENCY_BINS = math.ceil(math.log(LATENCY_MAX_S) / _LOG_GAMMA) - _OFFSET + 1  # bin 0 holds zeros
_BIN_VALUES = np.concatenate(
    [[0.0], 2 * _GAMMA ** (np.arange(1, LATENCY_BINS) + _OFFSET) / (_GAMMA + 1)]
)  # a bin's representative value: within LATENCY_ALPHA of every value in it

# the session sketch (HyperLogLog) -------------------------------------------------------------------
HLL_P = 12
HLL_M = 1 << HLL_P
_HLL_ALPHA = 0.7213 / (1 + 1.079 / HLL_M)
_MASK64 = (1 << 64) - 1

EXACT_LIMIT = 8  # a bucket keeps exact latencies and session ids up to this many, then sketches

# the counters, in this order
COUNTERS = (
    "interactions",
    "completed",
    "failed",
    "escalated",
    "safety_incidents",
    "cost_usd",
    "latency_sum_s",
    "tool_calls",
    "tool_errors",
    "ratings",
    "rating_sum",
)
N, COMPLETED, FAILED, ESCALATED, SAFETY, COST, LATENCY_SUM, TOOLS, TOOL_ERRORS, RATINGS, RATING_SUM = range(
    11
)
_FIELDS = len(COUNTERS)
_STATUS_FIELD = {"completed": COMPLETED, "failed": FAILED, "escalated": ESCALATED}


def latency_bin(v: float) -> int:
    """The sketch bin of a latency in seconds."""
    if not v > 0:
        return 0
    k = math.ceil(math.log(v) / _LOG_GAMMA) - _OFFSET
    return 1 if k < 1 else (LATENCY_BINS - 1 if k >= LATENCY_BINS else k)


def latency_bins(values: np.ndarray) -> np.ndarray:
    """`latency_bin` of each value."""
    out = np.zeros(values.shape, np.int64)
    pos = values > 0
    if pos.any():
        k = np.ceil(np.log(values[pos]) / _LOG_GAMMA) - _OFFSET
        out[pos] = np.clip(k, 1, LATENCY_BINS - 1)
    return out


def latency_histogram(values: Iterable[float]) -> np.ndarray:
    """The sketch of these latencies (counts per bin)."""
    arr = np.fromiter(values, np.float64)
    return np.bincount(latency_bins(arr), minlength=LATENCY_BINS).astype(np.int32)


def histogram_quantile(hist: np.ndarray, rank: int) -> float:
    """The value of the `rank`-th smallest latency (0-based) in a sketch, within LATENCY_ALPHA."""
    cum = np.cumsum(hist)
    i = int(np.searchsorted(cum, rank + 1, side="left"))
    return float(_BIN_VALUES[min(i, LATENCY_BINS - 1)])


def session_hash(session_id: str) -> int:
    """A signed 64-bit hash of a session id that every process agrees on (Python's `hash` of a str
    differs between processes), so sketches made by different replicas merge."""
    return int.from_bytes(hashlib.blake2b(session_id.encode(), digest_size=8).digest(), "little", signed=True)


def hll_slot(h: int) -> tuple[int, int]:
    """The HyperLogLog register of a 64-bit hash and the value it offers it (rho)."""
    h &= _MASK64
    w = h >> HLL_P
    return h & (HLL_M - 1), (64 - HLL_P) - w.bit_length() + 1


_hll_slot = hll_slot


def hll_registers(hashes: np.ndarray) -> np.ndarray:
    """HyperLogLog registers of these 64-bit session hashes."""
    regs = np.zeros(HLL_M, np.uint8)
    if hashes.size:
        h = hashes.astype(np.int64).view(np.uint64)
        idx = (h & np.uint64(HLL_M - 1)).astype(np.int64)
        w = h >> np.uint64(HLL_P)
        # bit_length of w, vectorized: floor(log2(w)) + 1, 0 for w == 0
        bits = np.zeros(w.shape, np.int64)
        nz = w > 0
        bits[nz] = np.floor(np.log2(w[nz].astype(np.float64))).astype(np.int64) + 1
        # log2 of a float64 can round up just below a power of two: check and correct
        over = nz & (bits > 0)
        shifted = np.zeros(w.shape, np.uint64)
        shifted[over] = w[over] >> (bits[over] - 1).astype(np.uint64)
        bits[over & (shifted == 0)] -= 1
        rho = (64 - HLL_P) - bits + 1
        np.maximum.at(regs, idx, rho.astype(np.uint8))
    return regs


def hll_estimate(regs: np.ndarray) -> int:
    """The distinct count HyperLogLog registers stand for (linear counting when small)."""
    zeros = int(np.count_nonzero(regs == 0))
    estimate = _HLL_ALPHA * HLL_M * HLL_M / float(np.sum(np.ldexp(1.0, -regs.astype(np.int64))))
    if estimate <= 2.5 * HLL_M and zeros:
        estimate = HLL_M * math.log(HLL_M / zeros)
    return round(estimate)


def _rate(part: float, whole: float) -> float | None:
    return part / whole if whole else None


Values = list[float] | np.ndarray
Hashes = set[int] | np.ndarray


class Summary:
    """What the KPIs need of a set of interactions, mergeable (see the module docstring).

    Latencies are the exact values in `latencies` (parts: lists or arrays) plus whatever `hist` counts;
    sessions are the hashes in `sessions` (parts: sets or arrays) plus whatever `hll` holds. With `hist`
    / `hll` None the numbers are exact. Parts are joined only when a KPI is read, so merging many small
    buckets costs a list append each.
    """

    __slots__ = ("counts", "hist", "hll", "latencies", "sessions")

    def __init__(
        self,
        counts: Sequence[float] | None = None,
        latencies: Values | None = None,
        hist: np.ndarray | None = None,
        sessions: Hashes | None = None,
        hll: np.ndarray | None = None,
    ) -> None:
        self.counts: list[float] = [0.0] * _FIELDS if counts is None else list(counts)
        self.latencies: list[Values] = [latencies] if latencies is not None and len(latencies) else []
        self.hist = hist
        self.sessions: list[Hashes] = [sessions] if sessions is not None and len(sessions) else []
        self.hll = hll

    @staticmethod
    def merge(parts: Sequence[Summary]) -> Summary:
        """One summary of the interactions of all `parts` (sessions counted once across them)."""
        if len(parts) == 1:
            return parts[0]
        return Summary.of_parts(
            [p.counts for p in parts],
            [v for p in parts for v in p.latencies],
            [p.hist for p in parts if p.hist is not None],
            [h for p in parts for h in p.sessions],
            [p.hll for p in parts if p.hll is not None],
        )

    @staticmethod
    def of_parts(
        counts: Sequence[Sequence[float]],
        latencies: list[Values],
        hists: Sequence[np.ndarray],
        sessions: list[Hashes],
        hlls: Sequence[np.ndarray],
    ) -> Summary:
        """A summary of parts: their counters, exact values and sketches (joined only when read)."""
        out = Summary([math.fsum(c) for c in zip(*counts, strict=True)] if counts else None)
        out.latencies, out.sessions = latencies, sessions
        if hists:  # one vector operation over all of them
            out.hist = (
                np.asarray(np.sum(hists, axis=0, dtype=np.int64))
                if len(hists) > 1
                else hists[0].astype(np.int64)
            )
        if hlls:
            out.hll = np.maximum.reduce(hlls) if len(hlls) > 1 else hlls[0].copy()
        return out

    @property
    def exact(self) -> bool:
        """Whether the latency quantile and the session count are exact (no sketch is involved)."""
        return self.hist is None and self.hll is None

    def _latency_array(self) -> np.ndarray:
        parts = self.latencies
        if len(parts) == 1 and isinstance(parts[0], np.ndarray):
            return parts[0]
        return np.concatenate([np.asarray(p, np.float64) for p in parts]) if parts else np.empty(0)

    def p95_latency(self) -> float | None:
        n = int(self.counts[N])
        if not n:
            return None
        size = sum(len(p) for p in self.latencies)
        if self.hist is None:
            if not size:
                return None
            rank = math.ceil(0.95 * size) - 1  # nearest rank: the smallest value with 95% at or below
            if size <= 2048 and all(isinstance(p, list) for p in self.latencies):
                return float(sorted(itertools.chain.from_iterable(self.latencies))[rank])
            return float(np.partition(self._latency_array(), rank)[rank])
        hist = self.hist
        if size:
            hist = hist + np.bincount(latency_bins(self._latency_array()), minlength=LATENCY_BINS)
        total = int(hist.sum())
        return histogram_quantile(hist, math.ceil(0.95 * total) - 1) if total else None

    def session_count(self) -> int:
        parts = self.sessions
        if self.hll is None:
            if all(isinstance(p, set) for p in parts):
                return len(set().union(*parts)) if len(parts) > 1 else (len(parts[0]) if parts else 0)
            return int(np.unique(_hash_array(parts)).size)
        regs = self.hll
        if parts:
            regs = np.maximum(regs, hll_registers(_hash_array(parts)))
        return hll_estimate(regs)

    def kpis(self, window_s: float) -> Kpis:
        from shipyard.observe._kpis import Kpis

        c = self.counts
        n = int(c[N])
        sessions = self.session_count() if n else 0
        failed = int(c[FAILED])
        cost = float(c[COST])
        tools = int(c[TOOLS])
        ratings = int(c[RATINGS])
        return Kpis(
            window_s=window_s,
            interactions=n,
            sessions=sessions,
            completion_rate=_rate(float(c[COMPLETED]), n),
            error_rate=_rate(failed, n),
            escalation_rate=_rate(float(c[ESCALATED]), n),
            avg_latency_s=float(c[LATENCY_SUM]) / n if n else None,
            p95_latency_s=self.p95_latency(),
            cost_per_interaction=cost / n if n else None,
            cost_per_session=cost / sessions if sessions else None,
            cost_usd=cost,
            safety_incidents=int(c[SAFETY]),
            errors=failed,
            tool_calls=tools,
            tool_error_rate=_rate(float(c[TOOL_ERRORS]), tools),
            ratings=ratings,
            satisfaction=float(c[RATING_SUM]) / ratings if ratings else None,
        )


def _hash_array(parts: Sequence[Hashes]) -> np.ndarray:
    return np.concatenate(
        [np.fromiter(p, np.int64, len(p)) if isinstance(p, set) else p.astype(np.int64) for p in parts]
    )


def bucket_delta(
    status: str,
    safety: bool,
    cost_usd: float,
    latency_s: float,
    tool_calls: int,
    tool_errors: int,
    rating: float | None,
) -> list[tuple[int, float]]:
    """What one interaction adds to a bucket's counters, as (counter index, amount) pairs."""
    out: list[tuple[int, float]] = [(N, 1.0), (COST, cost_usd), (LATENCY_SUM, latency_s)]
    field = _STATUS_FIELD.get(status)
    if field is not None:
        out.append((field, 1.0))
    if safety:
        out.append((SAFETY, 1.0))
    if tool_calls:
        out.append((TOOLS, float(tool_calls)))
    if tool_errors:
        out.append((TOOL_ERRORS, float(tool_errors)))
    if rating is not None:
        out += [(RATINGS, 1.0), (RATING_SUM, rating)]
    return out


class _Bucket:
    """The interactions of one time bucket of one (agent, version)."""

    __slots__ = ("c", "hist", "hll", "lat", "sess")

    def __init__(self) -> None:
        self.c = [0.0] * _FIELDS
        self.lat: list[float] | None = []
        self.hist: np.ndarray | None = None
        self.sess: set[int] | None = set()
        self.hll: np.ndarray | None = None

    def add(self, s: Sample, session: int) -> None:
        c = self.c
        c[N] += 1
        field = _STATUS_FIELD.get(s.status)
        if field is not None:
            c[field] += 1
        if s.safety:
            c[SAFETY] += 1
        c[COST] += s.cost_usd
        c[LATENCY_SUM] += s.latency_s
        c[TOOLS] += s.tool_calls
        c[TOOL_ERRORS] += s.tool_errors
        if s.rating is not None:
            c[RATINGS] += 1
            c[RATING_SUM] += s.rating
        if self.lat is not None:
            self.lat.append(s.latency_s)
            if len(self.lat) > EXACT_LIMIT:
                self.hist, self.lat = latency_histogram(self.lat), None
        else:
            assert self.hist is not None
            self.hist[latency_bin(s.latency_s)] += 1
        if self.sess is not None:
            self.sess.add(session)
            if len(self.sess) > EXACT_LIMIT:
                self.hll = hll_registers(np.fromiter(self.sess, np.int64, len(self.sess)))
                self.sess = None
        else:
            assert self.hll is not None
            i, rho = _hll_slot(session)
            if self.hll[i] < rho:
                self.hll[i] = rho

    def rate(self, old: float | None, new: float | None) -> None:
        """A rating of one of its interactions changed."""
        if old is not None:
            self.c[RATINGS] -= 1
            self.c[RATING_SUM] -= old
        if new is not None:
            self.c[RATINGS] += 1
            self.c[RATING_SUM] += new

    def parts(self, out: tuple[list[Any], list[Any], list[Any], list[Any], list[Any]]) -> None:
        """Add a copy of what it holds to `out` (counters, latencies, histograms, sessions, registers);
        its sketches are shared, not copied: they only ever grow."""
        counts, latencies, hists, sessions, hlls = out
        counts.append(self.c[:])
        if self.lat:
            latencies.append(self.lat[:])
        elif self.hist is not None:
            hists.append(self.hist)
        if self.sess:
            sessions.append(set(self.sess))
        elif self.hll is not None:
            hlls.append(self.hll)

    def bytes(self) -> int:
        out = 1300  # measured: the object, its counters (a list of floats), a list, a set, its dict slot
        out += LATENCY_BINS * 4 if self.hist is not None else 16 * len(self.lat or ())
        out += HLL_M if self.hll is not None else 64 * len(self.sess or ())
        return out


FINE_S = 5.0
FINE_SPAN_S = 3600.0
COARSE_S = 300.0


class _Group:
    """The buckets of one (agent, version): fine ones for the last hour, coarse ones for the horizon."""

    __slots__ = ("agent", "coarse", "fine", "version")

    def __init__(self, agent: str, version: str) -> None:
        self.agent = agent
        self.version = version
        self.fine: dict[int, _Bucket] = {}
        self.coarse: dict[int, _Bucket] = {}


def _keys(since: float, until: float, width: float) -> range:
    """Keys of the buckets of `width` whose start lies in [since, until)."""
    lo = -(2**62) if since == -math.inf else math.ceil(since / width)
    hi = 2**62 if until == math.inf else math.ceil(until / width)
    return range(lo, max(lo, hi))


def _pick(buckets: dict[int, _Bucket], keys: range) -> Iterator[_Bucket]:
    if keys.stop - keys.start > len(buckets):  # len() of a huge range overflows
        return (b for k, b in buckets.items() if k in keys)
    return (b for k in keys if (b := buckets.get(k)) is not None)


class Aggregates:
    """Per-(agent, version) buckets of the interactions of the last `horizon_s` (see the module
    docstring). Thread-safe: `add` takes microseconds; a query merges at most a few hundred buckets
    per version, whatever the traffic.

    Args:
        horizon_s: how far back (from the newest interaction) buckets are kept.
    """

    def __init__(self, horizon_s: float = 86400.0) -> None:
        self.horizon_s = horizon_s
        self._groups: dict[tuple[str, str], _Group] = {}
        self._lock = threading.Lock()
        self._newest = -math.inf
        self._count = 0  # interactions in the coarse buckets

    # writing ---------------------------------------------------------------------------------------
    def add(self, s: Sample) -> None:
        session = session_hash(s.session_id)
        with self._lock:
            key = (s.agent, s.version)
            g = self._groups.get(key)
            if g is None:
                g = self._groups[key] = _Group(s.agent, s.version)
            if s.at > self._newest:
                self._newest = s.at
            if s.at < self._newest - self.horizon_s:
                return  # older than anything kept
            ck = int(s.at // COARSE_S)
            coarse = g.coarse.get(ck)
            if coarse is None:
                coarse = g.coarse[ck] = _Bucket()
                self._prune(self._newest)
            coarse.add(s, session)
            self._count += 1
            if s.at >= self._newest - FINE_SPAN_S - COARSE_S:
                fk = int(s.at // FINE_S)
                fine = g.fine.get(fk)
                if fine is None:
                    fine = g.fine[fk] = _Bucket()
                fine.add(s, session)

    def rate(self, agent: str, version: str, at: float, old: float | None, new: float | None) -> None:
        """The rating of an interaction already added (of `agent` / `version`, created `at`) changed
        from `old` to `new`."""
        with self._lock:
            g = self._groups.get((agent, version))
            if g is None:
                return
            for buckets, width in ((g.coarse, COARSE_S), (g.fine, FINE_S)):
                b = buckets.get(int(at // width))
                if b is not None:
                    b.rate(old, new)

    def put(
        self,
        agent: str,
        version: str,
        fine: bool,
        key: int,
        counts: list[float],
        hist: np.ndarray,
        hll: np.ndarray,
    ) -> None:
        """Set one bucket (fine or coarse, by its key) of `agent` / `version` from sketches made
        elsewhere (the merged view of many replicas, `observe/_shared_kpis.py`); call `settle` after."""
        b = _Bucket()
        b.c, b.lat, b.hist, b.sess, b.hll = list(counts), None, hist, None, hll
        with self._lock:
            g = self._groups.get((agent, version))
            if g is None:
                g = self._groups[(agent, version)] = _Group(agent, version)
            (g.fine if fine else g.coarse)[key] = b

    def settle(self, now: float) -> None:
        """After `put`: the buckets are complete up to `now`; count them and drop what is too old."""
        with self._lock:
            self._newest = max(self._newest, now)
            self._count = sum(int(b.c[N]) for g in self._groups.values() for b in g.coarse.values())
            self._prune(self._newest)
            for key in [k for k, g in self._groups.items() if not g.coarse and not g.fine]:
                del self._groups[key]

    def prune(self, now: float) -> None:
        """Forget the buckets older than the horizon before `now` (or before the newest interaction)."""
        with self._lock:
            self._prune(max(now, self._newest))

    def _prune(self, now: float) -> None:
        coarse_floor = (now - self.horizon_s) // COARSE_S
        fine_floor = (now - FINE_SPAN_S - COARSE_S) // FINE_S
        for key, g in list(self._groups.items()):
            for k in [k for k in g.coarse if k < coarse_floor]:
                self._count -= int(g.coarse.pop(k).c[N])
            for k in [k for k in g.fine if k < fine_floor]:
                del g.fine[k]
            if not g.coarse:
                del self._groups[key]

    # reading ---------------------------------------------------------------------------------------
    def _fine_start(self) -> float:
        """From when on the fine buckets hold every interaction (a multiple of COARSE_S)."""
        return math.ceil((self._newest - FINE_SPAN_S) / COARSE_S) * COARSE_S

    def summary(
        self, since: float, until: float, *, agent: str | None = None, version: str | None = None
    ) -> Summary:
        """The interactions of [since, until) (by bucket starts), of one agent / version or all."""
        out: tuple[list[Any], list[Any], list[Any], list[Any], list[Any]] = ([], [], [], [], [])
        with self._lock:
            cut = min(max(since, self._fine_start()), until) if self._groups else until
            coarse_keys, fine_keys = _keys(since, cut, COARSE_S), _keys(cut, until, FINE_S)
            for g in self._groups.values():
                if (agent is not None and g.agent != agent) or (version is not None and g.version != version):
                    continue
                for b in _pick(g.coarse, coarse_keys):
                    b.parts(out)
                for b in _pick(g.fine, fine_keys):
                    b.parts(out)
        return Summary.of_parts(*out)

    def versions(
        self, since: float = -math.inf, until: float = math.inf, *, agent: str | None = None
    ) -> list[tuple[str, str]]:
        """The (agent, version) pairs with interactions in [since, until), in the order first seen."""
        keys = _keys(since, until, COARSE_S)
        with self._lock:
            return [
                (g.agent, g.version)
                for g in self._groups.values()
                if (agent is None or g.agent == agent) and any(True for _ in _pick(g.coarse, keys))
            ]

    def __len__(self) -> int:
        return self._count

    @property
    def bytes(self) -> int:
        """About how much memory the buckets hold."""
        with self._lock:
            return sum(
                200 + sum(b.bytes() for b in g.coarse.values()) + sum(b.bytes() for b in g.fine.values())
                for g in self._groups.values()
            )

    def view(
        self,
        since: float = -math.inf,
        until: float = math.inf,
        *,
        agent: str | None = None,
        version: str | None = None,
    ) -> AggregateView:
        return AggregateView(self, since, until, agent, version)


class KpiView:
    """What the dashboard and `/admin/kpis` ask of interactions: KPIs of any window or series of
    buckets, of one version or all. `KpiFrame` (exact, from samples) and `AggregateView` (from the
    server's aggregates) both are one; `JoinedView` puts the store's history before the aggregates."""

    def summary(self, since: float, until: float) -> Summary:
        raise NotImplementedError

    def where(self, *, agent: str | None = None, version: str | None = None) -> KpiView:
        raise NotImplementedError

    def versions(self) -> list[tuple[str, str]]:
        raise NotImplementedError

    def between(self, since: float, until: float) -> KpiView:
        raise NotImplementedError

    def kpis(self, window_s: float, since: float = -math.inf, until: float = math.inf) -> Kpis:
        """The KPIs of [since, until); `window_s` is reported with them."""
        return self.summary(since, until).kpis(window_s)

    def buckets(self, edges: Sequence[float], bucket_s: float) -> list[Kpis]:
        """The KPIs of each bucket [edges[i], edges[i + 1])."""
        return [self.summary(edges[i], edges[i + 1]).kpis(bucket_s) for i in range(len(edges) - 1)]


class AggregateView(KpiView):
    """A window onto `Aggregates`: [since, until), optionally one agent / version."""

    def __init__(
        self, agg: Aggregates, since: float, until: float, agent: str | None, version: str | None
    ) -> None:
        self.agg, self.since, self.until, self.agent, self.version = agg, since, until, agent, version

    def summary(self, since: float, until: float) -> Summary:
        lo, hi = max(since, self.since), min(until, self.until)
        if hi <= lo:
            return Summary()
        return self.agg.summary(lo, hi, agent=self.agent, version=self.version)

    def where(self, *, agent: str | None = None, version: str | None = None) -> AggregateView:
        return AggregateView(self.agg, self.since, self.until, agent or self.agent, version or self.version)

    def between(self, since: float, until: float) -> AggregateView:
        return AggregateView(
            self.agg, max(since, self.since), min(until, self.until), self.agent, self.version
        )

    def versions(self) -> list[tuple[str, str]]:
        found = self.agg.versions(self.since, self.until, agent=self.agent)
        return [p for p in found if self.version is None or p[1] == self.version]


class JoinedView(KpiView):
    """`before` for the time before `split`, `after` from it on (each interaction in one of them).

    `after_from` (default `split`): where `after` is read from when a window reaches back to `split`;
    give the start of the bucket holding `split` when `after` holds nothing older than `split` (a
    server's aggregates, which begin when it started), so that bucket counts whole."""

    def __init__(
        self, before: KpiView, after: KpiView, split: float, after_from: float | None = None
    ) -> None:
        self.before, self.after, self.split = before, after, split
        self.after_from = split if after_from is None else after_from

    def summary(self, since: float, until: float) -> Summary:
        parts = []
        if since < self.split:
            parts.append(self.before.summary(since, min(until, self.split)))
        if until > self.split:
            parts.append(self.after.summary(self.after_from if since <= self.split else since, until))
        return Summary.merge(parts) if parts else Summary()

    def where(self, *, agent: str | None = None, version: str | None = None) -> JoinedView:
        return JoinedView(
            self.before.where(agent=agent, version=version),
            self.after.where(agent=agent, version=version),
            self.split,
            self.after_from,
        )

    def between(self, since: float, until: float) -> JoinedView:
        return JoinedView(
            self.before.between(since, until), self.after.between(since, until), self.split, self.after_from
        )

    def versions(self) -> list[tuple[str, str]]:
        seen = self.before.versions()
        return seen + [p for p in self.after.versions() if p not in seen]
