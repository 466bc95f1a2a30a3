"""Traces to a file in OpenTelemetry's OTLP file-exporter format (`server.otlp_file`).

The format (OpenTelemetry specification, "OTLP File Exporter", JSON file serialization): a JSON Lines
file (UTF-8, one JSON value per line, `\\n` separated, preferably `.jsonl`), each line a `TracesData`
object in the OTLP/JSON encoding: protobuf's JSON mapping with lowerCamelCase field names, enums as
integers, and trace and span ids as hex strings (not base64). The spans are encoded with
OpenTelemetry's own OTLP encoder (the one the OTLP/HTTP exporter sends), so the file holds exactly
what a collector would have received (tested against opentelemetry-proto's own JSON example and
messages, not against a running Collector).
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from shipyard.store import append_private

_ID_FIELDS = frozenset({"traceId", "spanId", "parentSpanId"})


def _hex_ids(node: Any) -> Any:
    """OTLP/JSON writes ids as hex, where protobuf's JSON mapping writes bytes as base64."""
    if isinstance(node, dict):
        return {
            k: base64.b64decode(v).hex() if k in _ID_FIELDS and isinstance(v, str) else _hex_ids(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_hex_ids(v) for v in node]
    return node


def otlp_json_line(spans: Sequence[ReadableSpan]) -> bytes:
    """One line of the file (with its `\\n`): the spans as an OTLP/JSON `TracesData` object."""
    from google.protobuf.json_format import MessageToDict
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    message = encode_spans(spans)
    data = MessageToDict(message, use_integers_for_enums=True, preserving_proto_field_name=False)
    return orjson.dumps(_hex_ids(data)) + b"\n"


class OtlpJsonFileExporter(SpanExporter):
    """Appends each exported batch to `path` as one OTLP/JSON line (see the module docs).

    Args:
        path: the file, created 0600 (its missing folders 0700), as everything under `.shipyard/`.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
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
                append_private(self.path, line)  # 0600, as the store: spans carry what agents did
        except OSError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._closed = True

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
