"""Each provider's usage report in the normalized buckets, and its price: cached tokens billed once,
reasoning at the output price unless the table names one, dated prices chosen by the call's time.

The usage bodies are the shapes the providers document: OpenAI chat completions (`usage` with
`prompt_tokens_details.cached_tokens` and `completion_tokens_details.reasoning_tokens`), the OpenAI
responses API (`input_tokens_details`, `output_tokens_details`), Anthropic messages (`input_tokens`
without the cache's `cache_read_input_tokens` and `cache_creation_input_tokens`) and Gemini
`usageMetadata` (`promptTokenCount` including `cachedContentTokenCount`, `thoughtsTokenCount`
beside `candidatesTokenCount`)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError

from shipyard.config import ModelPrices
from shipyard.cost import (
    call_cost,
    cost_breakdown,
    parse_usage,
    usage_format,
    usage_from_anthropic,
    usage_from_gemini,
    usage_from_openai_chat,
    usage_from_openai_responses,
)
from shipyard.llm import OpenAIChatClient, Usage
from shipyard.llm._wire import usage_json

OPENAI_CHAT = {
    "id": "chatcmpl-abc123",
    "object": "chat.completion",
    "model": "o4-mini-2025-04-16",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
    "usage": {
        "prompt_tokens": 2006,
        "completion_tokens": 300,
        "total_tokens": 2306,
        "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 192,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
}
OPENAI_RESPONSES_USAGE = {
    "input_tokens": 2006,
    "input_tokens_details": {"cached_tokens": 1920},
    "output_tokens": 300,
    "output_tokens_details": {"reasoning_tokens": 192},
    "total_tokens": 2306,
}
ANTHROPIC_MESSAGE = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5",
    "content": [{"type": "text", "text": "Hi"}],
    "stop_reason": "end_turn",
    "usage": {
        "input_tokens": 86,
        "cache_creation_input_tokens": 1000,
        "cache_read_input_tokens": 1920,
        "output_tokens": 300,
    },
}
GEMINI_RESPONSE = {
    "candidates": [{"content": {"parts": [{"text": "Hi"}], "role": "model"}, "finishReason": "STOP"}],
    "usageMetadata": {
        "promptTokenCount": 2006,
        "cachedContentTokenCount": 1920,
        "candidatesTokenCount": 108,
        "thoughtsTokenCount": 192,
        "totalTokenCount": 2306,
    },
    "modelVersion": "gemini-2.5-flash",
}

# USD per million: input 1.00, cache read 0.10, cache write 1.25, output 4.00
PRICES = ModelPrices.model_validate(
    {"input": 1.0, "cached_input": 0.1, "cache_write_input": 1.25, "output": 4.0}
)


def test_openai_chat_usage_buckets() -> None:
    u = usage_from_openai_chat(OPENAI_CHAT["usage"])  # type: ignore[arg-type]
    assert u == Usage(
        input_tokens=2006,
        output_tokens=300,
        cached_input_tokens=1920,
        cache_write_input_tokens=0,
        reasoning_tokens=192,
    )
    assert usage_format(OPENAI_CHAT["usage"]) == "openai"  # type: ignore[arg-type]


def test_openai_client_reads_usage_through_the_one_parser() -> None:
    import orjson

    client = OpenAIChatClient("http://127.0.0.1:9/v1", "o4-mini", breaker=None)
    resp = client._parse(orjson.dumps(OPENAI_CHAT))
    assert resp.usage == usage_from_openai_chat(OPENAI_CHAT["usage"])  # type: ignore[arg-type]


def test_openai_responses_usage_buckets() -> None:
    u = usage_from_openai_responses(OPENAI_RESPONSES_USAGE)
    assert (u.input_tokens, u.cached_input_tokens, u.output_tokens, u.reasoning_tokens) == (
        2006,
        1920,
        300,
        192,
    )
    assert usage_format(OPENAI_RESPONSES_USAGE) == "openai_responses"


def test_anthropic_input_tokens_exclude_the_cache_so_they_are_added() -> None:
    u = usage_from_anthropic(ANTHROPIC_MESSAGE["usage"])  # type: ignore[arg-type]
    assert u == Usage(
        input_tokens=86 + 1000 + 1920,
        output_tokens=300,
        cached_input_tokens=1920,
        cache_write_input_tokens=1000,
        reasoning_tokens=0,
    )
    assert usage_format(ANTHROPIC_MESSAGE["usage"]) == "anthropic"  # type: ignore[arg-type]


def test_gemini_thoughts_are_output_and_cached_content_is_part_of_the_prompt() -> None:
    u = usage_from_gemini(GEMINI_RESPONSE["usageMetadata"])  # type: ignore[arg-type]
    assert u == Usage(
        input_tokens=2006,
        output_tokens=108 + 192,
        cached_input_tokens=1920,
        cache_write_input_tokens=0,
        reasoning_tokens=192,
    )
    assert parse_usage(GEMINI_RESPONSE["usageMetadata"]) == u  # type: ignore[arg-type]


def test_cached_tokens_are_billed_once_in_every_format() -> None:
    """2006 prompt tokens of which 1920 read from the cache: 86 at the input price, 1920 at the
    cached price; never 2006 at the input price plus 1920 again."""
    expected_input = (86 * 1.0 + 1920 * 0.1) / 1e6
    for usage in (
        parse_usage(OPENAI_CHAT["usage"]),  # type: ignore[arg-type]
        parse_usage(OPENAI_RESPONSES_USAGE),
        parse_usage(GEMINI_RESPONSE["usageMetadata"]),  # type: ignore[arg-type]
    ):
        b = cost_breakdown(PRICES, usage)
        assert b.input + b.cached_input == pytest.approx(expected_input)
        assert b.cache_write_input == 0
    anthropic = cost_breakdown(PRICES, parse_usage(ANTHROPIC_MESSAGE["usage"]))  # type: ignore[arg-type]
    assert anthropic.input == pytest.approx(86 * 1.0 / 1e6)
    assert anthropic.cached_input == pytest.approx(1920 * 0.1 / 1e6)
    assert anthropic.cache_write_input == pytest.approx(1000 * 1.25 / 1e6)
    assert anthropic.total == pytest.approx((86 * 1.0 + 1920 * 0.1 + 1000 * 1.25 + 300 * 4.0) / 1e6)


def test_reasoning_is_billed_at_the_output_price_unless_the_table_says() -> None:
    usage = parse_usage(OPENAI_CHAT["usage"])  # type: ignore[arg-type]
    b = cost_breakdown(PRICES, usage)
    assert b.output == pytest.approx(108 * 4.0 / 1e6) and b.reasoning == pytest.approx(192 * 4.0 / 1e6)
    priced = ModelPrices.model_validate({"input": 1.0, "output": 4.0, "reasoning": 8.0})
    assert cost_breakdown(priced, usage).reasoning == pytest.approx(192 * 8.0 / 1e6)
    assert call_cost(priced, usage) == pytest.approx((2006 * 1.0 + 108 * 4.0 + 192 * 8.0) / 1e6)


def test_defaults_cached_and_cache_write_at_the_input_price() -> None:
    plain = ModelPrices.model_validate({"input": 2.0, "output": 3.0})
    u = Usage(input_tokens=100, output_tokens=10, cached_input_tokens=40, cache_write_input_tokens=30)
    assert call_cost(plain, u) == pytest.approx((100 * 2.0 + 10 * 3.0) / 1e6)


def test_inconsistent_or_missing_numbers_are_clamped_not_trusted() -> None:
    assert parse_usage(None) == Usage() and parse_usage({}) == Usage()
    odd = usage_from_openai_chat(
        {"prompt_tokens": 10, "completion_tokens": "x", "prompt_tokens_details": {"cached_tokens": 50}}
    )
    assert odd == Usage(input_tokens=10, output_tokens=0, cached_input_tokens=10)
    assert usage_from_anthropic({"input_tokens": -5, "output_tokens": None}) == Usage()
    with pytest.raises(ValueError, match="unknown usage format 'bedrock'"):
        parse_usage({"x": 1}, "bedrock")


def test_wire_format_round_trips_reasoning() -> None:
    u = Usage(input_tokens=50, output_tokens=20, cached_input_tokens=10, reasoning_tokens=5)
    assert usage_from_openai_chat(usage_json(u)) == u


def test_dated_prices_pick_the_entry_in_effect_when_the_call_was_made() -> None:
    today = datetime.now(UTC).date()
    old, new = today - timedelta(days=30), today - timedelta(days=2)
    prices = ModelPrices.model_validate(
        [
            {"effective": new.isoformat(), "input": 2.0, "output": 8.0},  # order in the file does not matter
            {"effective": old.isoformat(), "input": 3.0, "cached_input": 1.5, "output": 12.0},
        ]
    )
    u = Usage(input_tokens=1_000_000, output_tokens=0)
    day = 86400
    at_old = datetime.combine(old, datetime.min.time(), UTC).timestamp() + day / 2
    at_new = datetime.combine(new, datetime.min.time(), UTC).timestamp() + 1
    assert call_cost(prices, u, at=at_old) == pytest.approx(3.0)
    assert call_cost(prices, u, at=at_new - 2) == pytest.approx(3.0)  # the day before it took effect
    assert call_cost(prices, u, at=at_new) == pytest.approx(2.0)
    assert call_cost(prices, u) == pytest.approx(2.0)  # now
    assert (prices.input, prices.output, prices.cached_input) == (2.0, 8.0, None)  # in effect at load
    future = today + timedelta(days=10)
    scheduled = ModelPrices.model_validate(
        [{"effective": old.isoformat(), "input": 1.0}, {"effective": future.isoformat(), "input": 5.0}]
    )
    assert scheduled.input == 1.0
    at_future = datetime.combine(future, datetime.min.time(), UTC).timestamp() + 5
    assert call_cost(scheduled, u, at=at_future) == pytest.approx(5.0)


@pytest.mark.parametrize(
    ("prices", "message"),
    [
        (
            [{"effective": "2020-01-01", "input": 1}, {"effective": "2020-01-01", "input": 2}],
            "take effect on 2020-01-01",
        ),
        (
            [{"effective": (date.today() + timedelta(days=400)).isoformat(), "input": 1}],
            "no price is in effect today",
        ),
        ([{"input": 1}], "effective"),
        ([{"effective": "not a date", "input": 1}], "date"),
        ([{"effective": "2020-01-01", "input": -1}], "greater than or equal to 0"),
        ({"input": 1, "dated": [{"effective": "2020-01-01", "input": 2}]}, "not both"),
        ({"input": 1, "ouput": 2}, "Extra inputs"),
    ],
)
def test_bad_price_tables_are_refused(prices: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ModelPrices.model_validate(prices)


def test_a_bad_price_list_in_shipyard_yaml_names_the_field_and_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from shipyard.config import load_config
    from shipyard.errors import ShipyardError

    (tmp_path / "rules.yaml").write_text('default: "ok"\nrules: []\n')
    (tmp_path / "shipyard.yaml").write_text(
        "models:\n"
        "  m:\n"
        "    provider: scripted\n"
        "    rules: rules.yaml\n"
        "    prices:\n"
        "      - {effective: 2020-01-01, input: 1.0, output: 2.0}\n"
        "      - {effective: 2020-01-01, input: 2.0, output: 2.0}\n"
        "agents: {}\n"
    )
    with pytest.raises(ShipyardError) as e:
        load_config(tmp_path / "shipyard.yaml")
    assert "models.m.prices" in e.value.message and "2020-01-01" in e.value.message
