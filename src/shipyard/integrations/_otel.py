"""Spans a framework makes itself with OpenTelemetry's global API (Google ADK does), nested under
the interaction's `invoke_agent` span and kept on the interaction's record:

    with framework_spans(ctx):       # the framework's spans are children of ctx's invoke_agent span
        await run_the_framework()    # and land in the interaction's trace record

A framework's tracer comes from the global tracer provider. Shipyard's own spans do not (they are
made with explicit parents by Shipyard's provider), so the global provider is free: when nobody set
one, a provider with no exporter of its own is installed, whose spans go nowhere but to the
interaction they belong to; when the application set an SDK provider (its own exporter), the
collector is added to it, and the framework's spans also go where the application sends them; any
other provider cannot be added to (the spans are then not on the record, and a warning says so).
A finished span is routed by its trace id to the interaction whose trace it is in, so several
interactions at once each keep their own; a span of no live interaction is dropped."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.trace import Span

from shipyard.agents import AgentContext, SpanSink, current_interaction
from shipyard.errors import ShipyardError


class _Collector(SpanProcessor):
    """Hands each finished span to the interaction whose trace it is in (by trace id)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[int, tuple[SpanSink, int]] = {}  # trace id -> (its spans, how many scopes)

    def on_end(self, span: ReadableSpan) -> None:
        ctx = span.context
        if ctx is None:
            return
        entry = self._live.get(ctx.trace_id)
        if entry is not None:
            entry[0].adopt(span)

    def enter(self, trace_id: int, sink: SpanSink) -> None:
        with self._lock:
            _, n = self._live.get(trace_id, (sink, 0))
            self._live[trace_id] = (sink, n + 1)

    def leave(self, trace_id: int) -> None:
        with self._lock:
            entry = self._live.get(trace_id)
            if entry is None or entry[1] <= 1:
                self._live.pop(trace_id, None)
            else:
                self._live[trace_id] = (entry[0], entry[1] - 1)

    @property
    def live(self) -> int:
        """How many interactions are collecting spans now."""
        return len(self._live)


_COLLECTOR = _Collector()
_installed: str | None = None  # "shipyard", "application" or "unavailable"
_install_lock = threading.Lock()
_log = logging.getLogger(__name__)


def install_collector() -> str:
    """Make the global tracer provider hand finished spans to the collector (once per process).
    Returns "shipyard" when Shipyard installed the global provider, "application" when the
    collector joined the SDK provider the application had set, "unavailable" when the global
    provider is not the OpenTelemetry SDK's (the framework's spans then go where that provider
    sends them, still in the interaction's trace, but not on its record: logged once)."""
    global _installed
    with _install_lock:
        if _installed is not None:
            return _installed
        current = trace.get_tracer_provider()
        if isinstance(current, trace.ProxyTracerProvider):
            provider = TracerProvider(resource=Resource.create({"service.name": "shipyard"}))
            provider.add_span_processor(_COLLECTOR)
            trace.set_tracer_provider(provider)
            current = trace.get_tracer_provider()
            if current is provider:
                _installed = "shipyard"
                return _installed
        if isinstance(current, TracerProvider):
            current.add_span_processor(_COLLECTOR)
            _installed = "application"
        else:
            _log.warning(
                "the global OpenTelemetry tracer provider is a %s.%s, not the OpenTelemetry SDK's: "
                "a framework's own spans are not kept on Shipyard's interaction records",
                type(current).__module__,
                type(current).__name__,
            )
            _installed = "unavailable"
        return _installed


def collecting() -> int:
    """How many interactions are collecting framework spans now (0 when none runs)."""
    return _COLLECTOR.live


def _current_span_in(trace_id: int) -> Callable[[], Span | None]:
    """`Interaction.span_parent` for a framework tracing with OpenTelemetry: its current span, when
    it is in the interaction's trace, so `ctx.llm`'s and `ctx.tools`' spans nest under the
    framework's model-call and tool spans."""

    def parent() -> Span | None:
        span = trace.get_current_span()
        return span if span.get_span_context().trace_id == trace_id and span.is_recording() else None

    return parent


@contextlib.contextmanager
def framework_spans(ctx: AgentContext | None = None) -> Iterator[None]:
    """Run the code inside with the interaction's `invoke_agent` span as the current OpenTelemetry
    span; keep every span made in its trace (by any thread) on the interaction's record; and nest
    the spans `ctx.llm` and `ctx.tools` open under the framework's current span.

    Args:
        ctx: the running interaction's context (default: the current one)."""
    interaction = current_interaction()
    if interaction is None or (ctx is not None and interaction.ctx is not ctx):
        raise ShipyardError(
            "framework_spans() was used outside the agent call it is for",
            hint="use it in the agent function (or code it calls) while Shipyard runs it",
        )
    sink = interaction.spans
    if sink is None:  # not a traced run (a warm-up): nothing to nest under
        yield
        return
    install_collector()
    root = sink.root
    trace_id = root.get_span_context().trace_id
    _COLLECTOR.enter(trace_id, sink)
    token = otel_context.attach(trace.set_span_in_context(root))
    before, interaction.span_parent = interaction.span_parent, _current_span_in(trace_id)
    try:
        yield
    finally:
        interaction.span_parent = before
        otel_context.detach(token)
        _COLLECTOR.leave(trace_id)
