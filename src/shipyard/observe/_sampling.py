"""Tail sampling of traces: which interactions keep their spans.

The decision is made when an interaction ends, so it can look at what happened: every trace with an
error, a guardrail block, or an outlier cost is kept; the rest are kept at the configured rate
(deterministically by trace id, so every replica and exporter agrees). Spans of a trace that was not
kept stay in a bounded buffer for a while, so negative feedback that arrives later can still bring
them back. Metrics and KPIs come from the interaction record, not from spans: they count every
interaction, before sampling."""

from __future__ import annotations

import math
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from shipyard.store import InteractionRecord, SpanRecord

KEEP_STATUSES = frozenset({"failed", "blocked"})
SPAN_BYTES = 4000  # a held span: its SpanRecord and its OTel span, without attribute text (measured)


def held_bytes(spans: list[SpanRecord]) -> int:
    """About how much memory a held trace takes: a fixed part per span plus its attributes' text."""
    total = 0
    for s in spans:
        total += SPAN_BYTES
        for value in s.attributes.values():
            if isinstance(value, str):
                total += sys.getsizeof(value)
            elif isinstance(value, (list, tuple)):
                total += sum(sys.getsizeof(v) for v in value if isinstance(v, str))
    return total


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
        held_bytes: at most this much memory for them (see `held_bytes`); the oldest go first.
    """

    def __init__(
        self,
        rate: float = 1.0,
        *,
        outlier_sigmas: float = 3.0,
        min_samples: int = 30,
        held: int = 5000,
        held_bytes: int = 32 * 2**20,
    ) -> None:
        self.set_rate(rate)
        self.outlier_sigmas = outlier_sigmas
        self.min_samples = min_samples
        self._cost: dict[str, tuple[int, float, float]] = {}  # agent -> (n, mean, M2) (Welford)
        self._held: OrderedDict[str, tuple[list[SpanRecord], list[Any], int]] = OrderedDict()
        self._held_max = held
        self._held_bytes_max = held_bytes
        self._held_bytes = 0
        self._lock = threading.Lock()

    def set_rate(self, rate: float) -> None:
        """Keep `rate` of ordinary traces from now on (a config reload); what is held stays held."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"sample rate must be between 0 and 1, got {rate}")
        self.rate = rate
        self._threshold = int(rate * 2**64)

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
        size = held_bytes(spans)
        with self._lock:
            old = self._held.pop(interaction_id, None)
            if old is not None:
                self._held_bytes -= old[2]
            self._held[interaction_id] = (spans, otel_spans, size)
            self._held_bytes += size
            while len(self._held) > self._held_max or (
                self._held_bytes > self._held_bytes_max and len(self._held) > 1
            ):
                self._held_bytes -= self._held.popitem(last=False)[1][2]

    @property
    def held_size(self) -> tuple[int, int]:
        """How many dropped traces are held, and about how many bytes they take."""
        with self._lock:
            return len(self._held), self._held_bytes

    def recall(self, interaction_id: str) -> tuple[list[SpanRecord], list[Any]] | None:
        """The spans of a dropped trace, once (negative feedback arrived for it)."""
        with self._lock:
            found = self._held.pop(interaction_id, None)
            if found is None:
                return None
            self._held_bytes -= found[2]
            return found[0], found[1]
