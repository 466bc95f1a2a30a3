"""Tail sampling and trace export: what keeps its spans, and what reaches an OTLP collector."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from records import interaction

from shipyard.config import load_config
from shipyard.demo import copy_project
from shipyard.observe import TraceSampler, configure_otlp, flush_export, set_span_exporter
from shipyard.runtime import Runtime
from shipyard.store import InteractionRecord


def record(**kw: Any) -> InteractionRecord:
    """An ordinary interaction (a cost of 0.001 unless `kw` says otherwise)."""
    return interaction(**{"cost_usd": 0.001, **kw})


def test_notable_traces_are_always_kept() -> None:
    s = TraceSampler(rate=0.0, min_samples=10)
    assert s.decide(record()).keep is False
    assert s.decide(record(status="failed", error="boom")).reason == "error"
    assert s.decide(record(status="blocked")).reason == "blocked"
    assert s.decide(record(guardrails=[{"name": "pii", "verdict": "block"}])).reason == "guardrail"
    for _ in range(50):
        s.decide(record(cost_usd=0.001))
    assert s.decide(record(cost_usd=0.05)).reason == "outlier_cost"
    assert s.decide(record(cost_usd=0.0011)).keep is False


def test_rate_is_deterministic_by_trace_id() -> None:
    s = TraceSampler(rate=0.25)
    records = [record() for _ in range(4000)]
    first = [s.decide(r).keep for r in records]
    assert first == [s.decide(r).keep for r in records]
    assert 0.21 < sum(first) / len(first) < 0.29
    assert all(TraceSampler(rate=1.0).decide(r).keep for r in records[:50])
    with pytest.raises(ValueError):
        TraceSampler(rate=1.5)


def test_held_traces_are_recalled_once_and_bounded() -> None:
    s = TraceSampler(rate=0.0, held=3)
    for i in range(5):
        s.hold(f"i{i}", [], [])
    assert s.recall("i0") is None and s.recall("i1") is None  # pushed out
    assert s.recall("i4") == ([], []) and s.recall("i4") is None


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = Runtime(load_config(copy_project(tmp_path) / "shipyard.yaml"))
    yield runtime
    set_span_exporter(None)


async def test_dropped_traces_leave_the_record_and_the_exporter(rt: Runtime) -> None:
    exported = InMemorySpanExporter()
    set_span_exporter(exported)
    rt.sampler = TraceSampler(rate=0.0)
    dropped = await rt.invoke("support", "Where is my order 10001?")
    assert (
        dropped.status == "completed" and dropped.spans == [] and dropped.metadata["trace"] == "not_sampled"
    )
    assert dropped.tool_calls and dropped.cost_usd > 0  # metrics still see everything
    held = rt.sampler.recall(dropped.id)
    assert held is not None and {s.name for s in held[0]} >= {
        "invoke_agent support",
        "execute_tool lookup_order",
    }

    # the demo project's refund policy refuses a refund made without the eligibility check: a
    # guardrail verdict, so the trace is always kept
    blocked = await rt.invoke("support", "Refund order 10003 please", version="1.1.0")
    assert blocked.guardrails[0]["verdict"] == "block" and blocked.spans and "trace" not in blocked.metadata
    assert flush_export()
    exported_traces = {format(s.context.trace_id, "032x") for s in exported.get_finished_spans()}
    assert exported_traces == {blocked.trace_id}  # only the kept trace was exported
    await rt.aclose()


class Collector(BaseHTTPRequestHandler):
    received: ClassVar[list[ExportTraceServiceRequest]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        req = ExportTraceServiceRequest()
        req.ParseFromString(body)
        Collector.received.append(req)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


async def test_kept_traces_reach_an_otlp_collector(rt: Runtime) -> None:
    server = HTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        configure_otlp(f"http://127.0.0.1:{server.server_port}")
        r = await rt.invoke("support", "Where is my order 10001?", session_id="otlp-1")
        assert flush_export()
    finally:
        server.shutdown()
    spans = [
        span
        for req in Collector.received
        for rs in req.resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    ]
    by_name = {s.name: s for s in spans if s.trace_id.hex() == r.trace_id}
    # the demo agent's guardrails and its exact-cache lookup
    checks = {n for n in by_name if n.startswith(("apply_guardrail ", "cache_lookup "))}
    assert set(by_name) - checks == {
        "invoke_agent support",
        "chat scripted-small",
        "execute_tool lookup_order",
    }
    attrs = {kv.key: kv.value for kv in by_name["chat scripted-small"].attributes}
    assert attrs["gen_ai.operation.name"].string_value == "chat"
    assert attrs["gen_ai.usage.input_tokens"].int_value > 0
    root = {kv.key: kv.value for kv in by_name["invoke_agent support"].attributes}
    assert root["gen_ai.conversation.id"].string_value == "otlp-1"
    await rt.aclose()
