"""Tail sampling of traces: which interactions keep their spans.

The decision is made when an interaction ends, so it can look at what happened: every trace with an
error, a guardrail block, or an outlier cost is kept; the rest are kept at the configured rate
(deterministically by trace id, so every replica and exporter agrees). Spans of a trace that was not
kept stay in a bounded buffer for a while, so negative feedback that arrives later can still bring
them back. Metrics and KPIs come from the interaction record, not from spans: they count every
interaction, before sampling."""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from shipyard.store import InteractionRecord, SpanRecord

KEEP_STATUSES = frozenset({"failed", "blocked"})


@dataclass(frozen=True, slots=True)
class SamplingDecision:
    keep: bool
    reason: str  # error | blocked | guardrail | outlier_cost | sampled | not_sampled | all


class TraceSampler:
    """Decide per finished interaction whether its spans are kept.

    Args:
        rate: share of ordinary traces kept (1.0 keeps everything, 0 keeps only the notable ones).
        outlier_sigmas: a cost this many standard deviations above the agent's running mean is an
            outlier (kept); needs `min_samples` interactions of that agent first.
        held: how many dropped traces are held for late negative feedback.
    """

    def __init__(
        self, rate: float = 1.0, *, outlier_sigmas: float = 3.0, min_samples: int = 30, held: int = 5000
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"sample rate must be between 0 and 1, got {rate}")
        self.rate = rate
        self.outlier_sigmas = outlier_sigmas
        self.min_samples = min_samples
        self._threshold = int(rate * 2**64)
        self._cost: dict[str, tuple[int, float, float]] = {}  # agent -> (n, mean, M2) (Welford)
        self._held: OrderedDict[str, tuple[list[SpanRecord], list[Any]]] = OrderedDict()
        self._held_max = held
        self._lock = threading.Lock()

    def decide(self, record: InteractionRecord) -> SamplingDecision:
        """Keep or drop this interaction's spans, and why."""
        outlier = self._observe_cost(record.agent, record.cost_usd)
        if record.error is not None or record.status == "failed":
            return SamplingDecision(True, "error")
        if record.status in KEEP_STATUSES:
            return SamplingDecision(True, "blocked")
        if any(g.get("verdict") in ("block", "escalate") for g in record.guardrails):
            return SamplingDecision(True, "guardrail")
        if outlier:
            return SamplingDecision(True, "outlier_cost")
        if self.rate >= 1.0:
            return SamplingDecision(True, "all")
        # deterministic by trace id, like OTel's TraceIdRatioBased sampler
        keep = int(record.trace_id[-16:], 16) < self._threshold
        return SamplingDecision(keep, "sampled" if keep else "not_sampled")

    def _observe_cost(self, agent: str, cost: float) -> bool:
        """Update the agent's running cost statistics; True when `cost` is an outlier."""
        with self._lock:
            n, mean, m2 = self._cost.get(agent, (0, 0.0, 0.0))
            outlier = False
            if n >= self.min_samples:
                sd = math.sqrt(m2 / (n - 1)) if n > 1 else 0.0
                outlier = cost > mean + self.outlier_sigmas * sd and cost > mean
            n += 1
            delta = cost - mean
            mean += delta / n
            m2 += delta * (cost - mean)
            self._cost[agent] = (n, mean, m2)
        return outlier

    def hold(self, interaction_id: str, spans: list[SpanRecord], otel_spans: list[Any]) -> None:
        """Keep a dropped trace's spans (as records and as OTel spans, for export) for a while, in
        case negative feedback recalls them."""
        with self._lock:
            self._held[interaction_id] = (spans, otel_spans)
            while len(self._held) > self._held_max:
                self._held.popitem(last=False)

    def recall(self, interaction_id: str) -> tuple[list[SpanRecord], list[Any]] | None:
        """The spans of a dropped trace, once (negative feedback arrived for it)."""
        with self._lock:
            return self._held.pop(interaction_id, None)
