"""Event logs: JSON lines per lifecycle event, content redacted unless capture is on."""

from __future__ import annotations

import io

import orjson
import pytest
from observe_helpers import make_record

from shipyard.observe import configure_logging, log_event, log_feedback, log_interaction


def events(stream: io.StringIO) -> list[dict]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_one_interaction_gives_its_lifecycle_events_redacted() -> None:
    out = io.StringIO()
    configure_logging(stream=out)
    r = make_record(tools=("success", "error"), guardrails=[{"name": "pii", "verdict": "redact"}])
    log_interaction(r)
    got = events(out)
    assert [e["event"] for e in got] == [
        "request_received",
        "llm_call",
        "tool_call",
        "tool_call",
        "guardrail",
        "response",
    ]
    for e in got:
        assert (
            e["trace_id"] == r.trace_id
            and e["session_id"] == r.session_id
            and e["timestamp"].endswith("+00:00")
        )
    assert got[0]["input"] == "[redacted: 30 chars]" and "4111" not in out.getvalue()
    assert got[2]["arguments"] == {"order_id": "[redacted]"} and got[2]["tool"] == "lookup_order"
    assert got[3]["level"] == "warning" and got[3]["result_status"] == "error"
    assert got[1]["tokens_used"] == {"input": 120, "output": 30, "cached": 0}
    assert got[-1]["tokens_used"] == {"input": 120, "output": 30} and got[-1]["latency_ms"] == 800.0
    assert got[-1]["cost_usd"] == pytest.approx(0.002)


def test_content_capture_keeps_content_and_failures_log_an_error() -> None:
    out = io.StringIO()
    configure_logging(stream=out, content_capture=True)
    log_interaction(make_record(status="failed"))
    got = events(out)
    assert got[0]["input"].startswith("my card")
    assert got[2]["arguments"] == {"order_id": "10001"}
    err = next(e for e in got if e["event"] == "error")
    assert err["level"] == "error" and err["error"] == "model call failed" and err["error_kind"] == "llm_http"
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
