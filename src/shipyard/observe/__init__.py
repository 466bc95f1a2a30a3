"""Structured logs, OpenTelemetry traces and metrics, KPIs and alert rules."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shipyard.observe import _semconv as semconv
    from shipyard.observe._aggregates import (
        COARSE_S,
        FINE_S,
        Aggregates,
        AggregateView,
        JoinedView,
        KpiView,
        Summary,
    )
    from shipyard.observe._alerts import (
        AlertEngine,
        AlertState,
        EventCounter,
        KpiSource,
        Transition,
        judge,
        judge_value,
        overall_status,
        source_from_samples,
    )
    from shipyard.observe._kpis import (
        KpiFrame,
        Kpis,
        KpiWindow,
        Sample,
        compute_kpis,
        rating_of,
        samples_from_records,
    )
    from shipyard.observe._lean_span import span_events
    from shipyard.observe._logging import (
        configure_logging,
        log_event,
        log_feedback,
        log_interaction,
        redact_arguments,
        redact_text,
    )
    from shipyard.observe._loops import LOOP_ALERT_AFTER, LOOP_EVENT, LoopSupervisor
    from shipyard.observe._metrics import OFFLINE_TRAFFIC, Metrics, is_safety_incident
    from shipyard.observe._sampling import SamplingDecision, TraceSampler
    from shipyard.observe._shared_kpis import SharedKpis
    from shipyard.observe._tracing import (
        add_flag_evaluation,
        configure_otlp,
        configure_otlp_file,
        end_span,
        export_spans,
        flush_export,
        get_tracer,
        hex_trace_id,
        set_span_exporter,
        span_attributes,
        start_span,
        to_record,
        to_records,
        tracer_provider,
    )
    from shipyard.observe._tree import trace_tree_lines

__all__ = [
    "COARSE_S",
    "FINE_S",
    "LOOP_ALERT_AFTER",
    "LOOP_EVENT",
    "OFFLINE_TRAFFIC",
    "AggregateView",
    "Aggregates",
    "AlertEngine",
    "AlertState",
    "EventCounter",
    "JoinedView",
    "KpiFrame",
    "KpiSource",
    "KpiView",
    "KpiWindow",
    "Kpis",
    "LoopSupervisor",
    "Metrics",
    "Sample",
    "SamplingDecision",
    "SharedKpis",
    "Summary",
    "TraceSampler",
    "Transition",
    "add_flag_evaluation",
    "compute_kpis",
    "configure_logging",
    "configure_otlp",
    "configure_otlp_file",
    "end_span",
    "export_spans",
    "flush_export",
    "get_tracer",
    "hex_trace_id",
    "is_safety_incident",
    "judge",
    "judge_value",
    "log_event",
    "log_feedback",
    "log_interaction",
    "overall_status",
    "rating_of",
    "redact_arguments",
    "redact_text",
    "samples_from_records",
    "semconv",
    "set_span_exporter",
    "source_from_samples",
    "span_attributes",
    "span_events",
    "start_span",
    "to_record",
    "to_records",
    "trace_tree_lines",
    "tracer_provider",
]

if not TYPE_CHECKING:  # loaded on first use (shipyard._lazy); mypy sees the imports above
    from shipyard._lazy import lazy_exports

    __getattr__, __dir__ = lazy_exports(__name__, __file__)
