"""OpenTelemetry SDK spans made without the SDK tracer's per-span overhead, when nothing is lost.

`Tracer.start_span` costs tens of µs per span: a context object for the parent, the sampler call,
the tracer's self-metrics hook, every attribute checked through the generic validator, and at
`end()` a read-only copy of the span for the span processors, even when there are none. Shipyard
makes four or more spans per interaction, so on a busy eval run or gateway that was a fifth of its
own CPU (benchmarks/bench_evals.py).

`lean_span` makes the very same span (the SDK's `Span` class, the same ids, parent, flags, trace
state, resource, scope and limits) directly, when the outcome is known without asking: the tracer
is an SDK tracer that is enabled, its sampler is the default parent-based always-on one (a valid
sampled parent, or none: always recorded and sampled), its self-metrics are off and its provider
has no span processor (Shipyard exports kept traces itself, after tail sampling). Otherwise it
returns None and the caller asks the tracer. Attribute values of the plain kinds (str,
bool, int, float) are stored as they are (what the SDK's validator returns for them when no length
limit is set); everything else still goes through the SDK's validator.

The lean path reads SDK internals (private names, the fields of `Span`, `BoundedAttributes`'
lock and dict). They are looked up without failing at import, and checked once per process
(`_capable`: the names exist, `_Attributes` stores what `BoundedAttributes` stores) and once per
tracer (`_is_lean`: a probe `LeanSpan` has exactly the fields the SDK's constructor sets and records
events, links and its end as the SDK does). Any difference, on any SDK version: None, the SDK's
own path."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from time import time_ns
from typing import Any, cast
from weakref import WeakKeyDictionary

from opentelemetry import trace as trace_api
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import Span as SDKSpan
from opentelemetry.sdk.trace import SynchronousMultiSpanProcessor, Tracer
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

try:
    from opentelemetry.sdk.trace import _tracer_metrics
except ImportError:  # an SDK without tracer self-metrics: the lean path stays off (`_capable`)
    _tracer_metrics = None  # type: ignore[assignment]

# Private SDK internals the lean path relies on, looked up without failing: an SDK that lacks one
# (pyproject allows any opentelemetry-sdk >= 1.25) switches the lean path off, never the import.
_NoOpTracerMetrics: type | None = getattr(_tracer_metrics, "NoOpTracerMetrics", None)
_RANDOM_TRACE_ID: int | None = getattr(TraceFlags, "RANDOM_TRACE_ID", None)

_PLAIN = (str, bool, int, float)
_DEFAULT_SAMPLER = ParentBased(ALWAYS_ON).get_description()
_UNSET = Status(StatusCode.UNSET)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_SAMPLED_RANDOM = TraceFlags(TraceFlags.SAMPLED | (_RANDOM_TRACE_ID or 0))
_LEAN: WeakKeyDictionary[Tracer, bool] = WeakKeyDictionary()
_NONE: BoundedList[Any] = BoundedList(0)
"""The events and links of a span that has none: shared, never appended to."""


def _one_string(value: Any) -> bool:
    """A tuple of one string (a chat span's finish reasons): stored as it is, which is what the SDK's
    validator makes of it (an equal tuple) when no value length limit is set."""
    return type(value) is tuple and len(value) == 1 and type(value[0]) is str


def _plain_items(attributes: Mapping[str, Any]) -> bool:
    """Every key a non-empty string and every value of the plain kinds (or a tuple of one string): what
    the SDK's validators store as they are, in every SDK version (1.45 rewrote the cleaning of the rest:
    nested values, other types cast to strings)."""
    for key, value in attributes.items():
        if type(key) is not str or not key or (type(value) not in _PLAIN and not _one_string(value)):
            return False
    return True


class _Attributes(BoundedAttributes):
    """BoundedAttributes that store plain values with plain keys without the generic validator (the
    same values it would store when no value length limit is set); anything else is the SDK's."""

    def __setitem__(self, key: str, value: Any) -> None:
        if (
            self.max_value_len is None
            and type(value) in _PLAIN
            and type(key) is str
            and key
            and not self._immutable
            and self.maxlen != 0
        ):
            with self._lock:
                self._setitem_locked(key, value)
        else:
            super().__setitem__(key, value)

    def _set_items(self, attributes: Any) -> None:
        maxlen = self.maxlen
        if (
            self.max_value_len is not None
            or self._immutable
            or not maxlen
            or getattr(self, "_extended_attributes", False)  # SDKs before 1.45: their own cleaning
            or not _plain_items(attributes)
        ):
            super()._set_items(attributes)
            return
        with self._lock:
            d = self._dict
            for key, value in attributes.items():
                if key in d:  # replaced: moves to the end, as in `_setitem_locked`
                    del d[key]
                    d[key] = value
                elif maxlen is None or len(d) < maxlen:
                    d[key] = value
                else:  # full: the oldest goes, as the SDK's own `_setitem_locked` evicts it
                    self._setitem_locked(key, value)
                    d = self._dict  # before 1.45, the first eviction makes it an OrderedDict: a new object


class LeanSpan(SDKSpan):
    """An SDK span made by `lean_span`; with no span processor registered, `end()` skips building
    the read-only copy that only processors read."""

    def __init__(
        self,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        tracer: Tracer,
        attributes: Mapping[str, Any] | None,
    ) -> None:
        limits = tracer._span_limits
        self._name = name
        self._context = context
        self._kind = kind
        self._instrumentation_info = tracer.instrumentation_info
        self._instrumentation_scope = tracer._instrumentation_scope
        self._parent = parent
        self._start_time: int | None = None
        self._end_time: int | None = None
        self._resource = tracer.resource
        self._status = _UNSET
        self._sampler = tracer.sampler
        self._trace_config = None
        self._record_exception = True
        self._set_status_on_exception = True
        self._span_processor = tracer.span_processor
        self._limits = limits
        self._lock = threading.Lock()
        attrs = _Attributes(
            limits.max_span_attributes, None, immutable=False, max_value_len=limits.max_span_attribute_length
        )
        if attributes:
            attrs._set_items(attributes)
        self._attributes = attrs
        self._events = _NONE  # made on the first event or link: most spans have neither
        self._links = _NONE
        self._record_end_metrics = None

    def _add_event(self, event: Any) -> None:
        if self._events is _NONE:
            self._events = BoundedList(self._limits.max_events)
        super()._add_event(event)

    def _add_link(self, link: Any) -> None:
        if self._links is _NONE:
            self._links = BoundedList(self._limits.max_links)
        super()._add_link(link)

    def end(self, end_time: int | None = None) -> None:
        processor = self._span_processor
        if (
            type(processor) is SynchronousMultiSpanProcessor
            and not processor._span_processors
            and self._start_time is not None
        ):
            with self._lock:
                if self._end_time is None:
                    self._end_time = end_time if end_time is not None else time_ns()
                    cast(BoundedAttributes, self._attributes)._immutable = True
                    return
        super().end(end_time)  # the SDK's way: processors see it; a second end() warns


_CAPABLE: bool | None = None
"""Whether this SDK's internals are the ones the lean path was written against (`_capable`)."""
_PROBE_CONTEXT = SpanContext(1, 1, is_remote=False)


class _ProbeSpan(SDKSpan):
    """An SDK span made by the SDK's own constructor, to compare fields with (`_span_shape_ok`)."""


def _capable() -> bool:
    """Checked once per process: the private names were found and `_Attributes` stores what the
    SDK's `BoundedAttributes` stores, in the same order, dropping the same."""
    global _CAPABLE
    if _CAPABLE is None:
        _CAPABLE = False
        if _NoOpTracerMetrics is not None and _RANDOM_TRACE_ID is not None:
            try:
                _CAPABLE = _attributes_ok()
            except Exception:  # an internal renamed or changed: the SDK's own path, always correct
                _CAPABLE = False
    return _CAPABLE


def _attributes_ok() -> bool:
    for maxlen in (None, 3):
        ours = _Attributes(maxlen, None, immutable=False, max_value_len=None)
        sdks = BoundedAttributes(maxlen, None, immutable=False, max_value_len=None)
        for attrs in (ours, sdks):
            attrs._set_items({"s": "x", "i": 1, "l": [1, 2], "t": ("a",)})
            attrs["f"] = 0.5
            attrs["s"] = "y"  # replaced: moves to the end
            attrs._set_items({"b": True})
            attrs._immutable = True
        if list(ours.items()) != list(sdks.items()) or ours.dropped != sdks.dropped:
            return False
    # a batch whose first eviction (the dict then becomes an OrderedDict) is followed by a key it evicted
    ours = _Attributes(2, None, immutable=False, max_value_len=None)
    sdks = BoundedAttributes(2, None, immutable=False, max_value_len=None)
    for attrs in (ours, sdks):
        attrs["a"] = 1
        attrs._set_items({"b": 1, "c": 1, "a": 2})
    return list(ours.items()) == list(sdks.items()) and ours.dropped == sdks.dropped


def _span_shape_ok(tracer: Tracer) -> bool:
    """A lean span has every field the SDK's constructor sets (and no other), and its events and
    links are recorded as the SDK's are; a span ended with no processor is ended and frozen."""
    lean = LeanSpan("probe", _PROBE_CONTEXT, None, SpanKind.INTERNAL, tracer, {"k": "v"})
    if set(vars(lean)) != set(vars(_ProbeSpan("probe", _PROBE_CONTEXT))):
        return False
    lean._span_processor = SynchronousMultiSpanProcessor()  # the probe is never seen by a processor
    lean.start()
    lean.add_event("e")
    lean.add_link(_PROBE_CONTEXT)
    lean.end()
    return (
        len(lean.events) == 1
        and len(lean.links) == 1
        and len(_NONE) == 0
        and lean.end_time is not None
        and dict(lean.attributes or {}) == {"k": "v"}
        and cast(BoundedAttributes, lean._attributes)._immutable
    )


def _is_lean(tracer: Tracer) -> bool:
    """Checked once per tracer: the SDK is `_capable`, the tracer samples and records every span
    (the default sampler, self-metrics off) and makes spans shaped as `LeanSpan` expects."""
    found = _LEAN.get(tracer)
    if found is None:
        try:
            found = (
                _capable()
                and type(tracer.span_processor) is SynchronousMultiSpanProcessor
                and isinstance(tracer.span_processor._span_processors, tuple)
                and tracer.sampler.get_description() == _DEFAULT_SAMPLER
                and _NoOpTracerMetrics is not None
                and isinstance(tracer._tracer_metrics, _NoOpTracerMetrics)
                and isinstance(tracer._is_enabled(), bool)
                and _span_shape_ok(tracer)
            )
        except Exception:  # a tracer without an internal read below: the tracer's own path
            found = False
        _LEAN[tracer] = found
    return found


def lean_span(
    tracer: trace_api.Tracer,
    name: str,
    parent: trace_api.Span | None,
    attributes: Mapping[str, Any] | None,
    kind: SpanKind,
    start_ns: int | None,
) -> SDKSpan | None:
    """The span `tracer.start_span(name, context=<parent's>, ...)` would make, made directly; None
    when only the tracer can say (see the module)."""
    if type(tracer) is not Tracer or not _is_lean(tracer) or not tracer._is_enabled():
        return None
    processor = tracer.span_processor
    if type(processor) is not SynchronousMultiSpanProcessor or processor._span_processors:
        return None  # a processor sees the span start with its parent context: the tracer's way
    if parent is None:  # as the SDK does: the current span, if any, is the parent
        parent = trace_api.get_current_span()
    pctx = parent.get_span_context()
    if pctx.is_valid:
        if not pctx.trace_flags.sampled:
            return None  # dropped: the tracer makes the non-recording span
        trace_id = pctx.trace_id
        flags = _SAMPLED_RANDOM if pctx.trace_flags.random_trace_id else _SAMPLED
        trace_state = pctx.trace_state
        parent_ctx: SpanContext | None = pctx
    else:
        ids = tracer.id_generator
        trace_id = ids.generate_trace_id()
        flags = _SAMPLED_RANDOM if ids.is_trace_id_random() else _SAMPLED
        trace_state = None
        parent_ctx = None
    context = SpanContext(
        trace_id,
        tracer.id_generator.generate_span_id(),
        is_remote=False,
        trace_flags=flags,
        trace_state=trace_state,
    )
    span = LeanSpan(name, context, parent_ctx, kind, tracer, attributes)
    span.start(start_time=start_ns)
    return span


def span_events(span: Any) -> Sequence[Any]:
    """`span.events`; for a span `lean_span` made that has none, an empty tuple without the SDK's
    copy of its (shared, empty) event list under its lock."""
    if type(span) is LeanSpan and span._events is _NONE:
        return ()
    events: Sequence[Any] = span.events
    return events
