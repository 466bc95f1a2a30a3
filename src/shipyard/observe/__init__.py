"""Structured logs, OpenTelemetry traces and metrics, KPIs and alert rules."""

from shipyard.observe import _semconv as semconv
from shipyard.observe._tracing import (
    add_exporter,
    end_span,
    get_tracer,
    hex_trace_id,
    start_span,
    to_record,
    to_records,
    tracer_provider,
)
from shipyard.observe._tree import trace_tree_lines

__all__ = [
    "add_exporter",
    "end_span",
    "get_tracer",
    "hex_trace_id",
    "semconv",
    "start_span",
    "to_record",
    "to_records",
    "trace_tree_lines",
    "tracer_provider",
]
