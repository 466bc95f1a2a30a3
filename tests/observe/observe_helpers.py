"""Interaction records for the observability tests, and the samples of a `Metrics` registry."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from shipyard.observe import Metrics
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
