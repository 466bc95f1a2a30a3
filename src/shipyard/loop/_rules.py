"""Incident rules (`incidents.rules`): a filter, a sampling rate and an action, applied to new traffic
by the watcher and to stored traffic by `backfill`.

Sampling is by a hash of the rule's name and the interaction id, so the same interaction is taken
or left the same way every time: a backfill run twice, or a backfill after the live watcher, takes
the same interactions (and the store counts each interaction once per source).
"""

from __future__ import annotations

import hashlib
import statistics
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shipyard.config import IncidentRule, IncidentsConfig
from shipyard.store import IncidentHit, IncidentSignal, InteractionRecord

if TYPE_CHECKING:
    from shipyard.store import Store

MIN_SAMPLES = 10  # an outlier needs at least this many earlier interactions of the agent
WINDOW = 500  # the median is over the agent's last this many interactions


def sampled(rule: IncidentRule, interaction_id: str) -> bool:
    """Whether `rule` takes this interaction (stable: by hash, not by chance)."""
    if rule.sample >= 1.0:
        return True
    h = hashlib.blake2b(f"{rule.name}\n{interaction_id}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2**64 < rule.sample


class Medians:
    """The median cost and latency of each agent's recent interactions (for outlier filters)."""

    def __init__(self, window: int = WINDOW) -> None:
        self.window = window
        self._cost: dict[str, deque[float]] = {}
        self._latency: dict[str, deque[float]] = {}

    def add(self, record: InteractionRecord) -> None:
        self._cost.setdefault(record.agent, deque(maxlen=self.window)).append(record.cost_usd)
        self._latency.setdefault(record.agent, deque(maxlen=self.window)).append(record.latency_ms)

    def cost(self, agent: str) -> float | None:
        return _median(self._cost.get(agent))

    def latency(self, agent: str) -> float | None:
        return _median(self._latency.get(agent))


def _median(values: Iterable[float] | None) -> float | None:
    found = list(values or [])
    return statistics.median(found) if len(found) >= MIN_SAMPLES else None


def _tags(record: InteractionRecord) -> set[str]:
    tags = (record.metadata or {}).get("tags")
    if isinstance(tags, str):
        return {tags}
    return {str(t) for t in tags} if isinstance(tags, list) else set()


def matches(rule: IncidentRule, record: InteractionRecord, medians: Medians, low_csat: float) -> str | None:
    """Why `record` matches `rule` (a short text), or None when it does not."""
    from shipyard.loop._incidents import is_negative

    if rule.agent is not None and rule.agent != record.agent:
        return None
    w = rule.when
    why: list[str] = []
    if w.status:
        if record.status not in w.status:
            return None
        why.append(f"status {record.status}")
    if w.feedback is not None:
        fb = record.feedback
        if w.feedback == "any" and not fb:
            return None
        if w.feedback == "negative" and not is_negative(fb, low_csat):
            return None
        if w.feedback == "positive" and (not fb or is_negative(fb, low_csat)):
            return None
        why.append(f"feedback {w.feedback}")
    if w.guardrail:
        verdicts = [g.get("verdict") for g in record.guardrails or []]
        hit = [v for v in verdicts if v in w.guardrail]
        if not hit:
            return None
        why.append(f"guardrail {hit[0]}")
    if w.cost_over_usd is not None:
        if not record.cost_usd > w.cost_over_usd:
            return None
        why.append(f"cost ${record.cost_usd:.4f} > ${w.cost_over_usd:g}")
    if w.latency_over_ms is not None:
        if not record.latency_ms > w.latency_over_ms:
            return None
        why.append(f"latency {record.latency_ms:.0f} ms > {w.latency_over_ms:g} ms")
    if w.cost_outlier is not None:
        median = medians.cost(record.agent)
        if median is None or not record.cost_usd > w.cost_outlier * median:
            return None
        why.append(f"cost ${record.cost_usd:.4f} > {w.cost_outlier:g}x median ${median:.4f}")
    if w.latency_outlier is not None:
        median = medians.latency(record.agent)
        if median is None or not record.latency_ms > w.latency_outlier * median:
            return None
        why.append(f"latency {record.latency_ms:.0f} ms > {w.latency_outlier:g}x median {median:.0f} ms")
    if w.tags:
        missing = set(w.tags) - _tags(record)
        if missing:
            return None
        why.append(f"tags {', '.join(w.tags)}")
    return "; ".join(why) or "every interaction"


def _uses_feedback(rule: IncidentRule) -> bool:
    return rule.when.feedback is not None


def rule_signals(
    record: InteractionRecord, settings: IncidentsConfig, medians: Medians, *, feedback_only: bool = False
) -> list[IncidentSignal]:
    """The signals the rules make of one interaction. `feedback_only`: only rules that look at
    feedback (called when feedback arrives; the others ran when the interaction finished)."""
    from shipyard.loop._incidents import _span_ids, input_tokens, record_signals

    out: list[IncidentSignal] = []
    primary: list[IncidentSignal] | None = None
    for rule in settings.rules:
        if feedback_only and not _uses_feedback(rule):
            continue
        if not sampled(rule, record.id):
            continue
        why = matches(rule, record, medians, settings.low_csat)
        if why is None:
            continue
        if primary is None:  # group with the incident a source made of the same failure
            primary = record_signals(record, settings)
        failure = primary[0].failure if primary else ("feedback:negative" if rule.when.feedback == "negative"
                                                      else f"rule:{rule.name}")  # fmt: skip
        out.append(
            IncidentSignal(
                agent=record.agent,
                failure=failure,
                source=f"rule:{rule.name}",
                title=f"rule {rule.name}: {why}",
                input=record.input,
                tokens=input_tokens(record.input),
                version=record.version,
                interaction_id=record.id,
                trace_id=record.trace_id,
                span_ids=_span_ids(record),
                detail=why,
                rule=rule.name,
                state="candidate" if rule.action == "candidate" else "open",
                review=rule.action in ("candidate", "review"),
                at=record.created_at,
            )
        )
    return out


@dataclass(slots=True)
class BackfillResult:
    """What a backfill did: interactions looked at, signals found, incidents opened, occurrences
    added to existing incidents, and signals already recorded (skipped)."""

    scanned: int = 0
    signals: int = 0
    opened: int = 0
    grouped: int = 0
    already: int = 0
    incidents: set[str] = field(default_factory=set)


def backfill(
    store: Store,
    settings: IncidentsConfig,
    *,
    agent: str | None = None,
    since: float | None = None,
    until: float | None = None,
    rules_only: bool = False,
    batch: int = 500,
    record: Callable[[list[IncidentSignal]], list[IncidentHit]] | None = None,
    progress: Callable[[int], None] | None = None,
) -> BackfillResult:
    """Apply the rules (and, unless `rules_only`, the sources) to stored interactions, oldest first.

    Args:
        agent: only this agent's interactions.
        since, until: creation time bounds (epoch seconds).
        rules_only: only the rules (not the sources).
        record: writes a page's signals (default: `store.record_incidents`, one transaction); the
            watcher's `record_many` also delivers rule webhooks.
        progress: called with the number scanned after each batch.
    """
    from shipyard.loop._incidents import signals_for

    out = BackfillResult()
    medians = Medians()
    write = record or (lambda signals: store.record_incidents(signals, min_similarity=settings.similarity))
    cursor = since if since is not None else 0.0
    seen_at_cursor: set[str] = set()
    end = until if until is not None else time.time() + 1
    while True:
        raw = store.list_interactions(
            agent=agent, since=cursor, until=end, limit=batch, oldest_first=True, spans=True
        )
        fresh = [r for r in raw if r.id not in seen_at_cursor]
        if not fresh:
            break
        signals: list[IncidentSignal] = []
        for r in fresh:
            if r.traffic_source not in settings.traffic:
                continue
            signals += [] if rules_only else signals_for([r], settings)
            signals += rule_signals(r, settings, medians)
            medians.add(r)
        for hit in write(signals) if signals else []:
            out.signals += 1
            if hit.duplicate:
                out.already += 1
            elif hit.created:
                out.opened += 1
            else:
                out.grouped += 1
            out.incidents.add(hit.incident_id)
        out.scanned += len(fresh)
        if progress is not None:
            progress(out.scanned)
        last = raw[-1].created_at
        at_last = {r.id for r in raw if r.created_at == last}
        seen_at_cursor = at_last | seen_at_cursor if last == cursor else at_last
        cursor = last
    return out


def rules_text(rules: Iterable[IncidentRule]) -> list[str]:
    """One line per rule, for people."""
    out = []
    for r in rules:
        when = r.when.model_dump(exclude_defaults=True)
        out.append(f"{r.name}: {when or 'every interaction'} sample {r.sample:g} -> {r.action}")
    return out
