"""The model proxy driven by a real `openai` client through the runtime: every call goes through
ctx.llm (traced, priced, recorded), tools run by the framework are Shipyard tool calls, options reach
the model, errors map to provider statuses, and calls outside an interaction are refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from proxy_project import ProxyProject

from shipyard.errors import ShipyardError
from shipyard.integrations import PROXY_BASE_URL, async_http_client, base_url_for, http_client
from shipyard.observe import semconv as sc
from shipyard.store import InteractionRecord


def spans(rec: InteractionRecord, prefix: str) -> list[Any]:
    return [s for s in rec.spans if s.name.startswith(prefix)]


@pytest.mark.parametrize("stream", [False, True])
async def test_a_framework_call_is_traced_priced_and_its_tool_is_a_shipyard_tool_call(
    make_project: Callable[..., ProxyProject], stream: bool
) -> None:
    p = make_project()
    rec = await p.rt.invoke("proxied", "where is order 12345?", metadata={"stream": stream})
    assert rec.status == "completed", rec.error
    assert rec.output == "Order 12345 is shipped."
    # two model calls through ctx.llm: tokens and cost on the record, one chat span each
    assert [c.model for c in rec.llm_calls] == ["mock", "mock"]
    assert rec.input_tokens == sum(c.input_tokens for c in rec.llm_calls) > 0
    assert rec.output_tokens > 0
    assert rec.cost_usd == pytest.approx((rec.input_tokens * 1.0 + rec.output_tokens * 2.0) / 1e6)
    chats = spans(rec, "chat mock")
    assert len(chats) == 2 and all(s.attributes[sc.INPUT_TOKENS] > 0 for s in chats)
    # the framework's own tool, declared only for the model, recorded as a Shipyard tool call
    [tool] = rec.tool_calls
    assert (tool.name, tool.arguments, tool.status) == ("lookup_order", {"order_id": "12345"}, "success")
    assert tool.result == {"order_id": "12345", "status": "shipped"} and tool.duration_ms >= 0
    [tool_span] = spans(rec, "execute_tool lookup_order")
    assert tool_span.attributes[sc.TOOL_CALL_ID] == "call_1"
    assert p.agents.TOOL_RUNS == ["12345"]
    # the mock saw the framework's conversation: the tool result went back to the model
    assert [m["role"] for m in p.requests[-1]["messages"]] == ["user", "assistant", "tool"]


async def test_options_reach_the_model_and_the_span(make_project: Callable[..., ProxyProject]) -> None:
    p = make_project()
    options = {
        "seed": 7,
        "stop": ["NEVER"],
        "tool_choice": "none",
        "temperature": 0.3,
        "top_p": 0.9,
        "frequency_penalty": 0.1,
        "presence_penalty": 0.2,
        "max_completion_tokens": 64,
        "response_format": {"type": "json_object"},
        "parallel_tool_calls": False,
    }
    rec = await p.rt.invoke("proxied", "where is order 12345?", metadata={"options": options})
    assert rec.status == "completed", rec.error
    # tool_choice "none" is honoured by the scripted model: it answers without calling the tool
    assert rec.output == "I can only look up orders." and rec.tool_calls == []
    sent = p.requests[-1]
    for key in ("seed", "stop", "tool_choice", "temperature", "top_p", "frequency_penalty"):
        assert sent[key] == options[key], key
    assert sent["presence_penalty"] == 0.2 and sent["max_tokens"] == 64
    assert sent["response_format"] == {"type": "json_object"} and sent["parallel_tool_calls"] is False
    assert sent["model"] == "mock"  # the version's model answers, not the one the framework named
    [chat] = spans(rec, "chat mock")
    a = chat.attributes
    assert (a[sc.REQUEST_SEED], a[sc.REQUEST_TEMPERATURE], a[sc.REQUEST_MAX_TOKENS]) == (7, 0.3, 64)
    assert list(a[sc.REQUEST_STOP_SEQUENCES]) == ["NEVER"] and a[sc.REQUEST_TOOL_CHOICE] == "none"
    assert a[sc.OUTPUT_TYPE] == "json" and a[sc.REQUEST_PARALLEL_TOOL_CALLS] is False
    assert a[sc.REQUEST_TOP_P] == 0.9


async def test_named_tool_choice_and_stop_are_honoured(make_project: Callable[..., ProxyProject]) -> None:
    p = make_project()
    forced = {"tool_choice": {"type": "function", "function": {"name": "lookup_order"}}}
    rec = await p.rt.invoke("proxied", "hello there", metadata={"options": forced})
    # no rule calls the tool for "hello there": forced, the model calls it (with no arguments)
    assert [c.name for c in rec.tool_calls] == ["lookup_order"]
    assert rec.tool_calls[0].status == "error" and "TypeError" in (rec.tool_calls[0].error or "")
    rec = await p.rt.invoke("proxied", "hello", metadata={"options": {"stop": " look"}})
    assert rec.output == "I can only"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"n": 2}, "'n' must be 1"),
        ({"extra_body": {"logit_bias": {"1": 5}}}, "does not pass 'logit_bias' through"),
        ({"seed": "seven"}, "'seed' must be an integer"),
        ({"tool_choice": "sometimes"}, "'tool_choice' must be"),
    ],
)
async def test_what_the_proxy_cannot_pass_through_is_a_400_naming_it(
    make_project: Callable[..., ProxyProject], options: dict[str, Any], field: str
) -> None:
    p = make_project()
    rec = await p.rt.invoke("proxied", "order 12345", metadata={"options": options})
    assert rec.output.startswith("400 BadRequestError") and field in rec.output
    assert p.requests == [] and rec.llm_calls == []


async def test_a_model_failure_is_a_provider_status_and_the_client_does_not_retry(
    make_project: Callable[..., ProxyProject],
) -> None:
    p = make_project(error_rate=1.0)
    # the openai client may retry twice, but the proxy's answer says not to: Shipyard already did
    rec = await p.rt.invoke("proxied", "order 12345", metadata={"client_retries": 2})
    assert rec.output.startswith("503 InternalServerError") and "gave up after 2 attempt(s)" in rec.output
    assert p.mock.app is not None and p.mock.app.requests == 2  # max_retries: 1 -> two attempts, no more
    [call] = rec.llm_calls
    assert call.status == "error" and call.attempts == 2
    # a framework that lets the error propagate: the interaction failed *as a model failure*
    rec = await p.rt.invoke("proxied", "order 12345", metadata={"raise": True})
    assert rec.status == "failed" and rec.metadata["error_kind"] == "llm_unavailable"
    assert "model call failed" in (rec.error or "") and "InternalServerError" in (rec.error or "")


async def test_rate_limits_are_429(make_project: Callable[..., ProxyProject]) -> None:
    p = make_project(rate_limit_rate=1.0, retry_after_s=0)
    rec = await p.rt.invoke("proxied", "order 12345")
    assert rec.output.startswith("429 RateLimitError")


async def test_outside_an_interaction_nothing_is_called(make_project: Callable[..., ProxyProject]) -> None:
    import openai  # here, not at the top: not every pytest worker collecting this file needs it

    p = make_project()
    c = openai.AsyncOpenAI(
        base_url=PROXY_BASE_URL, api_key="x", http_client=async_http_client(), max_retries=0
    )
    with pytest.raises(openai.BadRequestError, match="outside a Shipyard interaction"):
        await c.chat.completions.create(model="m", messages=[{"role": "user", "content": "order 12345"}])
    sync = openai.OpenAI(base_url=PROXY_BASE_URL, api_key="x", http_client=http_client(), max_retries=0)
    with pytest.raises(openai.BadRequestError, match="outside a Shipyard interaction"):
        sync.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert p.requests == []
    assert (await c.models.list()).data[0].id == "shipyard"
    with pytest.raises(ShipyardError, match="outside the agent call it is for"):
        base_url_for()


async def test_a_sync_framework_in_a_worker_thread(make_project: Callable[..., ProxyProject]) -> None:
    p = make_project()
    rec = await p.rt.invoke("proxied_sync", "where is order 777?")
    assert rec.status == "completed", rec.error
    assert rec.output == "Order 777 is shipped."
    assert len(rec.llm_calls) == 2 and rec.cost_usd > 0
    [tool] = rec.tool_calls
    assert (tool.name, tool.status, tool.result) == (
        "lookup_order",
        "success",
        {"order_id": "777", "status": "shipped"},
    )
    assert p.agents.TOOL_RUNS == ["777"]


async def test_a_blocking_call_on_the_event_loop_is_refused_not_hung(
    make_project: Callable[..., ProxyProject],
) -> None:
    p = make_project()
    rec = await p.rt.invoke("blocking", "hi")
    assert rec.output.startswith("500: ") and "would" in rec.output and "block" in rec.output
    assert p.requests == []


async def test_a_failing_framework_tool_is_recorded_and_re_raised(
    make_project: Callable[..., ProxyProject],
) -> None:
    p = make_project()
    rec = await p.rt.invoke("proxied", "where is order 99999?")
    [tool] = rec.tool_calls
    assert tool.status == "error" and tool.error == "LookupError: no order 99999"
    [span] = spans(rec, "execute_tool")
    assert span.status == "error" and span.attributes[sc.TOOL_STATUS] == "error"
    # the agent caught its own exception (re-raised unchanged) and gave the model the error
    assert rec.status == "completed" and p.requests[-1]["messages"][-1]["content"] == (
        '{"error": "no order 99999"}'
    )
