"""Traces to a file in OpenTelemetry's OTLP file-exporter format (`server.otlp_file`).

The format (OpenTelemetry specification, "OTLP File Exporter", JSON file serialization): a JSON Lines
file (UTF-8, one JSON value per line, `\\n` separated, preferably `.jsonl`), each line a `TracesData`
object in the OTLP/JSON encoding: protobuf's JSON mapping with lowerCamelCase field names, enums as
integers, 64-bit integers as strings, fields left at their default value omitted, and trace and span
ids as hex strings (not base64).

The spans are encoded here straight from the SDK's spans into that JSON (one `orjson` dump per batch),
as OpenTelemetry's own OTLP encoder (the one the OTLP/HTTP exporter sends) would build the message and
protobuf's `MessageToDict` print it: the same grouping (resource, then instrumentation scope), the
same fields in field-number order, the same attributes skipped when protobuf would refuse them (an
integer beyond int64). Going through protobuf cost a quarter of the server's CPU under load; the line
is the same (tests compare it with the protobuf path, field for field, and read it back into
opentelemetry-proto's `TracesData`).
"""

from __future__ import annotations

import base64
import logging
import math
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

from shipyard.store import append_private

_logger = logging.getLogger(__name__)

_KINDS = {
    SpanKind.INTERNAL: 1,
    SpanKind.SERVER: 2,
    SpanKind.CLIENT: 3,
    SpanKind.PRODUCER: 4,
    SpanKind.CONSUMER: 5,
}
_HAS_IS_REMOTE = 0x100  # SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
_IS_REMOTE = 0x200  # SpanFlags.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK
_INT64 = (-(2**63), 2**63 - 1)


def _double(value: float) -> float | str:
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _any_value(value: Any) -> dict[str, Any]:
    """An `AnyValue` (protobuf JSON: a oneof, so a member set to its type's default is still written);
    raises where protobuf would (the attribute is then skipped)."""
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            raise ValueError(f"Value out of range: {value}")
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": _double(value)}
    if isinstance(value, bytes):
        return {"bytesValue": base64.b64encode(value).decode()}
    if isinstance(value, Sequence):
        values = [_any_value(v) for v in value]
        return {"arrayValue": {"values": values} if values else {}}
    if isinstance(value, Mapping):
        pairs = [_key_value(str(k), v) for k, v in value.items()]
        return {"kvlistValue": {"values": pairs} if pairs else {}}
    raise TypeError(f"Invalid type {type(value)} of value {value}")


def _key_value(key: str, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"key": key} if key else {}
    out["value"] = _any_value(value)
    return out


def _fast_value(value: Any) -> dict[str, Any] | None:
    """The `AnyValue` of the common attribute types (exact types, no subclasses), else None."""
    t = type(value)
    if t is str:
        return {"stringValue": value}
    if t is int:
        return {"intValue": str(value)} if _INT64[0] <= value <= _INT64[1] else None
    if t is float:
        return {"doubleValue": value} if math.isfinite(value) else None
    if t is bool:
        return {"boolValue": value}
    return None


_SEEN: dict[tuple[str, type, Any], dict[str, Any]] = {}
"""Encoded attributes by (key, type, value), for the values that repeat from span to span (names,
versions, kinds, verdicts): orjson writes one dict as often as it is referenced. Bounded."""
_SEEN_MAX = 4096


def _attributes(attributes: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    if not attributes:
        return []
    out = []
    seen = _SEEN
    for key, value in attributes.items():
        t = type(value)
        if t is str or t is bool:
            cached = seen.get((key, t, value))
            if cached is not None:
                out.append(cached)
                continue
        fast = _fast_value(value)
        if fast is not None and key:
            encoded = {"key": key, "value": fast}
            out.append(encoded)
            if (t is str and len(value) <= 64) or t is bool:
                if len(seen) >= _SEEN_MAX:
                    seen.clear()
                seen[(key, t, value)] = encoded
            continue
        try:
            out.append(_key_value(key, value))
        except Exception as error:  # as OpenTelemetry's encoder: the attribute is skipped, logged
            _logger.exception("Failed to encode key %s: %s", key, error)
    return out


def _put(out: dict[str, Any], name: str, value: Any) -> None:
    """Set a field unless it has its default value (protobuf JSON omits those)."""
    if value:
        out[name] = value


def _flags(parent: Any) -> int:
    return _HAS_IS_REMOTE | _IS_REMOTE if parent is not None and parent.is_remote else _HAS_IS_REMOTE


def _trace_state(context: Any) -> str:
    state = context.trace_state
    return ",".join(f"{k}={v}" for k, v in state.items()) if state else ""


def _span(span: ReadableSpan) -> dict[str, Any]:
    ctx = span.get_span_context()
    assert ctx is not None
    out: dict[str, Any] = {}
    _put(out, "traceId", format(ctx.trace_id, "032x") if ctx.trace_id else "")
    _put(out, "spanId", format(ctx.span_id, "016x") if ctx.span_id else "")
    _put(out, "traceState", _trace_state(ctx))
    parent = span.parent
    if parent is not None and parent.span_id:
        out["parentSpanId"] = format(parent.span_id, "016x")
    _put(out, "name", span.name)
    _put(out, "kind", _KINDS[span.kind])
    _put(out, "startTimeUnixNano", str(span.start_time) if span.start_time else "")
    _put(out, "endTimeUnixNano", str(span.end_time) if span.end_time else "")
    _put(out, "attributes", _attributes(span.attributes))
    _put(out, "droppedAttributesCount", span.dropped_attributes)
    if span.events:
        events = []
        for event in span.events:
            e: dict[str, Any] = {}
            _put(e, "timeUnixNano", str(event.timestamp) if event.timestamp else "")
            _put(e, "name", event.name)
            _put(e, "attributes", _attributes(event.attributes))
            _put(e, "droppedAttributesCount", event.dropped_attributes)
            events.append(e)
        out["events"] = events
    _put(out, "droppedEventsCount", span.dropped_events)
    if span.links:
        links = []
        for link in span.links:
            lk: dict[str, Any] = {}
            _put(lk, "traceId", format(link.context.trace_id, "032x") if link.context.trace_id else "")
            _put(lk, "spanId", format(link.context.span_id, "016x") if link.context.span_id else "")
            _put(lk, "attributes", _attributes(link.attributes))
            _put(lk, "droppedAttributesCount", link.dropped_attributes)
            lk["flags"] = _flags(link.context)
            links.append(lk)
        out["links"] = links
    _put(out, "droppedLinksCount", span.dropped_links)
    status = span.status
    if status is not None:
        st: dict[str, Any] = {}
        _put(st, "message", status.description)
        _put(st, "code", status.status_code.value)
        out["status"] = st
    out["flags"] = _flags(span.parent)
    return out


def _scope(scope: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if scope is not None:
        _put(out, "name", scope.name)
        _put(out, "version", scope.version)
        _put(out, "attributes", _attributes(scope.attributes))
    return out


def _find(groups: list[list[Any]], key: Any) -> list[Any] | None:
    for group in groups:  # by identity first: the spans of one provider share their resource
        if group[0] is key:
            return group
    for group in groups:
        if group[0] == key:
            return group
    return None


def traces_data(spans: Sequence[ReadableSpan]) -> dict[str, Any]:
    """The spans as an OTLP/JSON `TracesData` object: grouped by resource, then by instrumentation
    scope, each group in the order its first span came (as OpenTelemetry's encoder groups them)."""
    resources: list[list[Any]] = []  # [resource, [[scope, [span, ...]], ...]]
    for span in spans:
        resource = span.resource
        found = _find(resources, resource)
        if found is None:
            found = [resource, []]
            resources.append(found)
        scope = span.instrumentation_scope or None
        group = _find(found[1], scope)
        if group is None:
            group = [scope, []]
            found[1].append(group)
        group[1].append(_span(span))
    out = []
    for resource, scopes in resources:
        scope_spans = []
        for scope, encoded in scopes:
            ss: dict[str, Any] = {"scope": _scope(scope)}
            _put(ss, "spans", encoded)
            _put(ss, "schemaUrl", scope.schema_url if scope is not None else "")
            scope_spans.append(ss)
        rs: dict[str, Any] = {"resource": _put_resource(resource)}
        _put(rs, "scopeSpans", scope_spans)
        _put(rs, "schemaUrl", resource.schema_url)
        out.append(rs)
    return {"resourceSpans": out} if out else {}


def _put_resource(resource: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _put(out, "attributes", _attributes(resource.attributes))
    return out


def otlp_json_line(spans: Sequence[ReadableSpan]) -> bytes:
    """One line of the file (with its `\\n`): the spans as an OTLP/JSON `TracesData` object."""
    return orjson.dumps(traces_data(spans)) + b"\n"


MIB = 1024 * 1024
DEFAULT_MAX_MB = 100.0
"""The size a trace file may reach before it is rotated, as the collector's `rotation.max_megabytes`."""
DEFAULT_BACKUPS = 3
"""How many rotated files are kept (`path.1` … `path.N`), as the collector's `rotation.max_backups`."""


def backup_path(path: Path, n: int) -> Path:
    """The `n`th most recent rotated file of `path`: `traces.jsonl.1` is the newest."""
    return path.with_name(f"{path.name}.{n}")


class OtlpJsonFileExporter(SpanExporter):
    """Appends each exported batch to `path` as one OTLP/JSON line (see the module docs), rotating the
    file by size as the OpenTelemetry Collector's file exporter does (`rotation: max_megabytes,
    max_backups`), but with numbered backups rather than its timestamped ones.

    When a line would take the file past `max_bytes`, the file is renamed `path.1` (an older `path.1`
    becomes `path.2`, and so on; the one past `backups` is removed) and the line starts a new `path`.
    A line is never split: one larger than `max_bytes` gets a file of its own. A reader of `path` and
    its backups, newest last (`path.N` … `path.1`, `path`), sees every batch once, in order.

    Args:
        path: the file, created 0600 (its missing folders 0700), as everything under `.shipyard/`.
        max_bytes: the size past which the file is rotated.
        backups: how many rotated files are kept (at least 1).
    """

    def __init__(
        self, path: Path, *, max_bytes: int = int(DEFAULT_MAX_MB * MIB), backups: int = DEFAULT_BACKUPS
    ) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be positive, not {max_bytes}")
        if backups < 1:
            raise ValueError(f"backups must be at least 1, not {backups}")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self._lock = threading.Lock()
        self._closed = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._closed:
            return SpanExportResult.FAILURE
        if not spans:
            return SpanExportResult.SUCCESS
        line = otlp_json_line(spans)
        try:
            with self._lock:  # one write per line: a reader never sees half a batch
                if self._size() + len(line) > self.max_bytes:
                    self._rotate()
                append_private(self.path, line)  # 0600, as the store: spans carry what agents did
        except OSError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def _size(self) -> int:
        """The file's size now (read each batch: someone may have moved or truncated it)."""
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def _rotate(self) -> None:
        """`path` becomes `path.1`, each `path.n` `path.n+1`; the oldest past `backups` is removed, and
        so are any beyond it that a larger `backups` before a restart left."""
        if self._size() == 0:
            return  # nothing to keep: an empty file takes the (large) line as it is
        n = self.backups
        while (old := backup_path(self.path, n)).exists() or n == self.backups:
            old.unlink(missing_ok=True)
            n += 1
        for n in range(self.backups - 1, 0, -1):
            older = backup_path(self.path, n)
            if older.exists():
                older.replace(backup_path(self.path, n + 1))
        self.path.replace(backup_path(self.path, 1))

    def shutdown(self) -> None:
        self._closed = True

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
