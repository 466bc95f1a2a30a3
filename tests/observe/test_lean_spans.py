"""`start_span` makes spans directly (`observe/_lean_span.py`) when the tracer's outcome is known
without asking it: the same span as the SDK tracer's, field for field; and the tracer's own way
whenever a sampler, a span processor or a limit could make a difference."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace import Span as SDKSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, TraceIdRatioBased
from opentelemetry.trace import SpanKind, StatusCode

from shipyard.observe import _lean_span, end_span, start_span, to_records
from shipyard.observe._lean_span import LeanSpan

ATTRS: dict[str, Any] = {
    "gen_ai.operation.name": "chat",
    "gen_ai.request.temperature": 0.2,
    "gen_ai.request.max_tokens": 50,
    "shipyard.replayed": False,
    "gen_ai.response.finish_reasons": ["stop"],  # a list: stored as a tuple, as the SDK does
    "shipyard.none": None,  # not a valid value: dropped, as the SDK does
}


def _fields(s: ReadableSpan) -> dict[str, Any]:
    assert s.context is not None
    return {
        "name": s.name,
        "kind": s.kind,
        "attributes": list((s.attributes or {}).items()),  # in order
        "events": [(e.name, dict(e.attributes or {}), e.timestamp) for e in s.events],
        "status": (s.status.status_code, s.status.description),
        "parent": s.parent,
        "trace_flags": s.context.trace_flags,
        "trace_state": s.context.trace_state,
        "resource": s.resource,
        "scope": s.instrumentation_scope,
        "start": s.start_time,
        "end": s.end_time,
        "dropped": (s.dropped_attributes, s.dropped_events, s.dropped_links),
    }


def _pair(provider: TracerProvider) -> tuple[ReadableSpan, ReadableSpan, ReadableSpan]:
    """A root, a lean child and the SDK's own child of it, made and ended alike."""
    tracer = provider.get_tracer("shipyard")
    root = start_span(tracer, "invoke_agent a", attributes={"x": "y"})
    made = []
    for lean in (True, False):
        if lean:
            span = start_span(
                tracer, "chat m", parent=root, kind=SpanKind.CLIENT, attributes=ATTRS, start_ns=5
            )
        else:
            ctx = trace.set_span_in_context(root)
            span = tracer.start_span(
                "chat m", context=ctx, kind=SpanKind.CLIENT, attributes=ATTRS, start_time=5
            )
        span.set_attributes({"gen_ai.usage.input_tokens": 3, "shipyard.reasons": ("a", "b"), "x.text": "hi"})
        span.set_attribute("gen_ai.request.temperature", 0.3)  # replaced: moves to the end
        span.add_event("shipyard.llm.retry", {"attempt": 1}, timestamp=7)
        end_span(span, error="boom", error_type="http_5xx", end_ns=9)
        made.append(span)
    end_span(root)
    lean_span, sdk_span = made
    assert isinstance(lean_span, ReadableSpan) and isinstance(sdk_span, ReadableSpan)
    assert isinstance(root, ReadableSpan)
    return root, lean_span, sdk_span


def test_a_lean_span_is_the_span_the_sdk_makes() -> None:
    root, lean, sdk = _pair(TracerProvider())
    assert isinstance(lean, LeanSpan) and not isinstance(sdk, LeanSpan) and isinstance(root, LeanSpan)
    assert _fields(lean) == _fields(sdk)
    assert list(lean.attributes or {})[-2:] == ["gen_ai.request.temperature", "error.type"]
    assert (lean.attributes or {})["gen_ai.response.finish_reasons"] == ("stop",)
    # a None value: dropped by SDKs before 1.45, kept since; as the SDK's own span does, either way
    assert ("shipyard.none" in (lean.attributes or {})) == ("shipyard.none" in (sdk.attributes or {}))
    assert lean.status.status_code is StatusCode.ERROR
    assert lean.context is not None and root.context is not None
    assert lean.context.trace_id == root.context.trace_id and lean.parent == root.context
    assert lean.context.span_id not in (root.context.span_id, sdk.context.span_id)  # type: ignore[union-attr]
    lean_record, sdk_record = to_records([lean, sdk])
    assert (lean_record.attributes, lean_record.parent_id) == (sdk_record.attributes, sdk_record.parent_id)


def test_with_no_parent_the_current_span_is_the_parent_as_with_the_sdk() -> None:
    tracer = TracerProvider().get_tracer("shipyard")
    outer = tracer.start_span("outer")
    with trace.use_span(outer):
        inner = start_span(tracer, "inner")
    assert isinstance(inner, LeanSpan) and isinstance(inner, ReadableSpan)
    assert inner.parent == outer.get_span_context()
    alone = start_span(tracer, "alone")
    assert isinstance(alone, ReadableSpan) and alone.parent is None
    assert alone.get_span_context().trace_id != outer.get_span_context().trace_id


def test_the_attribute_limit_drops_the_oldest_as_the_sdk_does() -> None:
    _, lean, sdk = _pair(TracerProvider(span_limits=SpanLimits(max_span_attributes=3)))
    assert _fields(lean) == _fields(sdk)
    assert lean.dropped_attributes > 0 and len(lean.attributes or {}) == 3


def test_a_batch_that_evicts_then_names_an_evicted_key_is_stored_as_the_sdk_does() -> None:
    # the first eviction turns the SDK's dict into an OrderedDict: the batch goes on into that one
    tracer = TracerProvider(span_limits=SpanLimits(max_span_attributes=2)).get_tracer("shipyard")
    lean = start_span(tracer, "chat m", attributes={"a": 1})
    sdk = tracer.start_span("chat m", attributes={"a": 1})  # the SDK's own path
    assert isinstance(lean, LeanSpan) and not isinstance(sdk, LeanSpan)
    for span in (lean, sdk):
        span.set_attributes({"b": 1, "c": 1, "a": 2})
    assert (
        list((lean.attributes or {}).items()) == list((sdk.attributes or {}).items()) == [("c", 1), ("a", 2)]
    )
    assert lean.dropped_attributes == sdk.dropped_attributes == 2


def test_the_tracer_decides_when_a_processor_a_sampler_or_a_length_limit_could_matter() -> None:
    exporter = InMemorySpanExporter()
    with_processor = TracerProvider()
    with_processor.add_span_processor(SimpleSpanProcessor(exporter))
    root, child, _ = _pair(with_processor)
    assert not isinstance(child, LeanSpan) and not isinstance(root, LeanSpan)
    assert [s.name for s in exporter.get_finished_spans()] == ["chat m", "chat m", "invoke_agent a"]

    sampled_out = TracerProvider(sampler=ALWAYS_OFF).get_tracer("t")
    assert not start_span(sampled_out, "x").is_recording()
    ratio = TracerProvider(sampler=TraceIdRatioBased(0.5)).get_tracer("t")
    assert not isinstance(start_span(ratio, "x"), LeanSpan)

    limited = TracerProvider(span_limits=SpanLimits(max_span_attribute_length=2)).get_tracer("t")
    span = start_span(limited, "x", attributes={"k": "long text"})
    assert isinstance(span, ReadableSpan) and (span.attributes or {})["k"] == "lo"

    # a child of a span the sampler dropped is dropped too
    parent = start_span(sampled_out, "p")
    assert not start_span(TracerProvider().get_tracer("t"), "c", parent=parent).is_recording()


def test_a_second_end_keeps_the_first_and_attributes_are_frozen_at_the_end() -> None:
    span = start_span(TracerProvider().get_tracer("t"), "x", start_ns=1)
    assert isinstance(span, LeanSpan)
    span.end(end_time=10)
    span.end(end_time=20)  # warns, as the SDK does; never blocks
    span.set_attribute("late", 1)  # warns: ignored
    assert span.end_time == 10 and "late" not in (span.attributes or {})


def test_events_and_links_of_one_span_are_its_own() -> None:
    tracer = TracerProvider().get_tracer("t")
    a, b = start_span(tracer, "a"), start_span(tracer, "b")
    a.add_event("e1", {"k": 1})
    a.add_link(b.get_span_context(), {"why": "test"})
    end_span(a)
    end_span(b)
    assert isinstance(a, ReadableSpan) and isinstance(b, ReadableSpan)
    assert [e.name for e in a.events] == ["e1"] and len(a.links) == 1
    assert list(b.events) == [] and list(b.links) == []
    assert (b.dropped_events, b.dropped_links) == (0, 0)


def test_without_the_sdk_internals_the_sdk_makes_every_span(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_lean_span, "_CAPABLE", False)  # as on an SDK whose internals differ
    root, made, sdk = _pair(TracerProvider())
    assert not isinstance(made, LeanSpan) and not isinstance(root, LeanSpan)
    assert _fields(made) == _fields(sdk)
    assert made.parent == root.context
    assert (made.attributes or {})["gen_ai.response.finish_reasons"] == ("stop",)
    made_record, sdk_record = to_records([made, sdk])
    assert (made_record.attributes, made_record.status) == (sdk_record.attributes, sdk_record.status)


def test_a_missing_internal_switches_the_lean_path_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_lean_span, "_CAPABLE", None)  # checked again
    monkeypatch.setattr(_lean_span, "_NoOpTracerMetrics", None)
    assert not _lean_span._capable()
    assert not isinstance(start_span(TracerProvider().get_tracer("t"), "x"), LeanSpan)
    monkeypatch.undo()
    assert _lean_span._capable()  # the SDK installed here has them all


def test_a_new_sdk_span_field_switches_the_lean_path_off(monkeypatch: pytest.MonkeyPatch) -> None:
    sdk_init = SDKSpan.__init__

    def init(self: SDKSpan, *args: Any, **kwargs: Any) -> None:
        sdk_init(self, *args, **kwargs)
        self._new_in_a_later_sdk = 1

    monkeypatch.setattr(SDKSpan, "__init__", init)
    _, made, sdk = _pair(TracerProvider())
    assert not isinstance(made, LeanSpan) and _fields(made) == _fields(sdk)


def test_importing_observe_with_an_sdk_lacking_tracer_metrics_works() -> None:
    code = """
import sys
import opentelemetry.sdk.trace as sdk_trace
del sdk_trace._tracer_metrics  # an SDK without the module (the SDK itself was imported already)
sys.modules["opentelemetry.sdk.trace._tracer_metrics"] = None
from opentelemetry.sdk.trace import TracerProvider
from shipyard.observe import end_span, start_span, to_records
from shipyard.observe import _lean_span
tracer = TracerProvider().get_tracer("t")
root = start_span(tracer, "root")
child = start_span(tracer, "child", parent=root, attributes={"k": "v", "l": [1]})
end_span(child, error="boom", error_type="x")
end_span(root)
record = to_records([child])[0]
assert not isinstance(child, _lean_span.LeanSpan) and not _lean_span._capable()
assert record.parent_id == format(root.get_span_context().span_id, "016x"), record
assert record.attributes == {"k": "v", "l": (1,), "error.type": "x"}, record.attributes
assert record.status == "error"
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
