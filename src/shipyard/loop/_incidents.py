"""Incidents from what production shows: the sources, grouping, and the watcher on the record path.

Sources (`incidents.sources`): `error` (a failed interaction), `guardrail` (a block or an escalation by
an input/output guardrail), `tool_policy` (a tool call a tool policy refused), `escalation` (the
agent handed the user to a human), `feedback` (a thumbs-down or a score at or below `low_csat`),
`alert` (an alert rule started firing) and `complaint` (`POST /v1/incidents`). Each gives a signal
with a failure signature; the store groups signals of the same agent and failure whose inputs share
enough words (`incidents.similarity`) onto one incident with a count.

The watcher looks at each record off the request path: `submit` only puts the record in a bounded
queue (a full queue counts the record as skipped, never waits); a worker thread finds the signals,
applies the rules (`loop/_rules.py`) and writes to the store.
"""

from __future__ import annotations

import contextlib
import queue
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from shipyard.config import IncidentsConfig
from shipyard.loop._rules import Medians, rule_signals
from shipyard.observe import log_event
from shipyard.store import IncidentHit, IncidentSignal, InteractionRecord, Store

if TYPE_CHECKING:
    import httpx  # imported when a webhook is first posted: a server without one never loads it

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_MAX_TOKENS = 64
BATCH = 256  # most queued items the worker writes in one transaction
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "from",
        "i",
        "if",
        "in",
        "is",
        "it",
        "me",
        "my",
        "of",
        "on",
        "or",
        "so",
        "the",
        "to",
        "was",
        "we",
        "you",
        "your",
    ]
)


def input_tokens(text: str) -> list[str]:
    """The words an input is compared by: lower case, numbers as `0` (order 10001 and order 10002
    are the same question), common words left out, each once."""
    out: list[str] = []
    seen: set[str] = set()
    for w in _WORD.findall(text.lower()):
        w = "0" if w.isdigit() else w
        if w in _STOP or w in seen:
            continue
        seen.add(w)
        out.append(w)
        if len(out) >= _MAX_TOKENS:
            break
    return out


def _first_line(text: str | None, limit: int = 160) -> str:
    return (text or "").strip().splitlines()[0][:limit] if (text or "").strip() else ""


def _span_ids(record: InteractionRecord, *names: str) -> list[str]:
    """Ids of the record's spans with these names (the root span when none match)."""
    found = [s.span_id for s in record.spans if s.name in names]
    if not found:
        found = [s.span_id for s in record.spans if s.parent_id is None][:1]
    return found


def is_negative(feedback: Mapping[str, Any] | None, low_csat: float) -> bool:
    """A thumbs-down, or a score at or below `low_csat`."""
    if not feedback:
        return False
    score = feedback.get("score")
    return feedback.get("thumbs") == -1 or (score is not None and float(score) <= low_csat)


def _signal(record: InteractionRecord, failure: str, source: str, title: str, **more: Any) -> IncidentSignal:
    return IncidentSignal(
        agent=record.agent,
        failure=failure,
        source=source,
        title=title,
        input=record.input,
        tokens=input_tokens(record.input),
        version=record.version,
        interaction_id=record.id,
        trace_id=record.trace_id,
        at=record.created_at,
        **more,
    )


def record_signals(record: InteractionRecord, settings: IncidentsConfig) -> list[IncidentSignal]:
    """The incidents one interaction is, by the sources `settings` turns on (feedback aside: it
    comes later, see `feedback_signal`)."""
    on = set(settings.sources)
    out: list[IncidentSignal] = []
    escalated_by_guardrail = False
    for g in record.guardrails or []:
        verdict = g.get("verdict")
        if verdict not in ("block", "escalate"):
            continue
        name = str(g.get("name", "?"))
        if g.get("kind") == "tool_policy" or g.get("stage") == "tool_call":
            if "tool_policy" in on:
                tool = str(g.get("tool", "?"))
                out.append(
                    _signal(
                        record,
                        f"tool_policy:{name}:{tool}:{verdict}",
                        "tool_policy",
                        f"tool policy {name} {verdict}ed a call of {tool}",
                        span_ids=_span_ids(record, f"apply_guardrail {name}", f"execute_tool {tool}"),
                        detail=str(g.get("reason") or ""),
                    )
                )
            continue
        escalated_by_guardrail |= verdict == "escalate"
        if "guardrail" in on:
            out.append(
                _signal(
                    record,
                    f"guardrail:{name}:{verdict}",
                    "guardrail",
                    f"guardrail {name} {verdict}ed the {g.get('stage', '')} of {record.agent}".replace(
                        "  ", " "
                    ),
                    span_ids=_span_ids(record, f"apply_guardrail {name}"),
                    detail=str(g.get("reason") or ""),
                )
            )
    if "tool_policy" in on and not any(s.source == "tool_policy" for s in out):
        for t in record.tool_calls:
            if t.status == "blocked":
                out.append(
                    _signal(
                        record,
                        f"tool_policy:{t.name}:blocked",
                        "tool_policy",
                        f"a call of {t.name} was refused",
                        span_ids=_span_ids(record, f"execute_tool {t.name}"),
                        detail=t.error or "",
                    )
                )
                break
    if record.status == "failed" and "error" in on:
        kind = str(record.metadata.get("error_kind") or "error")
        out.append(
            _signal(
                record,
                f"status:failed:{kind}",
                "error",
                f"{record.agent} failed: {_first_line(record.error) or kind}",
                span_ids=[s.span_id for s in record.spans if s.status == "error"] or _span_ids(record),
                detail=record.error or "",
            )
        )
    if record.status == "escalated" and not escalated_by_guardrail and "escalation" in on:
        out.append(
            _signal(
                record,
                "status:escalated",
                "escalation",
                f"{record.agent} handed the user to a human",
                span_ids=_span_ids(record),
                detail=_first_line(record.output, 500),
            )
        )
    return out


def feedback_signal(record: InteractionRecord, settings: IncidentsConfig) -> IncidentSignal | None:
    """The incident a user's negative feedback is (None when it is not negative or the source is off).
    A comment is kept as the detail, never as an expectation: a thumbs-down says what was wrong,
    not what is right, so it makes a candidate at most."""
    if "feedback" not in settings.sources or not is_negative(record.feedback, settings.low_csat):
        return None
    fb = record.feedback or {}
    said = "thumbs down" if fb.get("thumbs") == -1 else f"score {fb.get('score')}"
    return _signal(
        record,
        "feedback:negative",
        "feedback",
        f"negative feedback ({said}) on {record.agent}",
        span_ids=_span_ids(record),
        detail=str(fb.get("comment") or ""),
    )


def complaint_signal(
    record: InteractionRecord, comment: str, expected: str | None = None, *, by: str = "complaint"
) -> IncidentSignal:
    """A complaint about one interaction; `expected` (what the answer should have been) is a human
    correction and becomes the case's expectation."""
    expectation = {"expected": expected, "by": by, "at": time.time()} if expected else None
    return IncidentSignal(
        agent=record.agent,
        failure="complaint",
        source="complaint",
        title=f"complaint: {_first_line(comment, 120) or 'no comment'}",
        input=record.input,
        tokens=input_tokens(record.input),
        version=record.version,
        interaction_id=record.id,
        trace_id=record.trace_id,
        span_ids=_span_ids(record),
        detail=comment,
        expectation=expectation,
        review=True,
    )


def alert_signal(transition: Any, agent: str | None = None) -> IncidentSignal | None:
    """An alert rule that started firing (a transition into `alert`); other transitions are None.
    `agent`: the agent the rule watches (None: every agent, shown as `*`)."""
    if getattr(transition, "state", None) != "alert":
        return None
    rule = transition.rule
    agent = agent or "*"
    value = transition.value
    return IncidentSignal(
        agent=agent,
        failure=f"alert:{rule}",
        source="alert",
        title=f"alert {rule}: {transition.metric} = {value if value is None else round(value, 4)} "
        f"(threshold {transition.threshold})",
        detail=str(transition.to_dict() if hasattr(transition, "to_dict") else transition),
        at=transition.at,
    )


class IncidentWatcher:
    """Turns new traffic into incidents, off the request path.

    Args:
        settings: `cfg.incidents`.
        store: where incidents go.
        timeout_s: how long one webhook delivery may take.
    """

    def __init__(self, settings: IncidentsConfig, store: Store, *, timeout_s: float = 5.0) -> None:
        self.settings = settings
        self.store = store
        self.timeout_s = timeout_s
        self.skipped = 0  # records the full queue could not take
        self.failed = 0  # records whose signals could not be written
        self.medians = Medians()
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=settings.queue_size)
        self._client: httpx.Client | None = None
        self._thread = threading.Thread(target=self._work, name="shipyard-incidents", daemon=True)
        self._closed = False
        self._thread.start()

    # what callers hand over (never waits) ---------------------------------------------------------
    def submit(self, record: InteractionRecord) -> None:
        """A finished interaction (a Runtime sink / a server record step)."""
        if self.settings.enabled and record.traffic_source in self.settings.traffic:
            self._put("record", record)

    def feedback(self, record: InteractionRecord) -> None:
        """Feedback was attached to `record` (with its feedback)."""
        if self.settings.enabled and record.traffic_source in self.settings.traffic:
            self._put("feedback", record)

    def alert(self, transition: Any, agent: str | None = None) -> None:
        """An alert rule changed state (`agent`: the one the rule watches, if only one)."""
        if self.settings.enabled and "alert" in self.settings.sources:
            self._put("alert", (transition, agent))

    def _put(self, kind: str, item: Any) -> None:
        if self._closed:
            return
        try:
            self._queue.put_nowait((kind, item))
        except queue.Full:
            self.skipped += 1

    def drain(self, timeout_s: float = 30.0) -> bool:
        """Wait until everything handed over so far is looked at; False if that took over `timeout_s`."""
        done = threading.Event()
        self._put("marker", done)
        return done.wait(timeout_s)

    def close(self) -> None:
        """Look at what is queued, then stop the worker."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(("stop", None))
        self._thread.join(timeout=30)
        if self._client is not None:
            self._client.close()

    # the worker ------------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < BATCH and batch[-1][0] not in ("stop", "marker"):
                try:  # what else is waiting goes in the same transaction
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            signals: list[IncidentSignal] = []
            for kind, item in batch:
                if kind in ("stop", "marker"):
                    continue
                try:
                    signals += self._signals(kind, item)
                except Exception as e:  # never stops the worker: noted and counted
                    self.failed += 1
                    log_event(
                        "incident_failed", level="error", kind=kind, error=f"{type(e).__name__}: {e}"[:500]
                    )
            if signals:
                try:
                    self.record_many(signals)
                except Exception as e:
                    self.failed += len(signals)
                    log_event(
                        "incident_failed", level="error", kind="write", error=f"{type(e).__name__}: {e}"[:500]
                    )
            kind, item = batch[-1]
            if kind == "marker":
                item.set()
            elif kind == "stop":
                return

    def _signals(self, kind: str, item: Any) -> list[IncidentSignal]:
        if kind == "alert":
            signal = alert_signal(*item)
            return [signal] if signal is not None else []
        record: InteractionRecord = item
        if kind == "feedback":
            found = feedback_signal(record, self.settings)
            signals = [found] if found is not None else []
            return signals + rule_signals(record, self.settings, self.medians, feedback_only=True)
        signals = record_signals(record, self.settings)
        signals += rule_signals(record, self.settings, self.medians)
        self.medians.add(record)
        return signals

    def record(self, signal: IncidentSignal) -> IncidentHit:
        """Write one signal (grouped) and deliver the webhook of the rule that made it."""
        return self.record_many([signal])[0]

    def record_many(self, signals: Sequence[IncidentSignal]) -> list[IncidentHit]:
        """Write signals in one transaction (grouped), then deliver the webhooks of the rules that
        made new occurrences."""
        hits = self.store.record_incidents(signals, min_similarity=self.settings.similarity)
        for signal, hit in zip(signals, hits, strict=True):
            if hit.created:
                log_event(
                    "incident_opened",
                    incident_id=hit.incident_id,
                    agent=signal.agent,
                    source=signal.source,
                    failure=signal.failure,
                    interaction_id=signal.interaction_id,
                )
            if not hit.duplicate and signal.rule is not None:
                self._webhook(signal, hit)
        return hits

    def _webhook(self, signal: IncidentSignal, hit: IncidentHit) -> None:
        rule = next((r for r in self.settings.rules if r.name == signal.rule), None)
        if rule is None or rule.action != "webhook" or not rule.webhook:
            return
        deliver_webhook(rule.webhook, incident_payload(self.store, hit), self._http())

    def _http(self) -> httpx.Client:
        if self._client is None:
            import httpx

            self._client = httpx.Client(timeout=self.timeout_s)
        return self._client


def incident_payload(store: Store, hit: IncidentHit) -> dict[str, Any]:
    """What a webhook receives: the incident (without its word list), whether it is new."""
    inc = store.get_incident(hit.incident_id, occurrences=5)
    inc.pop("tokens", None)
    return {"event": "incident", "created": hit.created, "incident": inc}


def deliver_webhook(url: str, payload: Mapping[str, Any], client: httpx.Client) -> bool:
    """POST `payload` as JSON; a failure is logged (never raised). True when delivered."""
    import httpx
    import orjson

    try:
        resp = client.post(
            url,
            content=orjson.dumps(payload, default=str),
            headers={"content-type": "application/json"},
        )
        resp.raise_for_status()
        return True
    except httpx.HTTPError as e:
        log_event("incident_webhook_failed", level="warning", url=url, error=str(e)[:300])
        return False


def watch(runtime: Any, watcher: IncidentWatcher) -> None:
    """Hand every record `runtime` makes to `watcher` (a Runtime sink: never waits)."""
    runtime.sinks.append(watcher.submit)


def signals_for(records: Iterable[InteractionRecord], settings: IncidentsConfig) -> list[IncidentSignal]:
    """Every source signal of stored records, feedback included (backfill)."""
    out: list[IncidentSignal] = []
    for r in records:
        out += record_signals(r, settings)
        fb = feedback_signal(r, settings)
        if fb is not None:
            out.append(fb)
    return out


def close_quietly(watcher: IncidentWatcher | None) -> None:
    if watcher is not None:
        with contextlib.suppress(Exception):
            watcher.close()


__all__: Sequence[str] = (
    "IncidentWatcher",
    "alert_signal",
    "complaint_signal",
    "feedback_signal",
    "input_tokens",
    "is_negative",
    "record_signals",
    "signals_for",
    "watch",
)
