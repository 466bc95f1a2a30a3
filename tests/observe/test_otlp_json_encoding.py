"""The OTLP/JSON file encoder (`observe/_otlp_file.py`) writes exactly what OpenTelemetry's own OTLP
encoder builds, printed by protobuf's JSON mapping (ids as hex): the same JSON value, key order
included, for spans with every kind of field and attribute value."""

from __future__ import annotations

import base64
import math
from typing import Any

import orjson
from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)
from opentelemetry.trace.span import TraceState

from shipyard.observe._otlp_file import otlp_json_line

_ID_FIELDS = frozenset({"traceId", "spanId", "parentSpanId"})


def _hex_ids(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: base64.b64decode(v).hex() if k in _ID_FIELDS and isinstance(v, str) else _hex_ids(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_hex_ids(v) for v in node]
    return node


def reference_line(spans: list[ReadableSpan]) -> bytes:
    """The line as it was made before: OpenTelemetry's encoder, protobuf's MessageToDict, hex ids."""
    data = MessageToDict(encode_spans(spans), use_integers_for_enums=True, preserving_proto_field_name=False)
    return orjson.dumps(_hex_ids(data)) + b"\n"


def _provider(resource: Resource | None = None) -> tuple[TracerProvider, InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=resource or Resource.create({"service.name": "shipyard"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return provider, memory


def test_every_field_and_value_type_matches_the_protobuf_path() -> None:
    provider, memory = _provider()
    tracer = provider.get_tracer("shipyard", "1.2.3")
    other = provider.get_tracer("other-scope")
    remote = SpanContext(
        trace_id=0x5B8EFFF798038103D269B633813FC60C,
        span_id=0xEEE19B7EC3C1B173,
        is_remote=True,
        trace_flags=TraceFlags(1),
        trace_state=TraceState([("vendor", "value"), ("k2", "v2")]),
    )
    with tracer.start_as_current_span(
        "invoke_agent support",
        kind=SpanKind.SERVER,
        context=set_span_in_context(NonRecordingSpan(remote)),
        links=[Link(remote, {"link.attr": 1}), Link(remote)],
    ) as root:
        root.set_attributes(
            {
                "s": 'text é ✓ "quoted" \n newline',
                "empty": "",
                "i": 12,
                "zero": 0,
                "neg": -(2**63),
                "big": 2**63 - 1,
                "f": 0.25,
                "fzero": 0.0,
                "fint": 3.0,
                "nan": math.nan,
                "inf": math.inf,
                "ninf": -math.inf,
                "t": True,
                "false": False,
                "strings": ["a", "", "c"],
                "ints": [1, 2, 0],
                "floats": [0.5, 1.0],
                "bools": [True, False],
                "empty_list": [],
            }
        )
        root.add_event("feature_flag.evaluation", {"feature_flag.key": "refunds", "n": 3})
        root.add_event("bare")
        with tracer.start_as_current_span("chat mock", kind=SpanKind.CLIENT) as chat:
            chat.set_attribute("gen_ai.usage.input_tokens", 120)
            chat.set_status(StatusCode.ERROR, "boom")
        with other.start_as_current_span("execute_tool lookup_order", kind=SpanKind.INTERNAL) as tool:
            tool.set_status(StatusCode.OK)
        with tracer.start_as_current_span("p", kind=SpanKind.PRODUCER):
            pass
        with tracer.start_as_current_span("c", kind=SpanKind.CONSUMER) as c:
            c.set_status(StatusCode.ERROR)
    spans = list(memory.get_finished_spans())
    assert otlp_json_line(spans) == reference_line(spans)
    for span in spans:
        assert otlp_json_line([span]) == reference_line([span])
    assert otlp_json_line(spans[::-1]) == reference_line(spans[::-1])


def test_out_of_range_integers_are_skipped_as_opentelemetry_skips_them() -> None:
    provider, memory = _provider()
    with provider.get_tracer("t").start_as_current_span("s") as span:
        span.set_attribute("too_big", 2**64)
        span.set_attribute("ok", 1)
        span.set_attribute("list_too_big", [1, 2**64])
    spans = list(memory.get_finished_spans())
    line = otlp_json_line(spans)
    assert line == reference_line(spans)
    assert b"too_big" not in line and b'"ok"' in line


def test_spans_of_several_resources_and_scopes_are_grouped_as_opentelemetry_groups_them() -> None:
    a, mem_a = _provider(Resource.create({"service.name": "a", "n": 1}))
    b, mem_b = _provider(
        Resource({"service.name": "b"}, schema_url="https://opentelemetry.io/schemas/1.21.0")
    )
    a2, mem_a2 = _provider(Resource.create({"service.name": "a", "n": 1}))  # equal to a's, another object
    for provider in (a, b, a2):
        for scope in ("one", "two"):
            with provider.get_tracer(
                scope, schema_url="https://example.com/s" if scope == "two" else None
            ).start_as_current_span(scope):
                pass
    spans = [*mem_a.get_finished_spans(), *mem_b.get_finished_spans(), *mem_a2.get_finished_spans()]
    mixed = [spans[0], spans[2], spans[4], spans[1], spans[5], spans[3]]
    for batch in (spans, mixed):
        assert otlp_json_line(batch) == reference_line(batch)
    assert otlp_json_line([]) == reference_line([]) == b"{}\n"
