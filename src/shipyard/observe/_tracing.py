"""OpenTelemetry tracing for interactions.

The runtime creates spans with explicit parents (no context-variable juggling on the hot path, and
it works across the thread a sync agent runs in). Finished spans become `SpanRecord`s on the
interaction record, which reaches the local store. When an OTLP endpoint is configured, the spans of
each trace the sampler keeps are batched to the collector in the background: export happens after
the tail-sampling decision, not as each span ends."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from shipyard.observe import _semconv as sc
from shipyard.observe._lean_span import _Attributes, lean_span
from shipyard.store import SpanRecord

if TYPE_CHECKING:  # the SDK's export loads with the first exporter (a process that exports none: never)
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

_PROVIDER: TracerProvider | None = None
_EXPORTS: dict[str, BatchSpanProcessor] = {}
"""The exporters kept traces go to, by kind (`otlp`, `file`, `custom`): one of each at most."""

_KIND_NAMES = {
    SpanKind.INTERNAL: "internal",
    SpanKind.CLIENT: "client",
    SpanKind.SERVER: "server",
    SpanKind.PRODUCER: "producer",
    SpanKind.CONSUMER: "consumer",
}
_KIND_BY_ID = {id(kind): name for kind, name in _KIND_NAMES.items()}
"""`_KIND_NAMES` by the member's identity (members are singletons): an Enum's hash is a Python call."""


def tracer_provider(*, service_name: str = "shipyard") -> TracerProvider:
    """The process-wide provider, created once. OTLP/HTTP export is switched on by
    `OTEL_EXPORTER_OTLP_ENDPOINT` here, or by `configure_otlp` (the server's config)."""
    global _PROVIDER
    if _PROVIDER is None:
        _PROVIDER = TracerProvider(resource=Resource.create({"service.name": service_name}))
        endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        if endpoint and not _EXPORTS:
            configure_otlp(endpoint)
    return _PROVIDER


def configure_otlp(endpoint: str) -> None:
    """Send kept traces to an OTLP/HTTP collector (`http://host:4318`, or the full /v1/traces URL)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    url = endpoint.rstrip("/")
    if not url.endswith("/v1/traces"):
        url += "/v1/traces"
    _set_export("otlp", OTLPSpanExporter(endpoint=url))


def configure_otlp_file(
    path: Path | None, *, max_mb: float | None = None, backups: int | None = None
) -> None:
    """Append kept traces to `path` in OpenTelemetry's OTLP file-exporter format (JSON Lines of
    OTLP/JSON, `observe/_otlp_file.py`), beside any OTLP/HTTP export; replaces an earlier file
    (None: no file).

    Args:
        path: the file, or None to stop writing one.
        max_mb: the size (MiB) past which the file is renamed `path.1` and a new one started
            (`server.otlp_file_max_mb`; default 100).
        backups: how many rotated files are kept, `path.1` … `path.N` (`server.otlp_file_backups`;
            default 3).
    """
    from shipyard.observe._otlp_file import DEFAULT_BACKUPS, DEFAULT_MAX_MB, MIB, OtlpJsonFileExporter

    exporter = None
    if path is not None:
        mb = DEFAULT_MAX_MB if max_mb is None else max_mb
        exporter = OtlpJsonFileExporter(
            path,
            max_bytes=max(1, int(mb * MIB)),
            backups=DEFAULT_BACKUPS if backups is None else backups,
        )
    _set_export("file", exporter)


def set_span_exporter(exporter: SpanExporter | None) -> None:
    """Where kept traces are exported, in background batches (None: nowhere but the store); replaces
    every exporter configured before."""
    for key in list(_EXPORTS):
        _set_export(key, None)
    if exporter is not None:
        _set_export("custom", exporter)


def _set_export(key: str, exporter: SpanExporter | None) -> None:
    old = _EXPORTS.pop(key, None)
    if old is not None:
        old.shutdown()
    if exporter is not None:
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        _EXPORTS[key] = BatchSpanProcessor(exporter)


def export_spans(spans: Sequence[Any]) -> None:
    """Hand a kept trace's finished spans to the exporters (a queue append each; never blocks)."""
    for export in tuple(_EXPORTS.values()):  # a server stopping may drop one meanwhile
        for span in spans:
            if isinstance(span, ReadableSpan):
                export.on_end(span)


def flush_export(timeout_ms: int = 5000) -> bool:
    return all([export.force_flush(timeout_ms) for export in tuple(_EXPORTS.values())])


def get_tracer() -> trace.Tracer:
    return tracer_provider().get_tracer("shipyard")


def start_span(
    tracer: trace.Tracer,
    name: str,
    *,
    parent: Span | None = None,
    attributes: Mapping[str, Any] | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    start_ns: int | None = None,
) -> Span:
    """Start a span as a child of `parent` (a new trace when None)."""
    span = lean_span(tracer, name, parent, attributes, kind, start_ns)  # the same span, made cheaper
    if span is not None:
        return span
    ctx = trace.set_span_in_context(parent) if parent is not None else None
    return tracer.start_span(name, context=ctx, kind=kind, attributes=attributes, start_time=start_ns)


def end_span(
    span: Span, *, error: str | None = None, error_type: str | None = None, end_ns: int | None = None
) -> None:
    if error is not None:
        span.set_status(Status(StatusCode.ERROR, error))
        span.set_attribute("error.type", error_type or "error")
    span.end(end_time=end_ns)


def add_flag_evaluation(
    span: Span,
    key: str,
    *,
    variant: str | None,
    value: Any,
    reason: str,
    error_code: str | None = None,
    error_message: str | None = None,
    context_id: str | None = None,
    version: int | None = None,
) -> None:
    """A `feature_flag.evaluation` event on `span` (OTel feature-flag conventions): the variant, or
    the value when there is none (the caller's default); `error.type` when the evaluation failed."""
    attributes: dict[str, Any] = {
        sc.FLAG_KEY: key,
        sc.FLAG_PROVIDER: sc.FLAG_PROVIDER_NAME,
        sc.FLAG_REASON: reason.lower(),
    }
    if variant is not None:
        attributes[sc.FLAG_VARIANT] = variant
    elif isinstance(value, bool | int | float | str):
        attributes[sc.FLAG_VALUE] = value
    else:
        attributes[sc.FLAG_VALUE] = orjson.dumps(value, default=str).decode()
    if context_id is not None:
        attributes[sc.FLAG_CONTEXT_ID] = context_id
    if version:
        attributes[sc.FLAG_VERSION] = str(version)
    if error_code is not None:
        attributes[sc.ERROR_TYPE] = error_code.lower()
        if error_message:
            attributes[sc.FLAG_ERROR_MESSAGE] = error_message
    span.add_event(sc.EVENT_FLAG_EVALUATION, attributes)


def hex_trace_id(span: Span) -> str:
    return format(span.get_span_context().trace_id, "032x")


def to_record(span: ReadableSpan) -> SpanRecord:
    """A finished OTel span as a SpanRecord."""
    return _to_record(span, {}, {})


def _hex(n: int, width: str, written: dict[int, str]) -> str:
    """`format(n, width)`, each id once per `to_records` call (a trace's spans share its trace id,
    and their parents are spans of the same trace)."""
    found = written.get(n)
    if found is None:
        found = written[n] = format(n, width)
    return found


def _to_record(span: ReadableSpan, trace_ids: dict[int, str], span_ids: dict[int, str]) -> SpanRecord:
    ctx = span.context
    assert ctx is not None
    parent = span.parent
    return SpanRecord(
        trace_id=_hex(ctx.trace_id, "032x", trace_ids),
        span_id=_hex(ctx.span_id, "016x", span_ids),
        parent_id=_hex(parent.span_id, "016x", span_ids) if parent is not None else None,
        name=span.name,
        kind=_KIND_BY_ID.get(id(span.kind), "internal"),
        start_ns=span.start_time or 0,
        end_ns=span.end_time or span.start_time or 0,
        status="error" if span.status.status_code is StatusCode.ERROR else "ok",
        attributes=dict(span_attributes(span)),
    )


def span_attributes(span: ReadableSpan) -> Mapping[str, Any]:
    """A span's attributes, not to be changed: read from the SDK's own mapping when it is what we
    know (its read-only view costs a call per attribute read), else through that view."""
    raw = getattr(span, "_attributes", None)
    kind = type(raw)  # the usual two by identity first: isinstance of an ABC costs a Python call
    if kind is _Attributes or kind is BoundedAttributes or isinstance(raw, BoundedAttributes):
        inner = getattr(raw, "_dict", None)  # an SDK internal: read only when it is a dict
        if isinstance(inner, dict):
            return inner
    return span.attributes or {}


def to_records(spans: Sequence[Span]) -> list[SpanRecord]:
    trace_ids: dict[int, str] = {}
    span_ids: dict[int, str] = {}
    return [_to_record(s, trace_ids, span_ids) for s in spans if isinstance(s, ReadableSpan)]
