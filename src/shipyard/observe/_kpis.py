"""Production KPIs over a time window, from interaction records.

The server keeps a `KpiWindow` (an in-memory ring of small samples, cheap to add to and to scan);
the CLI builds samples from the store (`samples_from_records(store.list_interactions(since=...))`).
Eval and shadow traffic never enter a window.

Satisfaction is on a 1-5 scale: a rating's `score` counts as given, a thumb up as 5 and a thumb
down as 1 when there is no score.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

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


def _p95(values: list[float]) -> float | None:
    if not values:
        return None
    values.sort()
    # nearest-rank percentile: the smallest value with at least 95% of values at or below it
    return values[max(0, math.ceil(0.95 * len(values)) - 1)]


def compute_kpis(samples: Iterable[Sample], window_s: float) -> Kpis:
    """The KPIs of the given samples (already restricted to one window)."""
    n = completed = failed = escalated = safety = tools = tool_errors = 0
    cost = 0.0
    latencies: list[float] = []
    ratings: list[float] = []
    sessions: set[str] = set()
    for s in samples:
        n += 1
        sessions.add(s.session_id)
        completed += s.status == "completed"
        failed += s.status == "failed"
        escalated += s.status == "escalated"
        safety += s.safety
        tools += s.tool_calls
        tool_errors += s.tool_errors
        cost += s.cost_usd
        latencies.append(s.latency_s)
        if s.rating is not None:
            ratings.append(s.rating)

    def rate(part: int, whole: int) -> float | None:
        return part / whole if whole else None

    return Kpis(
        window_s=window_s,
        interactions=n,
        sessions=len(sessions),
        completion_rate=rate(completed, n),
        error_rate=rate(failed, n),
        escalation_rate=rate(escalated, n),
        avg_latency_s=sum(latencies) / n if n else None,
        p95_latency_s=_p95(latencies),
        cost_per_interaction=cost / n if n else None,
        cost_per_session=cost / len(sessions) if sessions else None,
        cost_usd=cost,
        safety_incidents=safety,
        errors=failed,
        tool_calls=tools,
        tool_error_rate=rate(tool_errors, tools),
        ratings=len(ratings),
        satisfaction=sum(ratings) / len(ratings) if ratings else None,
    )


def samples_from_records(records: Iterable[InteractionRecord]) -> list[Sample]:
    """Samples of the production records among `records` (eval and shadow left out)."""
    return [Sample.of(r) for r in records if r.traffic_source not in OFFLINE_TRAFFIC]


class KpiWindow:
    """A ring of recent production samples, kept for `horizon_s` (and at most `max_samples`).

    Args:
        horizon_s: how far back samples are kept (the longest window anyone asks for).
        max_samples: a memory bound for very busy servers; the oldest samples go first.
    """

    def __init__(self, horizon_s: float = 86400.0, max_samples: int = 200_000) -> None:
        self.horizon_s = horizon_s
        self._ring: deque[Sample] = deque(maxlen=max_samples)
        self._by_id: dict[str, Sample] = {}
        self._lock = threading.Lock()

    def add(self, record: InteractionRecord) -> None:
        """Add a finished interaction (eval and shadow traffic are ignored)."""
        if record.traffic_source in OFFLINE_TRAFFIC:
            return
        s = Sample.of(record)
        with self._lock:
            if len(self._ring) == self._ring.maxlen:
                self._by_id.pop(self._ring[0].id, None)
            self._ring.append(s)
            self._by_id[s.id] = s

    def add_feedback(self, interaction_id: str, feedback: dict[str, Any] | None) -> None:
        """Update the rating of an interaction still in the window."""
        with self._lock:
            s = self._by_id.get(interaction_id)
            if s is not None:
                s.rating = rating_of(feedback)

    def prune(self, now: float | None = None) -> None:
        cutoff = (now or time.time()) - self.horizon_s
        with self._lock:
            while self._ring and self._ring[0].at < cutoff:
                self._by_id.pop(self._ring.popleft().id, None)

    def samples(
        self,
        since: float,
        until: float | None = None,
        *,
        agent: str | None = None,
        version: str | None = None,
    ) -> list[Sample]:
        """Samples created in [since, until), optionally of one agent / version."""
        with self._lock:
            items = list(self._ring)
        return [
            s
            for s in items
            if s.at >= since
            and (until is None or s.at < until)
            and (agent is None or s.agent == agent)
            and (version is None or s.version == version)
        ]

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
        return compute_kpis(self.samples(end - window_s, end, agent=agent, version=version), window_s)

    def versions(self) -> list[tuple[str, str]]:
        """(agent, version) pairs present in the window, in first-seen order."""
        with self._lock:
            return list(dict.fromkeys((s.agent, s.version) for s in self._ring))

    def __len__(self) -> int:
        return len(self._ring)
