"""Redaction at rest: what of users' content the record and its spans keep (`server.content_capture`).

Done once, where the `record` step builds the interaction record and hands its spans on: every sink
(the store, the journal, the KPI window, logs, the dashboard, OTLP export, held traces) gets the
same masked record and spans, so no sink can forget to mask. Unless `content_capture` says
`unmasked_pii: true`, personal data is replaced by typed placeholders (`[EMAIL]`, `[PHONE]`, ...,
`shipyard.guardrails.redact_pii`) in: the input, the output, the error, tool arguments, tool results
and tool errors, model-call errors, guardrail reasons, request metadata, and every span attribute,
event attribute and status message that is not one of Shipyard's own non-content attributes (ids,
names, models, counts). Logs additionally keep only the length of content unless capture is enabled.

The caller of `Runtime.invoke` still gets what happened (the answer the user is sent, the tool
calls evals score): only what is kept is masked."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import Status

from shipyard.guardrails import redact_pii
from shipyard.observe import semconv as sc
from shipyard.observe import span_attributes, span_events
from shipyard.store import InteractionRecord, ToolCallRecord

# Span attributes Shipyard sets that never carry user content (names, ids, models, closed sets): not
# scanned, as a scan costs tens of µs. A list of what is safe, not of what is content: an attribute
# added later is scanned until it is listed here (numbers and booleans never are).
_NOT_CONTENT: Final = frozenset(
    getattr(sc, name)
    for name in (
        "OPERATION",
        "SHIPYARD_OPERATION",
        "PROVIDER",
        "REQUEST_MODEL",
        "RESPONSE_MODEL",
        "MODEL_KEY",
        "RESPONSE_ID",
        "FINISH_REASONS",
        "OUTPUT_TYPE",
        "REQUEST_TOOL_CHOICE",
        "CONVERSATION_ID",
        "AGENT_NAME",
        "AGENT_VERSION",
        "TOOL_NAME",
        "TOOL_CALL_ID",
        "TOOL_TYPE",
        "TOOL_STATUS",
        "ERROR_TYPE",
        "SERVER_ADDRESS",
        "HTTP_METHOD",
        "TRAFFIC_SOURCE",
        "INTERACTION_ID",
        "STATUS",
        "ATTEMPT_OUTCOME",
        "GUARDRAIL_VERDICT",
        "GUARDRAIL_KIND",
        "GUARDRAIL_STAGE",
        "FEATURE_FLAGS",
        "LLM_GIVE_UP_REASON",
        "LLM_FALLBACK_FROM",
        "LLM_FALLBACK_TO",
        "LLM_BREAKER_FROM",
        "LLM_BREAKER_TO",
        "FLAG_KEY",
        "FLAG_PROVIDER",
        "FLAG_VARIANT",
        "FLAG_REASON",
    )
    if isinstance(getattr(sc, name, None), str)
)
_SHORTEST_PII = 6  # "a@b.co"; phone numbers, cards, IPs and the rest are longer


class ContentMask:
    """Masks personal data in what is kept. One per runtime; `enabled` False keeps content as it is.

    Each distinct text is scanned once per interaction (the user's message reappears in tool
    arguments and spans), and the masked form of texts up to `CACHED_CHARS` long is remembered across
    interactions (`CACHED_TEXTS` of them, least recently used first out): tool results, knowledge
    base passages and replies repeat, and a scan costs tens of microseconds."""

    __slots__ = ("_scan", "_warmed", "enabled")

    CACHED_TEXTS = 4096
    CACHED_CHARS = 4096

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._scan = functools.lru_cache(maxsize=self.CACHED_TEXTS)(_redact)
        self._warmed = False

    def warm(self) -> None:
        """Load what a scan needs (the PII detectors load on first use), so the first interaction
        does not pay for it; the runtime's warm-up calls this (each eval run does: once is enough)."""
        if self.enabled and not self._warmed:
            _redact("+1 650-253-0000, (650) 253-0000 ext. 1, 1 Main Street, jane@example.org")
            # libphonenumber reads each region's metadata on first sight of one of its numbers
            import phonenumbers  # loaded by the scan above; imported here only to load every region

            phonenumbers.PhoneMetadata.load_all()
            self._warmed = True

    def text(self, text: str) -> str:
        """One text as it is kept (a feedback comment, say)."""
        return _Masker(self._scan).text(text) if self.enabled else text

    def keep(self, r: InteractionRecord, spans: Sequence[Any]) -> tuple[InteractionRecord, list[Any]]:
        """`r` and its OTel spans as they are kept: masked copies (the originals stay the caller's);
        a span that carried no personal data is kept as it is. `r.spans` is not looked at: build
        it from the returned spans."""
        if not self.enabled:
            return r, list(spans)
        m = _Masker(self._scan)
        kept_spans = [m.span(s) if isinstance(s, ReadableSpan) else s for s in spans]
        return m.record(r), kept_spans

    def record(self, r: InteractionRecord) -> InteractionRecord:
        """`r` as it is kept (its spans included): a masked copy."""
        if not self.enabled:
            return r
        m = _Masker(self._scan)
        kept = m.record(r)
        kept.spans = [
            dataclasses.replace(s, attributes=m.attributes(s.attributes) or s.attributes) for s in r.spans
        ]
        return kept


_DIGIT_OR_AT = re.compile(r"[\d@]")  # any script's digits: full-width ones too


def _redact(text: str) -> str:
    """`text` with personal data replaced. Every entity type but secrets needs a digit or an `@`
    (emails, numbers, addresses with their house number), so a text without either is only searched
    for secrets: most texts a record keeps cost a fraction of a full scan."""
    if _DIGIT_OR_AT.search(text) is None:
        return redact_pii(text, entities=("SECRET",))[0]
    return redact_pii(text)[0]


def _init_fields(cls: type) -> tuple[str, ...] | None:
    """The names of `cls`'s fields, in order, when they are exactly its `__init__`'s parameters and
    each can be passed by position (no keyword-only, init-only or non-init field); None otherwise."""
    names = tuple(f.name for f in dataclasses.fields(cls))
    params = list(inspect.signature(cls).parameters.values())
    if tuple(p.name for p in params) != names or any(p.kind is not p.POSITIONAL_OR_KEYWORD for p in params):
        return None
    return names


_RECORD_FIELDS: Final = _init_fields(InteractionRecord)


def _replace(r: InteractionRecord, **changes: Any) -> InteractionRecord:
    """`dataclasses.replace(r, **changes)`, with the fields passed by position: a call with two dozen
    keyword arguments costs more than the masking it carries (this runs once per interaction)."""
    if _RECORD_FIELDS is None or type(r) is not InteractionRecord:
        return dataclasses.replace(r, **changes)
    return InteractionRecord(*[changes[n] if n in changes else getattr(r, n) for n in _RECORD_FIELDS])


class _Masker:
    """One record's masking, with the texts already masked remembered."""

    __slots__ = ("_scan", "_seen")

    def __init__(self, scan: Callable[[str], str]) -> None:
        self._scan = scan
        self._seen: dict[str, str] = {}

    def record(self, r: InteractionRecord) -> InteractionRecord:
        return _replace(
            r,
            input=self.text(r.input),
            output=self.text(r.output),
            error=self.text(r.error) if r.error is not None else None,
            tool_calls=[
                ToolCallRecord(
                    name=t.name,
                    arguments=self.value(t.arguments),
                    status=t.status,
                    duration_ms=t.duration_ms,
                    error=self.text(t.error) if t.error is not None else None,
                    cached=t.cached,
                    result=self.value(t.result),
                )
                for t in r.tool_calls
            ],
            llm_calls=[
                dataclasses.replace(c, error=self.text(c.error)) if c.error else c for c in r.llm_calls
            ],
            guardrails=[
                {**g, "reason": self.text(g["reason"])} if isinstance(g.get("reason"), str) else dict(g)
                for g in r.guardrails
            ],
            metadata=self.value(r.metadata),
        )

    def text(self, text: str) -> str:
        if len(text) < _SHORTEST_PII:
            return text
        found = self._seen.get(text)
        if found is None:
            found = self._seen[text] = (
                self._scan(text) if len(text) <= ContentMask.CACHED_CHARS else _redact(text)
            )
        return found

    def value(self, value: Any) -> Any:
        """Strings in a JSON-like value masked (mapping keys are kept: they are names)."""
        kind = type(value)
        if kind is str:
            return self.text(value)
        if kind is dict:  # the usual JSON shapes by exact type first: an ABC check costs more
            return {k: self.value(v) for k, v in value.items()}
        if kind is int or kind is float or kind is bool or value is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value

    def attributes(self, attributes: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """Masked attributes, or None when nothing changed."""
        if not attributes:
            return None
        changed: dict[str, Any] | None = None
        for key in attributes.keys() - _NOT_CONTENT:  # the rest: content, or not known not to be
            value = attributes[key]
            kind = type(value)
            if kind is int or kind is float or kind is bool:
                continue  # a number is never content
            if isinstance(value, str):
                masked: Any = self.text(value)
            elif isinstance(value, tuple | list) and any(isinstance(v, str) for v in value):
                masked = tuple(self.text(v) if isinstance(v, str) else v for v in value)
                if list(masked) == list(value):
                    masked = value
            else:
                continue
            if masked is not value and masked != value:
                changed = changed if changed is not None else dict(attributes)
                changed[key] = masked
        return changed

    def span(self, s: ReadableSpan) -> ReadableSpan:
        attributes = self.attributes(span_attributes(s))
        events = span_events(s)
        kept_events: list[Event] | None = None  # copied only when an event is masked
        for i, e in enumerate(events):
            masked = self.attributes(e.attributes)
            if masked is not None:
                if kept_events is None:
                    kept_events = list(events)
                kept_events[i] = Event(e.name, masked, e.timestamp)
        description = s.status.description
        masked_description = self.text(description) if description else description
        if attributes is None and kept_events is None and masked_description == description:
            return s
        return ReadableSpan(
            name=s.name,
            context=s.context,
            parent=s.parent,
            resource=s.resource,
            attributes=attributes if attributes is not None else s.attributes,
            events=kept_events if kept_events is not None else list(events),
            links=s.links,
            kind=s.kind,
            status=Status(s.status.status_code, masked_description),
            start_time=s.start_time,
            end_time=s.end_time,
            instrumentation_scope=s.instrumentation_scope,
        )
