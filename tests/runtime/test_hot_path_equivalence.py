"""The shortcuts the per-interaction path takes (issue 16: an eval case's own CPU) give exactly what the
general code gives: the masked record, the call cost, the usage read from a response, span records
and span attributes, and the eval runner's concurrency limit."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.trace import SpanKind

from shipyard.config import ModelPrices
from shipyard.cost import call_cost, cost_breakdown, usage_from_openai_chat
from shipyard.evals import AdaptiveLimiter
from shipyard.observe import end_span, get_tracer, start_span, to_record, to_records
from shipyard.observe._lean_span import _Attributes
from shipyard.runtime import ContentMask
from shipyard.store import InteractionRecord, LLMCallRecord, ToolCallRecord
from shipyard.types import Usage


def _record(**changes: Any) -> InteractionRecord:
    base = InteractionRecord(
        id="i1",
        trace_id="t" * 32,
        session_id="s1",
        user_id="u1",
        agent="bench",
        version="v1",
        traffic_source="eval",
        input="mail jane@example.org about order 10001",
        output="done",
        status="completed",
        latency_ms=12.5,
        input_tokens=3,
        output_tokens=4,
        cached_input_tokens=1,
        cost_usd=0.25,
        tool_calls=[ToolCallRecord("lookup", {"order_id": "10001"}, "success", 1.0, result={"s": "ok"})],
        llm_calls=[LLMCallRecord("m", "openai", 1.0, 3, 4, 1, 0.25, error="call +1 650-253-0000")],
        guardrails=[{"name": "pii", "reason": "saw jane@example.org"}],
        error=None,
        metadata={"eval_case": "c1", "who": "jane@example.org"},
        created_at=1.5,
        feedback={"thumbs": 1},
    )
    return dataclasses.replace(base, **changes)


@pytest.mark.parametrize("changes", [{}, {"error": "failed for jane@example.org"}, {"spans": []}])
def test_a_masked_record_keeps_every_field_as_dataclasses_replace_would(changes: dict[str, Any]) -> None:
    r = _record(**changes)
    kept, _ = ContentMask(True).keep(r, [])
    assert kept is not r
    assert kept.feedback == {"thumbs": 1} and kept.created_at == 1.5 and kept.latency_ms == 12.5
    assert "jane@example.org" not in repr(kept)
    expected = dataclasses.replace(
        r,
        input=kept.input,
        output=kept.output,
        error=kept.error,
        tool_calls=kept.tool_calls,
        llm_calls=kept.llm_calls,
        guardrails=kept.guardrails,
        metadata=kept.metadata,
    )
    assert kept == expected


@pytest.mark.parametrize(
    "usage",
    [Usage(), Usage(1234, 567), Usage(1000, 300, 400, 100, 50), Usage(7, 3, 9, 9, 9), Usage(10**6, 10**6, 1)],
)
@pytest.mark.parametrize(
    "prices",
    [
        ModelPrices(input=0.15, output=0.6),
        ModelPrices(input=3.0, output=15.0, cached_input=0.3, cache_write_input=3.75, reasoning=20.0),
    ],
)
def test_call_cost_is_the_breakdowns_total_to_the_last_bit(usage: Usage, prices: ModelPrices) -> None:
    assert call_cost(prices, usage) == cost_breakdown(prices, usage).total


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"prompt_tokens": 10, "completion_tokens": 5}, Usage(10, 5)),
        ({"prompt_tokens": -3, "completion_tokens": True}, Usage(0, 0)),
        ({"prompt_tokens": "12", "completion_tokens": 2.9, "total_tokens": 14}, Usage(12, 2)),
        ({"prompt_tokens": None, "completion_tokens": "x"}, Usage(0, 0)),
        (
            {
                "prompt_tokens": 10,
                "completion_tokens": 5,
                "prompt_tokens_details": {"cached_tokens": 4},
                "completion_tokens_details": {"reasoning_tokens": 2},
            },
            Usage(10, 5, 4, 0, 2),
        ),
        (
            {"prompt_tokens": 10, "prompt_tokens_details": [4], "completion_tokens_details": None},
            Usage(10, 0),
        ),
    ],
)
def test_usage_is_read_as_before(raw: dict[str, Any], expected: Usage) -> None:
    assert usage_from_openai_chat(raw) == expected


def test_span_records_of_a_trace_carry_the_same_ids_and_kinds_one_by_one_or_together() -> None:
    tracer = get_tracer()
    root = start_span(tracer, "invoke_agent bench", attributes={"gen_ai.operation.name": "invoke_agent"})
    chat = start_span(tracer, "chat m", parent=root, kind=SpanKind.CLIENT, attributes={"x": 1})
    chat.set_attributes({"gen_ai.response.finish_reasons": ("stop",), "n": 2})
    tool = start_span(tracer, "execute_tool lookup", parent=root)
    for s in (chat, tool, root):
        end_span(s)
    spans = [chat, tool, root]
    together = to_records(spans)
    assert together == [to_record(s) for s in spans]  # type: ignore[arg-type]
    ctx = root.get_span_context()
    assert {r.trace_id for r in together} == {format(ctx.trace_id, "032x")}
    assert together[0].parent_id == together[2].span_id == format(ctx.span_id, "016x")
    assert [r.kind for r in together] == ["client", "internal", "internal"]
    assert together[0].attributes["gen_ai.response.finish_reasons"] == ("stop",)


@pytest.mark.parametrize(
    "value", [("stop",), ("a", "b"), (), ["stop"], ("x", None), (1,), ("é",), ("stop", 1)]
)
def test_lean_span_attributes_store_what_the_sdk_stores(value: Any) -> None:
    ours = _Attributes(None, None, immutable=False, max_value_len=None)
    sdks = BoundedAttributes(None, None, immutable=False, max_value_len=None)
    for attrs in (ours, sdks):
        attrs._set_items({"k": value, "s": "x"})
    assert list(ours.items()) == list(sdks.items())


def test_the_limiter_takes_a_free_slot_at_once_and_waits_when_full() -> None:
    async def main() -> None:
        limiter = AdaptiveLimiter(2)
        await limiter.acquire()
        await limiter.acquire()
        assert limiter.in_flight == 2
        third = asyncio.create_task(limiter.acquire())
        await asyncio.sleep(0)
        assert not third.done() and limiter.in_flight == 2
        await limiter.release(throttled=False)
        await asyncio.wait_for(third, 60)
        assert limiter.in_flight == 2

    asyncio.run(main())
