"""Production KPIs over a time window, from interaction records.

The server keeps a `KpiWindow` (an in-memory ring of small samples, cheap to add to);
the CLI builds samples from the store (`samples_from_records(store.list_interactions(since=...))`).
Eval and shadow traffic never enter a window.

The KPI math lives in one place, `KpiFrame`: the samples as numpy columns in time order, built in one
pass. After that any window is a slice found by binary search and every KPI a vector operation, so
"this window, the previous one, each version and 200 chart buckets" costs about one pass over the
samples instead of one per question. Build frames off the event loop (`KpiWindow.frame()` takes a
consistent snapshot under the window's lock).

Satisfaction is on a 1-5 scale: a rating's `score` counts as given, a thumb up as 5 and a thumb
down as 1 when there is no score.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from itertools import repeat
from operator import attrgetter
from typing import Any

import numpy as np

from shipyard.observe._metrics import OFFLINE_TRAFFIC, is_safety_incident
from shipyard.store import InteractionRecord


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


class KpiFrame:
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
        self.session = np.fromiter(map(hash, map(_SESSION, samples)), np.int64, n)
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
        return self._kpis(lo, hi, window_s)

    def buckets(self, edges: Sequence[float], bucket_s: float) -> list[Kpis]:
        """The KPIs of each bucket [edges[i], edges[i + 1]) (len(edges) - 1 of them)."""
        if not self.ordered:
            raise ValueError("this KpiFrame is not in time order; use .sorted()")
        cut = np.searchsorted(self.at, np.asarray(edges, np.float64), side="left").tolist()
        return [self._kpis(cut[i], cut[i + 1], bucket_s) for i in range(len(cut) - 1)]

    def _kpis(self, lo: int, hi: int, window_s: float) -> Kpis:
        """The KPIs of the rows [lo, hi)."""
        n = max(0, hi - lo)
        part = slice(lo, lo + n)
        latency = self.latency[part]
        rank = math.ceil(0.95 * n) - 1  # nearest rank: the smallest value with 95% at or below it
        completed, failed, escalated = np.bincount(self.status[part], minlength=4)[:3].tolist()
        sessions = int(np.unique(self.session[part]).size)
        cost = float(self.cost[part].sum())
        tools = int(self.tools[part].sum())
        rating = self.rating[part]
        ratings = rating[~np.isnan(rating)]
        return Kpis(
            window_s=window_s,
            interactions=n,
            sessions=sessions,
            completion_rate=_rate(completed, n),
            error_rate=_rate(failed, n),
            escalation_rate=_rate(escalated, n),
            avg_latency_s=float(latency.sum()) / n if n else None,
            p95_latency_s=float(np.partition(latency, rank)[rank]) if n else None,
            cost_per_interaction=cost / n if n else None,
            cost_per_session=cost / sessions if sessions else None,
            cost_usd=cost,
            safety_incidents=int(np.count_nonzero(self.safety[part])),
            errors=failed,
            tool_calls=tools,
            tool_error_rate=_rate(int(self.tool_errors[part].sum()), tools),
            ratings=int(ratings.size),
            satisfaction=float(ratings.sum()) / ratings.size if ratings.size else None,
        )


def compute_kpis(samples: Iterable[Sample], window_s: float) -> Kpis:
    """The KPIs of the given samples (already restricted to one window)."""
    return KpiFrame(samples if isinstance(samples, Sequence) else list(samples), ordered=False).kpis(window_s)


@dataclass(slots=True)
class _RingFrame:
    """A window's ring as `KpiWindow.frame` last saw it: its frame in ring order (about 70 bytes a
    sample), how many samples it had, the first and last of them, and the ratings' version. Only those
    two samples are held, so the samples the ring lets go are freed."""

    frame: KpiFrame
    count: int
    first: Sample | None
    last: Sample | None
    rated: int


def _follow(seen: _RingFrame | None, ring: list[Sample], rated: int) -> _RingFrame:
    """The frame of `ring`, reusing what `seen` read. A ring gains samples only on the right and loses
    them only on the left, so where the last sample seen stands tells how many were dropped and how
    many added (found in O(samples added)); when it is gone everything is read again."""
    if seen is not None and seen.count and ring:
        end = next((i for i in range(len(ring) - 1, -1, -1) if ring[i] is seen.last), None)
        if end is not None:
            kept = end + 1
            dropped = seen.count - kept
            if dropped > 0 or (dropped == 0 and ring[0] is seen.first):
                if dropped == 0 and kept == len(ring) and rated == seen.rated:
                    return seen
                frame = KpiFrame.concat(
                    [seen.frame.rows(dropped, seen.count), KpiFrame(ring[kept:], ordered=False)],
                    ordered=False,
                )
                if rated != seen.rated:
                    frame = frame.with_ratings(ring)
                return _RingFrame(frame, len(ring), ring[0], ring[-1], rated)
    return _RingFrame(
        KpiFrame(ring, ordered=False), len(ring), ring[0] if ring else None, ring[-1] if ring else None, rated
    )


def samples_from_records(records: Iterable[InteractionRecord]) -> list[Sample]:
    """Samples of the production records among `records` (eval and shadow left out)."""
    return [Sample.of(r) for r in records if r.traffic_source not in OFFLINE_TRAFFIC]


SAMPLE_BYTES = 200  # a sample's slots, floats, ring slot and id-index entry (measured with tracemalloc)


def sample_bytes(s: Sample) -> int:
    """About how much memory one sample holds: its fixed part and the strings it may own alone."""
    return SAMPLE_BYTES + sys.getsizeof(s.id) + sys.getsizeof(s.session_id) + sys.getsizeof(s.agent)


class KpiWindow:
    """A ring of recent production samples, kept for `horizon_s`, and at most `max_samples` of them
    holding at most `max_bytes` (session ids come from clients); the oldest go first.

    Args:
        horizon_s: how far back samples are kept (the longest window anyone asks for).
        max_samples: a memory bound for very busy servers.
        max_bytes: a memory bound in bytes (see `sample_bytes`).
    """

    def __init__(
        self, horizon_s: float = 86400.0, max_samples: int = 200_000, max_bytes: int = 64 * 2**20
    ) -> None:
        self.horizon_s = horizon_s
        self.max_samples = max_samples
        self.max_bytes = max_bytes
        self._ring: deque[Sample] = deque()
        self._by_id: dict[str, Sample] = {}
        self._bytes = 0
        self._lock = threading.Lock()
        self._rated = 0  # bumped by each rating change, so `frame` knows to read ratings again
        self._frame_lock = threading.Lock()
        self._seen: _RingFrame | None = None

    def add(self, record: InteractionRecord) -> None:
        """Add a finished interaction (eval and shadow traffic are ignored)."""
        if record.traffic_source in OFFLINE_TRAFFIC:
            return
        s = Sample.of(record)
        with self._lock:
            self._ring.append(s)
            self._by_id[s.id] = s
            self._bytes += sample_bytes(s)
            while len(self._ring) > self.max_samples or (
                self._bytes > self.max_bytes and len(self._ring) > 1
            ):
                self._drop_oldest()

    def _drop_oldest(self) -> None:
        """Forget the oldest sample (the caller holds the lock)."""
        old = self._ring.popleft()
        self._bytes -= sample_bytes(old)
        if self._by_id.get(old.id) is old:
            del self._by_id[old.id]

    @property
    def bytes(self) -> int:
        """About how much memory the samples hold (see `sample_bytes`)."""
        return self._bytes

    def add_feedback(self, interaction_id: str, feedback: dict[str, Any] | None) -> None:
        """Update the rating of an interaction still in the window."""
        with self._lock:
            s = self._by_id.get(interaction_id)
            if s is not None:
                s.rating = rating_of(feedback)
                self._rated += 1

    def prune(self, now: float | None = None) -> None:
        cutoff = (now or time.time()) - self.horizon_s
        with self._lock:
            while self._ring and self._ring[0].at < cutoff:
                self._drop_oldest()

    def snapshot(self) -> list[Sample]:
        """Every sample in the window, oldest first, copied under the lock (safe from any thread)."""
        with self._lock:
            return list(self._ring)

    def frame(self, *, agent: str | None = None, version: str | None = None) -> KpiFrame:
        """A `KpiFrame` of the window's samples in time order (optionally of one agent / version).

        The window keeps the frame it made last time and reads only the samples added since (and the
        ratings again after feedback); the rest is numpy. Safe from any thread; call it in a worker
        thread rather than on the event loop."""
        with self._lock:
            ring = list(self._ring)
            rated = self._rated
        with self._frame_lock:
            self._seen = seen = _follow(self._seen, ring, rated)
        return seen.frame.sorted().where(agent=agent, version=version)

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
        end = (now or time.time()) - offset_s
        return self.frame(agent=agent, version=version).kpis(window_s, end - window_s, end)

    def __len__(self) -> int:
        return len(self._ring)
