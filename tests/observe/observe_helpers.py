"""Interaction records for the observability tests, and the samples of a `Metrics` registry."""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shipyard.observe import Kpis, Metrics, Sample
from shipyard.store import InteractionRecord, LLMCallRecord, ToolCallRecord

_n = iter(range(10**9))


def make_record(
    *,
    status: str = "completed",
    latency_ms: float = 800.0,
    cost: float = 0.002,
    at: float = 1_000_000.0,
    source: str = "production",
    tools: tuple[str, ...] = ("success",),
    version: str = "support@1.0.0+abc",
    session: str | None = None,
    feedback: dict[str, Any] | None = None,
    guardrails: list[dict[str, Any]] | None = None,
) -> InteractionRecord:
    i = next(_n)
    return InteractionRecord(
        id=f"i{i}",
        trace_id=f"{i:032x}",
        session_id=session or f"s{i}",
        user_id="u1",
        agent="support",
        version=version,
        traffic_source=source,
        input="my card is 4111 1111 1111 1111",
        output="Done, Alice.",
        status=status,
        latency_ms=latency_ms,
        input_tokens=120,
        output_tokens=30,
        cost_usd=cost,
        tool_calls=[
            ToolCallRecord(
                "lookup_order", {"order_id": "10001"}, s, 4.0, error=None if s == "success" else "boom"
            )
            for s in tools
        ],
        llm_calls=[LLMCallRecord("small", "openai", 350.0, 120, 30, 0, cost)],
        guardrails=guardrails or [],
        error="model call failed" if status == "failed" else None,
        metadata={"error_kind": "llm_http"} if status == "failed" else {},
        created_at=at,
        feedback=feedback,
    )


def samples(m: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the registry's Prometheus text, by (name, sorted labels)."""
    found = {}
    for family in text_string_to_metric_families(m.render().decode()):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


# KPIs the obvious way, to check the KPI math against -----------------------------------------------
NOW = 1_000_000.0


def plain_kpis(samples: list[Sample], window_s: float) -> dict[str, object]:
    """The KPIs computed the obvious way, one sample at a time."""
    n = len(samples)
    latencies = sorted(s.latency_s for s in samples)
    ratings = [s.rating for s in samples if s.rating is not None]
    sessions = {s.session_id for s in samples}
    tools = sum(s.tool_calls for s in samples)
    cost = sum(s.cost_usd for s in samples)
    count = {st: sum(s.status == st for s in samples) for st in ("completed", "failed", "escalated")}
    return {
        "window_s": window_s,
        "interactions": n,
        "sessions": len(sessions),
        "completion_rate": count["completed"] / n if n else None,
        "error_rate": count["failed"] / n if n else None,
        "escalation_rate": count["escalated"] / n if n else None,
        "avg_latency_s": sum(latencies) / n if n else None,
        "p95_latency_s": latencies[max(0, math.ceil(0.95 * n) - 1)] if n else None,
        "cost_per_interaction": cost / n if n else None,
        "cost_per_session": cost / len(sessions) if sessions else None,
        "cost_usd": cost,
        "safety_incidents": sum(s.safety for s in samples),
        "errors": count["failed"],
        "tool_calls": tools,
        "tool_error_rate": sum(s.tool_errors for s in samples) / tools if tools else None,
        "ratings": len(ratings),
        "satisfaction": sum(ratings) / len(ratings) if ratings else None,
    }


def same(got: Kpis, want: dict[str, object]) -> None:
    for key, value in want.items():
        assert getattr(got, key) == (value if value is None else pytest.approx(value)), key


def random_samples(rng: random.Random, n: int) -> list[Sample]:
    """`n` random samples of the last hour (agents, versions, 40 sessions, statuses, latencies with
    ties, costs, tools, safety flags, ratings), drawn with numpy at once from a seed `rng` gives."""
    g = np.random.default_rng(rng.getrandbits(64))

    def pick(options: tuple[Any, ...]) -> list[Any]:
        return [options[i] for i in g.integers(0, len(options), n).tolist()]

    latency = np.choose(g.integers(0, 3, n), (np.full(n, 0.5), np.full(n, 1.0), g.uniform(0.1, 9.0, n)))
    return [
        Sample(f"i{i}", *fields)
        for i, fields in enumerate(
            zip(
                (NOW - g.uniform(0, 3600, n)).tolist(),
                pick(("support", "billing")),
                pick(("v1", "v2", "v3")),
                [f"s{k}" for k in g.integers(0, 40, n).tolist()],
                pick(("completed", "completed", "failed", "escalated", "blocked")),
                latency.tolist(),
                g.uniform(0, 0.01, n).tolist(),
                g.integers(0, 4, n).tolist(),
                g.integers(0, 2, n).tolist(),
                (g.random(n) < 0.1).tolist(),
                pick((None, None, 1.0, 4.0, 5.0)),
                strict=True,
            )
        )
    ]
