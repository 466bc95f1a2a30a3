"""Event logs: one JSON line per interaction, content redacted unless capture is on."""

from __future__ import annotations

import io

import orjson
import pytest
from observe_helpers import make_record

from shipyard.observe import configure_logging, log_event, log_feedback, log_interaction


def events(stream: io.StringIO) -> list[dict]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_one_interaction_is_one_line_redacted() -> None:
    out = io.StringIO()
    configure_logging(stream=out)
    r = make_record(tools=("success", "error"), guardrails=[{"name": "pii", "verdict": "redact"}])
    log_interaction(r)
    [line] = events(out)
    assert line["event"] == "interaction" and line["interaction_id"] == r.id
    assert line["trace_id"] == r.trace_id and line["session_id"] == r.session_id
    assert line["timestamp"].endswith("+00:00")
    assert line["input"] == "[redacted: 30 chars]" and "4111" not in out.getvalue()
    assert line["level"] == "warning"  # one of its tool calls failed
    first, second = line["tool_calls"]
    assert first["arguments"] == {"order_id": "[redacted]"} and first["tool"] == "lookup_order"
    assert second["result_status"] == "error" and second["error"] == "boom"
    [call] = line["llm_calls"]
    assert call["tokens_used"] == {"input": 120, "output": 30, "cached": 0} and call["model"] == "small"
    assert line["guardrails"] == [{"guardrail": "pii", "result_status": "redact"}]
    assert line["tokens_used"] == {"input": 120, "output": 30, "cached": 0} and line["latency_ms"] == 800.0
    assert line["cost_usd"] == pytest.approx(0.002) and line["result_status"] == "completed"
    assert "error" not in line


def test_content_capture_keeps_content_and_failures_log_at_error() -> None:
    out = io.StringIO()
    configure_logging(stream=out, content_capture=True)
    log_interaction(make_record(status="failed"))
    log_interaction(make_record())
    failed, fine = events(out)
    assert failed["input"].startswith("my card")
    assert failed["tool_calls"][0]["arguments"] == {"order_id": "10001"}
    assert failed["level"] == "error" and failed["error"] == "model call failed"
    assert failed["error_kind"] == "llm_http"
    assert fine["level"] == "info"
    configure_logging(stream=io.StringIO())  # back to redaction for other tests


def test_level_filter_and_binary_streams_and_feedback() -> None:
    out = io.BytesIO()
    configure_logging(stream=out, level="warning")
    log_event("chatter", level="info", n=1)
    log_event("trouble", level="error", n=2)
    lines = [orjson.loads(x) for x in out.getvalue().splitlines()]
    assert [x["event"] for x in lines] == ["trouble"]
    text = io.StringIO()
    configure_logging(stream=text)
    log_feedback(make_record(feedback={"thumbs": -1, "score": 2.0, "comment": "too slow"}))
    fb = events(text)[0]
    assert fb["event"] == "feedback" and fb["thumbs"] == -1 and fb["comment"] == "[redacted: 8 chars]"
    with pytest.raises(ValueError, match="log level"):
        configure_logging(level="loud")


def test_costs_are_logged_without_float_noise() -> None:
    out = io.StringIO()
    configure_logging(stream=out)
    r = make_record()
    r.cost_usd = 0.00005294999999999999  # a sum of prices, as a walkthrough saw it logged
    r.llm_calls[0].cost_usd = 0.1 + 0.2
    assert str(r.cost_usd) == "5.294999999999999e-05"
    log_interaction(r)
    text = out.getvalue()
    [line] = events(out)
    assert line["cost_usd"] == 5.295e-05 and "5.29499" not in text and "0.30000" not in text
    assert line["llm_calls"][0]["cost_usd"] == 0.3
