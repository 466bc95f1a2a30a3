"""Targets that are files: alert transitions appended as JSON lines (`alerts.files`), and kept traces
in OpenTelemetry's OTLP file-exporter format (`server.otlp_file`), read back with an OTLP/JSON reader
that first reads OpenTelemetry's own example (data/otlp, see SOURCE.md) into opentelemetry-proto's
`TracesData`."""

from __future__ import annotations

import base64
import io
import json
import stat
from pathlib import Path
from typing import Any

import orjson
from google.protobuf.json_format import Parse
from observe_helpers import make_record
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from shipyard.config import AlertRule
from shipyard.demo import copy_project
from shipyard.observe import (
    AlertEngine,
    configure_logging,
    configure_otlp_file,
    flush_export,
    samples_from_records,
    source_from_samples,
)
from shipyard.observe._otlp_file import OtlpJsonFileExporter

NOW = 1_000_000.0
EXAMPLE = Path(__file__).parent / "data" / "otlp" / "trace.json"


# --- alerts ----------------------------------------------------------------------------------------


async def test_alert_transitions_are_appended_to_files_as_json_lines(tmp_path: Path) -> None:
    out = io.StringIO()
    configure_logging(stream=out)
    target = tmp_path / "not-yet" / "alerts.jsonl"  # the folder is made
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    records = [make_record(status="failed", at=NOW - 1) for _ in range(3)]
    rule = AlertRule(name="completion", metric="completion_rate", warn=0.9, alert=0.5, min_samples=3)
    engine = AlertEngine(
        [rule],
        source_from_samples(samples_from_records(records)),
        project="demo",
        files=[target, blocked / "alerts.jsonl"],  # the second cannot be written: logged, not raised
    )
    firing = engine.evaluate(NOW)
    engine.deliver(firing)
    cleared = engine.evaluate(NOW + 3600)  # the failures left the window
    engine.deliver(cleared)
    await engine.aclose()
    lines = [orjson.loads(line) for line in target.read_bytes().splitlines()]
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # the owner's only, as the store
    assert lines == [{"project": "demo", **t.to_dict()} for t in [*firing, *cleared]]
    assert [(x["previous"], x["state"]) for x in lines] == [("no_data", "alert"), ("alert", "no_data")]
    logged = [orjson.loads(line) for line in out.getvalue().splitlines()]
    failed = [e for e in logged if e["event"] == "alert_file_failed"]
    assert len(failed) == 2 and all(e["path"] == str(blocked / "alerts.jsonl") for e in failed)


# --- traces ----------------------------------------------------------------------------------------


def _ids_to_base64(node: Any) -> Any:
    """OTLP/JSON ids are hex; protobuf's JSON parser wants bytes as base64."""
    if isinstance(node, dict):
        return {
            k: base64.b64encode(bytes.fromhex(v)).decode()
            if k in ("traceId", "spanId", "parentSpanId")
            else _ids_to_base64(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_ids_to_base64(v) for v in node]
    return node


def read_otlp_json(text: str) -> TracesData:
    """One OTLP/JSON traces object as opentelemetry-proto's TracesData (unknown fields are errors)."""
    return Parse(json.dumps(_ids_to_base64(json.loads(text))), TracesData())


def test_the_reader_reads_opentelemetrys_own_example() -> None:
    data = read_otlp_json(EXAMPLE.read_text())
    (span,) = data.resource_spans[0].scope_spans[0].spans
    assert span.trace_id.hex() == "5b8efff798038103d269b633813fc60c"
    assert span.parent_span_id.hex() == "eee19b7ec3c1b173"
    assert span.kind == 2 and span.start_time_unix_nano == 1544712660000000000
    assert data.resource_spans[0].resource.attributes[0].value.string_value == "my.service"


def _spans() -> list[Any]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("shipyard")
    with tracer.start_as_current_span("invoke_agent support", kind=SpanKind.INTERNAL) as root:
        root.set_attribute("gen_ai.usage.input_tokens", 12)
        with tracer.start_as_current_span("execute_tool lookup_order") as tool:
            tool.set_attribute("gen_ai.tool.name", "lookup_order")
            tool.set_attribute("shipyard.cost_usd", 0.25)
            tool.set_status(StatusCode.ERROR, "not found")
    return list(memory.get_finished_spans())


def test_exported_spans_are_otlp_json_lines_that_decode_to_what_a_collector_receives(tmp_path: Path) -> None:
    spans = _spans()
    path = tmp_path / "traces" / "t.jsonl"
    exporter = OtlpJsonFileExporter(path)
    assert exporter.export(spans[:1]) is SpanExportResult.SUCCESS
    assert exporter.export(spans[1:]) is SpanExportResult.SUCCESS
    raw = path.read_bytes()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert raw.endswith(b"\n") and raw.count(b"\n") == 2  # one line per batch, UTF-8 JSON each
    lines = raw.decode("utf-8").splitlines()
    for line, batch in zip(lines, (spans[:1], spans[1:]), strict=True):
        doc = json.loads(line)
        span = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
        assert len(span["traceId"]) == 32 and len(span["spanId"]) == 16
        int(span["traceId"], 16), int(span["spanId"], 16)  # hex, not base64
        assert isinstance(span["kind"], int)  # enums as integers
        # the same message the OTLP/HTTP exporter sends, field for field
        assert read_otlp_json(line) == TracesData(resource_spans=encode_spans(batch).resource_spans)
    by_name = {
        s["name"]: s for line in lines for s in json.loads(line)["resourceSpans"][0]["scopeSpans"][0]["spans"]
    }
    child, parent = by_name["execute_tool lookup_order"], by_name["invoke_agent support"]
    assert child["parentSpanId"] == parent["spanId"] and child["traceId"] == parent["traceId"]
    assert child["status"]["code"] == 2 and child["status"]["message"] == "not found"
    exporter.shutdown()
    assert exporter.export(spans) is SpanExportResult.FAILURE


async def test_the_runtime_writes_kept_traces_to_the_configured_file(tmp_path: Path) -> None:
    from shipyard.config import load_config
    from shipyard.runtime import Runtime

    copy_project(tmp_path)
    cfg = load_config(tmp_path / "shipyard.yaml")
    assert cfg.server.otlp_file == ".shipyard/traces.jsonl"  # the demo configures one
    path = cfg.resolve(cfg.server.otlp_file)
    configure_otlp_file(path)
    try:
        rt = Runtime(cfg)
        record = await rt.invoke("support", "Where is my order 10001?")
        await rt.aclose()
        assert flush_export()
    finally:
        configure_otlp_file(None)
    names: set[str] = set()
    for line in path.read_text().splitlines():
        for rs in read_otlp_json(line).resource_spans:
            for ss in rs.scope_spans:
                names |= {s.name for s in ss.spans if s.trace_id.hex() == record.trace_id}
    assert {"invoke_agent support", "execute_tool lookup_order"} <= names
