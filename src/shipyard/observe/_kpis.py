"""Production KPIs over a time window, from interaction records.

The server keeps a `KpiWindow`: incremental aggregates (`observe/_aggregates.py`), per time bucket and
version, updated once per interaction, so a KPI question costs the same whatever the traffic. The CLI
and the dashboard's history build exact samples from the store
(`samples_from_records(store.list_interactions(since=...))`) into a `KpiFrame`: the samples as numpy
columns in time order, any window a slice found by binary search. Both answer through the one
`Summary.kpis`, so the KPI math lives in one place. Eval and shadow traffic never enter a window.

Satisfaction is on a 1-5 scale: a rating's `score` counts as given, a thumb up as 5 and a thumb
down as 1 when there is no score.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from itertools import repeat
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.observe._aggregates import (
    COMPLETED,
    COST,
    COUNTERS,
    ESCALATED,
    FAILED,
    LATENCY_SUM,
    RATING_SUM,
    RATINGS,
    SAFETY,
    TOOL_ERRORS,
    TOOLS,
    Aggregates,
    AggregateView,
    KpiView,
    N,
    Summary,
    session_hash,
)
from shipyard.observe._metrics import OFFLINE_TRAFFIC, is_safety_incident
from shipyard.store import InteractionRecord

if TYPE_CHECKING:
    from shipyard.observe._shared_kpis import SharedKpis


@dataclass(slots=True)
class Sample:
    """What the KPIs need of one interaction."""

    id: str
    at: float
    agent: str
    version: str
    session_id: str
    status: str
    latency_s: float
    cost_usd: float
    tool_calls: int
    tool_errors: int
    safety: bool
    rating: float | None = None

    @classmethod
    def of(cls, r: InteractionRecord) -> Sample:
        errors = sum(1 for t in r.tool_calls if t.status != "success")
        return cls(
            r.id,
            r.created_at,
            r.agent,
            r.version,
            r.session_id,
            r.status,
            r.latency_ms / 1000,
            r.cost_usd,
            len(r.tool_calls),
            errors,
            is_safety_incident(r),
            rating_of(r.feedback),
        )


def rating_of(feedback: dict[str, Any] | None) -> float | None:
    """A 1-5 satisfaction value from feedback: the score, else thumbs (+1 → 5, -1 → 1)."""
    if not feedback:
        return None
    if feedback.get("score") is not None:
        return float(feedback["score"])
    thumbs = feedback.get("thumbs")
    if thumbs is None:
        return None
    return 5.0 if thumbs > 0 else 1.0


@dataclass(slots=True)
class Kpis:
    """The KPIs of one window. Rates are None when there is nothing to divide by."""

    window_s: float
    interactions: int
    sessions: int
    completion_rate: float | None
    error_rate: float | None
    escalation_rate: float | None
    avg_latency_s: float | None
    p95_latency_s: float | None
    cost_per_interaction: float | None
    cost_per_session: float | None
    cost_usd: float
    safety_incidents: int
    errors: int
    tool_calls: int
    tool_error_rate: float | None
    ratings: int
    satisfaction: float | None

    def value(self, metric: str) -> float | None:
        v = getattr(self, metric)
        return None if v is None else float(v)

    def samples_for(self, metric: str) -> int:
        """How many data points stand behind `metric` (what `min_samples` is compared with)."""
        if metric == "tool_error_rate":
            return self.tool_calls
        if metric == "satisfaction":
            return self.ratings
        return self.interactions

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_STATUS_CODES = {"completed": 0, "failed": 1, "escalated": 2}  # any other status (blocked): 3
_COLUMNS = ("at", "status", "latency", "cost", "safety", "tools", "tool_errors", "rating", "session", "group")
_AT = attrgetter("at")
_STATUS = attrgetter("status")
_LATENCY = attrgetter("latency_s")
_COST = attrgetter("cost_usd")
_SAFETY = attrgetter("safety")
_TOOLS = attrgetter("tool_calls")
_TOOL_ERRORS = attrgetter("tool_errors")
_SESSION = attrgetter("session_id")
_GROUP = attrgetter("agent", "version")


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _ratings(samples: Sequence[Sample]) -> np.ndarray:
    return np.fromiter(
        (math.nan if s.rating is None else s.rating for s in samples), np.float64, len(samples)
    )


class KpiFrame(KpiView):
    """Samples as numpy columns: once built, the KPIs of any window, version or series of buckets are
    slices and vector operations, with no further pass over the samples.

    Sessions and (agent, version) groups are kept as the hashes of their ids (a session count could be
    one short only if two of the ids in one window shared a 64-bit hash), so frames built apart can be
    joined (`concat`) without re-reading their samples.

    Args:
        samples: the samples (a snapshot: later changes to them are not seen).
        ordered: sort by time (what `kpis`, `buckets` and `between` need); False keeps the given order.
    """

    __slots__ = (*_COLUMNS, "names", "ordered")

    def __init__(self, samples: Sequence[Sample] = (), *, ordered: bool = True) -> None:
        n = len(samples)
        groups = list(map(_GROUP, samples))
        self.at = np.fromiter(map(_AT, samples), np.float64, n)
        self.status = np.fromiter(map(_STATUS_CODES.get, map(_STATUS, samples), repeat(3)), np.int8, n)
        self.latency = np.fromiter(map(_LATENCY, samples), np.float64, n)
        self.cost = np.fromiter(map(_COST, samples), np.float64, n)
        self.safety = np.fromiter(map(_SAFETY, samples), np.bool_, n)
        self.tools = np.fromiter(map(_TOOLS, samples), np.int32, n)
        self.tool_errors = np.fromiter(map(_TOOL_ERRORS, samples), np.int32, n)
        self.rating = _ratings(samples)
        self.session = np.fromiter(map(session_hash, map(_SESSION, samples)), np.int64, n)
        self.group = np.fromiter(map(hash, groups), np.int64, n)
        self.names: dict[int, tuple[str, str]] = {hash(g): g for g in set(groups)}  # hash -> the pair
        self.ordered = False
        if ordered:
            self._sort()

    @classmethod
    def _of(
        cls, columns: dict[str, np.ndarray], names: dict[int, tuple[str, str]], ordered: bool
    ) -> KpiFrame:
        out = cls.__new__(cls)
        for name in _COLUMNS:
            setattr(out, name, columns[name])
        out.names, out.ordered = names, ordered
        return out

    def _select(self, index: Any, ordered: bool) -> KpiFrame:
        return KpiFrame._of({c: getattr(self, c)[index] for c in _COLUMNS}, self.names, ordered)

    def _sort(self) -> None:
        if self.at.size > 1 and bool(np.any(self.at[1:] < self.at[:-1])):  # usually nearly in order already
            order = np.argsort(self.at, kind="stable")
            for name in _COLUMNS:
                setattr(self, name, getattr(self, name)[order])
        self.ordered = True

    @staticmethod
    def concat(frames: Sequence[KpiFrame], *, ordered: bool = True) -> KpiFrame:
        """One frame of the rows of `frames`, in that order (then sorted by time if `ordered`)."""
        if not frames:
            return KpiFrame(ordered=ordered)
        columns = {c: np.concatenate([getattr(f, c) for f in frames]) for c in _COLUMNS}
        out = KpiFrame._of(columns, {k: v for f in frames for k, v in f.names.items()}, False)
        if ordered:
            out._sort()
        return out

    def __len__(self) -> int:
        return int(self.at.size)

    def sorted(self) -> KpiFrame:
        """This frame in time order (itself when it is already)."""
        if self.ordered:
            return self
        out = self._select(slice(None), False)
        out._sort()
        return out

    def rows(self, start: int, stop: int) -> KpiFrame:
        """Rows [start, stop) (views, no copy)."""
        return self._select(slice(start, stop), self.ordered)

    def with_ratings(self, samples: Sequence[Sample]) -> KpiFrame:
        """This frame with the ratings re-read from `samples` (the very samples it holds, in its order)."""
        out = self._select(slice(None), self.ordered)
        out.rating = _ratings(samples)
        return out

    def between(self, since: float, until: float) -> KpiFrame:
        """The samples created in [since, until) (views, no copy; the frame must be in time order)."""
        lo, hi = self._range(since, until)
        return self.rows(lo, hi)

    def where(self, *, agent: str | None = None, version: str | None = None) -> KpiFrame:
        """The samples of one agent and / or version (None for both: this frame)."""
        if agent is None and version is None:
            return self
        wanted = [
            h
            for h, (a, v) in self.names.items()
            if (agent is None or a == agent) and (version is None or v == version)
        ]
        return self._select(np.isin(self.group, wanted), self.ordered)

    def versions(self) -> list[tuple[str, str]]:
        """The (agent, version) pairs present, in the order they first appear."""
        groups, first = np.unique(self.group, return_index=True)
        return [self.names[int(groups[i])] for i in np.argsort(first, kind="stable")]

    def _range(self, since: float, until: float) -> tuple[int, int]:
        if not self.ordered:
            raise ValueError("this KpiFrame is not in time order; use .sorted()")
        lo, hi = np.searchsorted(self.at, [since, until], side="left").tolist()
        return lo, hi

    def kpis(self, window_s: float, since: float = -math.inf, until: float = math.inf) -> Kpis:
        """The KPIs of the samples created in [since, until); `window_s` is reported with them."""
        lo, hi = self._range(since, until) if since > -math.inf or until < math.inf else (0, len(self))
        return self._summary(lo, hi).kpis(window_s)

    def summary(self, since: float, until: float) -> Summary:
        """The exact `Summary` of the samples created in [since, until)."""
        lo, hi = self._range(since, until) if since > -math.inf or until < math.inf else (0, len(self))
        return self._summary(lo, hi)

    def buckets(self, edges: Sequence[float], bucket_s: float) -> list[Kpis]:
        """The KPIs of each bucket [edges[i], edges[i + 1]) (len(edges) - 1 of them)."""
        if not self.ordered:
            raise ValueError("this KpiFrame is not in time order; use .sorted()")
        cut = np.searchsorted(self.at, np.asarray(edges, np.float64), side="left").tolist()
        return [self._summary(cut[i], cut[i + 1]).kpis(bucket_s) for i in range(len(cut) - 1)]

    def _summary(self, lo: int, hi: int) -> Summary:
        """The exact summary of the rows [lo, hi)."""
        part = slice(lo, max(lo, hi))
        status = np.bincount(self.status[part], minlength=4)
        latency = self.latency[part]
        rating = self.rating[part]
        ratings = rating[~np.isnan(rating)]
        counts = [0.0] * len(COUNTERS)
        completed, failed, escalated = (float(x) for x in status[:3])
        counts[N], counts[COMPLETED], counts[FAILED], counts[ESCALATED] = (
            latency.size,
            completed,
            failed,
            escalated,
        )
        counts[SAFETY] = float(np.count_nonzero(self.safety[part]))
        counts[COST] = float(self.cost[part].sum())
        counts[LATENCY_SUM] = float(latency.sum())
        counts[TOOLS] = int(self.tools[part].sum())
        counts[TOOL_ERRORS] = int(self.tool_errors[part].sum())
        counts[RATINGS], counts[RATING_SUM] = ratings.size, float(ratings.sum())
        return Summary(counts, latency, None, self.session[part], None)


def compute_kpis(samples: Iterable[Sample], window_s: float) -> Kpis:
    """The KPIs of the given samples (already restricted to one window)."""
    return KpiFrame(samples if isinstance(samples, Sequence) else list(samples), ordered=False).kpis(window_s)


def samples_from_records(records: Iterable[InteractionRecord]) -> list[Sample]:
    """Samples of the production records among `records` (eval and shadow left out)."""
    return [Sample.of(r) for r in records if r.traffic_source not in OFFLINE_TRAFFIC]


FEEDBACK_ENTRY_BYTES = 190  # one entry of the window's id index (its tuple, a float, the dict slot), measured


RATEABLE = 2**18 // 3  # 87,381
"""How many recent interactions feedback can re-rate (the window's index). A dict that entries keep
entering and leaving (the oldest goes for each new one) resizes whenever its deleted slots run out,
to room for 3 times what it holds; at a cap just under a power of two over 3 it has its final size
when it first fills. At 100,000 its last resize came at the 174,763rd interaction, 8.7 -> 14.4 MB:
a late step in a 200k soak's memory (benchmarks/bench_soak.py --smaps)."""


class KpiWindow:
    """The server's production KPIs: incremental aggregates (`Aggregates`: per-bucket counters and
    sketches, updated once per interaction) over the last `horizon_s`, so what a question about the
    window costs is bounded by its buckets, not by the interactions behind them.

    The newest `max_samples` interactions (and at most `max_bytes` of them) stay rateable: feedback on
    one of them moves its rating in its buckets. Older interactions keep the rating they had; their
    feedback still reaches the store, which the dashboard reads for what the window does not hold.

    With `shared` (a `SharedKpis`: replicas with Redis), every interaction and rating change is also
    queued for the fleet's merged view, and the window answers from that view while it is fresh
    (`observe/_shared_kpis.py`), else from this process's own aggregates.

    Args:
        horizon_s: how far back interactions are kept (the longest window anyone asks for).
        max_samples: how many recent interactions feedback can still re-rate.
        max_bytes: a memory bound on that index in bytes.
    """

    shared: SharedKpis | None = None

    def __init__(
        self, horizon_s: float = 86400.0, max_samples: int = RATEABLE, max_bytes: int = 32 * 2**20
    ) -> None:
        self.max_samples = max_samples
        self.max_bytes = max_bytes
        self._agg = Aggregates(horizon_s)
        # id -> (agent, version, created_at, rating), oldest first (popitem(last=False) is O(1)); tuples
        # of strings and floats, which the garbage collector stops tracking
        self._recent: OrderedDict[str, _Rateable] = OrderedDict()
        self._recent_bytes = 0
        self._lock = threading.Lock()

    @property
    def horizon_s(self) -> float:
        return self._agg.horizon_s

    @horizon_s.setter
    def horizon_s(self, value: float) -> None:
        self._agg.horizon_s = value
        if self.shared is not None:
            self.shared.horizon_s = value

    def _reading(self) -> Aggregates:
        """The aggregates questions are answered from: the fleet's merged view while it is fresh."""
        shared = self.shared
        if shared is not None and shared.fresh():
            return shared.merged
        return self._agg

    @property
    def covers_from(self) -> float | None:
        """From when on the answers hold every production interaction of the fleet (the merged
        view's start), or None: since this process started (its own aggregates)."""
        shared = self.shared
        if shared is not None and shared.fresh():
            return shared.since
        return None

    @property
    def scope(self) -> str:
        """Whose interactions the answers hold: `fleet` (the merged view) or `process`."""
        return "fleet" if self.covers_from is not None else "process"

    def add(self, record: InteractionRecord) -> None:
        """Add a finished interaction (eval and shadow traffic are ignored)."""
        if record.traffic_source in OFFLINE_TRAFFIC:
            return
        s = Sample.of(record)
        self._agg.add(s)
        if self.shared is not None:
            self.shared.add(s)
        with self._lock:
            self._recent[s.id] = (s.agent, s.version, s.at, s.rating)
            self._recent_bytes += _entry_bytes(s.id)
            while len(self._recent) > self.max_samples or self._recent_bytes > self.max_bytes:
                self._recent_bytes -= _entry_bytes(self._recent.popitem(last=False)[0])

    @property
    def bytes(self) -> int:
        """About how much memory the window holds (its buckets and its index of recent interactions)."""
        return self._agg.bytes + self._recent_bytes

    def add_feedback(self, interaction_id: str, feedback: dict[str, Any] | None) -> None:
        """Update the rating of a recent interaction (see the class docstring)."""
        with self._lock:
            found = self._recent.get(interaction_id)
            if found is None:
                return
            agent, version, at, old = found
            new = rating_of(feedback)
            self._recent[interaction_id] = (agent, version, at, new)
            self._agg.rate(agent, version, at, old, new)
            if self.shared is not None:
                self.shared.outbox.rate(agent, version, at, old, new)

    def prune(self, now: float | None = None) -> None:
        """Forget what is older than the horizon before `now`."""
        now = time.time() if now is None else now
        self._agg.prune(now)
        cutoff = now - self.horizon_s
        with self._lock:
            for key in [k for k, v in self._recent.items() if v[2] < cutoff]:
                del self._recent[key]
                self._recent_bytes -= _entry_bytes(key)

    def view(self, *, agent: str | None = None, version: str | None = None) -> AggregateView:
        """The window as a `KpiView` (any window's KPIs, buckets, versions), of one agent / version."""
        return self._reading().view(agent=agent, version=version)

    def kpis(
        self,
        window_s: float,
        *,
        now: float | None = None,
        offset_s: float = 0.0,
        agent: str | None = None,
        version: str | None = None,
    ) -> Kpis:
        """KPIs of the window ending `offset_s` before `now` (offset_s=window_s: the previous window)."""
        end = (time.time() if now is None else now) - offset_s
        return self._reading().summary(end - window_s, end, agent=agent, version=version).kpis(window_s)

    def __len__(self) -> int:
        return len(self._agg)


_Rateable = tuple[str, str, float, float | None]


def _entry_bytes(interaction_id: str) -> int:
    return FEEDBACK_ENTRY_BYTES + sys.getsizeof(interaction_id)
