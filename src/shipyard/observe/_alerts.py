"""Alert rules evaluated over KPI windows: state per rule, transitions to the log and to webhooks.

Each rule is in one state: `ok`, `warn`, `alert`, or `no_data` (fewer than `min_samples` data
points, when the rule's `no_data` is `ok`; with `no_data: warn|alert` missing data takes that
state instead). A change of state is a transition: it is logged (event `alert`), POSTed as
JSON to every webhook in the background, with a timeout, and appended as one JSON line to every
alert file (in a worker thread); delivery never blocks anything else.

With a fleet (`shared`: a `SharedKpis`, replicas with Redis), every replica judges the same merged
KPIs, and a transition is delivered only by the replica that moves the rule's fleet state (a
compare-and-set in Redis): one alert fires once, not once per replica. The others take the fleet's
state and its start. A claim that cannot be made (Redis away, the merged view stale) is delivered
anyway: a duplicate rather than a miss. Event metrics count this process's events and stay its own.

Rules on event metrics (`EVENT_METRICS`, e.g. `dead_letters`) count the events an `EventCounter`
holds in the rule's window instead of reading KPIs; `record_event` evaluates them at once, so an
event reaches the log and the webhooks without waiting for the next tick.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import hashlib
import operator
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from shipyard.config import EVENT_METRICS, AlertRule
from shipyard.observe._kpis import Kpis, Sample, compute_kpis
from shipyard.observe._logging import log_event
from shipyard.observe._loops import LoopSupervisor
from shipyard.store import append_private

if TYPE_CHECKING:
    import httpx

    from shipyard.observe._shared_kpis import SharedKpis

KpiSource = Callable[[AlertRule, float], Kpis]
"""Gives the KPIs a rule looks at: `(rule, now) -> Kpis` over the rule's window (and agent)."""

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
STATES = ("ok", "no_data", "warn", "alert")


def judge(rule: AlertRule, kpis: Kpis) -> tuple[str, float | None, float | None]:
    """The state a rule is in for these KPIs, with the value and the threshold it crossed."""
    return judge_value(rule, kpis.value(rule.metric), kpis.samples_for(rule.metric))


def judge_value(rule: AlertRule, value: float | None, samples: int) -> tuple[str, float | None, float | None]:
    """The state a rule is in for a value backed by `samples` data points (see `judge`)."""
    if value is None or samples < rule.min_samples:
        return ("no_data" if rule.no_data == "ok" else rule.no_data), value, None
    breached = _OPS[rule.op]
    if rule.alert is not None and breached(value, rule.alert):
        return "alert", value, rule.alert
    if rule.warn is not None and breached(value, rule.warn):
        return "warn", value, rule.warn
    return "ok", value, None


@dataclass(slots=True)
class AlertState:
    """Where one rule stands."""

    rule: AlertRule
    state: str = "no_data"
    since: float = field(default_factory=time.time)
    value: float | None = None
    threshold: float | None = None
    samples: int = 0
    evaluated_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        r = self.rule
        return {
            "name": r.name,
            "metric": r.metric,
            "agent": r.agent,
            "window_s": r.window_s,
            "comparator": r.op,
            "warn": r.warn,
            "alert": r.alert,
            "min_samples": r.min_samples,
            "state": self.state,
            "since": self.since,
            "value": self.value,
            "threshold": self.threshold,
            "samples": self.samples,
            "evaluated_at": self.evaluated_at,
        }


@dataclass(slots=True, frozen=True)
class Transition:
    """A rule changed state."""

    rule: str
    metric: str
    previous: str
    state: str
    value: float | None
    threshold: float | None
    samples: int
    window_s: float
    at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "metric": self.metric,
            "previous": self.previous,
            "state": self.state,
            "value": self.value,
            "threshold": self.threshold,
            "samples": self.samples,
            "window_s": self.window_s,
            "at": self.at,
        }


class EventCounter:
    """When events of one kind happened (e.g. dead letters), for rules that count them in a window.
    Thread-safe; keeps the newest `limit` times.

    Args:
        times: events that happened already (epoch seconds), e.g. read from the store.
        limit: how many times are kept.
    """

    def __init__(self, times: Iterable[float] = (), *, limit: int = 100_000) -> None:
        self._times: deque[float] = deque(sorted(times), maxlen=limit)
        self._lock = threading.Lock()

    def add(self, at: float | None = None) -> None:
        """One event, now or at `at`."""
        at = time.time() if at is None else at
        with self._lock:
            times = self._times
            if not times or at >= times[-1]:
                times.append(at)
                return
            # out of order (events read back newest first): put it in its place
            if len(times) == times.maxlen:
                if at <= times[0]:
                    return  # older than every time kept: the first to go
                times.popleft()
            bisect.insort(times, at)

    def count(self, since: float, until: float) -> int:
        """Events in [since, until)."""
        with self._lock:
            times = list(self._times)
        return bisect.bisect_left(times, until) - bisect.bisect_left(times, since)


def overall_status(states: Iterable[AlertState]) -> str:
    """HEALTHY (nothing firing), DEGRADED (a warning) or DOWN (an alert)."""
    found = {s.state for s in states}
    if "alert" in found:
        return "DOWN"
    return "DEGRADED" if "warn" in found else "HEALTHY"


def source_from_samples(samples: Sequence[Sample]) -> KpiSource:
    """A KpiSource over a fixed list of samples (e.g. read from the store by the CLI)."""

    def source(rule: AlertRule, now: float) -> Kpis:
        since = now - rule.window_s
        chosen = (s for s in samples if since <= s.at < now and (rule.agent is None or s.agent == rule.agent))
        return compute_kpis(chosen, rule.window_s)

    return source


class AlertEngine:
    """Evaluates rules against a KPI source and remembers each rule's state.

    Args:
        rules: the rules in force (`cfg.alerts.effective_rules()`).
        source: gives the KPIs of a rule's window.
        webhooks: URLs that receive each transition as a JSON POST.
        files: files each transition is appended to as one JSON line (the webhook's body), the
            folder made when missing.
        webhook_timeout_s: how long one delivery may take.
        project: the project name, sent with each transition.
        counters: the counter of each event metric (`{"dead_letters": EventCounter()}`); a rule on
            an event metric without one has no data.
    """

    def __init__(
        self,
        rules: Sequence[AlertRule],
        source: KpiSource,
        *,
        webhooks: Sequence[str] = (),
        files: Sequence[Path] = (),
        webhook_timeout_s: float = 5.0,
        project: str = "shipyard",
        counters: Mapping[str, EventCounter] | None = None,
    ) -> None:
        self.source = source
        self.counters = dict(counters or {})
        self._lock = threading.Lock()  # evaluations run in worker threads, one at a time
        self._judging: set[asyncio.Task[list[Transition]]] = set()
        self.webhooks = list(webhooks)
        self.files = list(files)
        self._file_lock = threading.Lock()
        self.webhook_timeout_s = webhook_timeout_s
        self.project = project
        self._states = {r.name: AlertState(rule=r) for r in rules}
        self._deliveries: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None
        # called with each transition as it is delivered (e.g. the incident watcher); must not wait
        self.listeners: list[Callable[[Transition], None]] = []
        self.shared: SharedKpis | None = None  # the fleet's KPIs: transitions are claimed there first

    def states(self) -> list[AlertState]:
        return list(self._states.values())

    def replace_rules(self, rules: Sequence[AlertRule]) -> None:
        """Put `rules` in force (a config reload). A rule whose definition did not change keeps its
        state (a firing alert neither fires again nor clears); a new or changed rule starts afresh."""
        with self._lock:
            old = self._states
            self._states = {
                r.name: old[r.name] if r.name in old and old[r.name].rule == r else AlertState(rule=r)
                for r in rules
            }

    def status(self) -> str:
        return overall_status(self._states.values())

    def evaluate(self, now: float | None = None, *, metrics: Iterable[str] | None = None) -> list[Transition]:
        """Evaluate every rule once (or only the rules on `metrics`); return the transitions (state
        changes) it caused."""
        now = time.time() if now is None else now
        only = None if metrics is None else set(metrics)
        out: list[Transition] = []
        with self._lock:
            for st in self._states.values():
                if only is not None and st.rule.metric not in only:
                    continue
                transition = self._evaluate_one(st, now)
                if transition is not None:
                    transition = self._claim(st, transition)
                if transition is not None:
                    out.append(transition)
        return out

    def _claim(self, st: AlertState, t: Transition) -> Transition | None:
        """The transition to deliver: as it is without a fleet; with one, only when this replica
        moved the rule's fleet state (its previous state is then the fleet's), else None."""
        shared = self.shared
        if shared is None or t.metric in EVENT_METRICS or not shared.fresh(t.at):
            return t
        digest = hashlib.blake2b(repr(st.rule).encode(), digest_size=6).hexdigest()
        try:
            changed, previous, since = shared.claim(t.rule, digest, t.state, t.at)
        except Exception as e:  # Redis away: deliver (a duplicate rather than a miss)
            log_event(
                "alert_claim_failed", level="warning", rule=t.rule, error=f"{type(e).__name__}: {e}"[:300]
            )
            return t
        if not changed:
            if since is not None:
                st.since = since
            return None
        return dataclasses.replace(t, previous=previous or "no_data")

    def _evaluate_one(self, st: AlertState, now: float) -> Transition | None:
        rule = st.rule
        if rule.metric in EVENT_METRICS:
            counter = self.counters.get(rule.metric)
            value = None if counter is None else float(counter.count(now - rule.window_s, now))
            samples = 0 if value is None else int(value)
        else:
            kpis = self.source(rule, now)
            value, samples = kpis.value(rule.metric), kpis.samples_for(rule.metric)
        state, value, threshold = judge_value(rule, value, samples)
        st.value, st.threshold, st.evaluated_at, st.samples = value, threshold, now, samples
        if state == st.state:
            return None
        transition = Transition(
            rule.name, rule.metric, st.state, state, value, threshold, samples, rule.window_s, now
        )
        st.state, st.since = state, now
        return transition

    def record_event(self, metric: str, at: float | None = None) -> asyncio.Task[list[Transition]] | None:
        """Count one event of an event metric. Called on the event loop, it also starts a task that
        judges the rules on that metric (in a worker thread, as ticks do) and delivers their
        transitions now, and returns it; from another thread it returns None (the next tick does).

        Args:
            metric: an event metric with a counter (e.g. `dead_letters`).
            at: when it happened (default: now).
        """
        counter = self.counters.get(metric)
        if counter is None:
            raise ValueError(f"no counter for event metric {metric!r}")
        counter.add(at)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None

        async def judge_now() -> list[Transition]:
            transitions = await asyncio.to_thread(self.evaluate, metrics=[metric])
            self.deliver(transitions)
            return transitions

        task = loop.create_task(judge_now())
        self._judging.add(task)
        task.add_done_callback(self._judging.discard)
        return task

    async def tick(self) -> list[Transition]:
        """Evaluate in a worker thread (KPI scans never hold up the event loop), then deliver."""
        transitions = await asyncio.to_thread(self.evaluate)
        self.deliver(transitions)
        return transitions

    def deliver(self, transitions: Sequence[Transition]) -> None:
        """Log each transition, POST it to the webhooks and append it to the files, in background
        tasks."""
        for t in transitions:
            level = "warning" if t.state in ("warn", "alert") else "info"
            log_event("alert", level=level, **t.to_dict())
            for listen in self.listeners:
                try:
                    listen(t)
                except Exception as e:  # a listener never stops delivery
                    log_event(
                        "alert_listener_failed",
                        level="error",
                        rule=t.rule,
                        error=f"{type(e).__name__}: {e}"[:300],
                    )
            for url in self.webhooks:
                self._background(self._post(url, t))
            for path in self.files:
                self._background(asyncio.to_thread(self._append, path, t))

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    def _append(self, path: Path, t: Transition) -> None:
        line = orjson.dumps({"project": self.project, **t.to_dict()}) + b"\n"
        try:
            with self._file_lock:  # one write each, in turn: lines never interleave
                append_private(path, line)  # 0600: alerts may name what the traffic did
        except OSError as e:
            log_event("alert_file_failed", level="warning", path=str(path), rule=t.rule, error=str(e))

    async def _post(self, url: str, t: Transition) -> None:
        import httpx  # on the first webhook: a server without one never loads it

        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.webhook_timeout_s)
        try:
            resp = await self._client.post(url, json={"project": self.project, **t.to_dict()})
            if resp.status_code >= 400:
                log_event(
                    "alert_webhook_failed",
                    level="warning",
                    url=url,
                    rule=t.rule,
                    error=f"HTTP {resp.status_code}",
                )
        except httpx.HTTPError as e:
            log_event(
                "alert_webhook_failed",
                level="warning",
                url=url,
                rule=t.rule,
                error=f"{type(e).__name__}: {e}",
            )

    async def run(self, interval_s: float, *, loops: LoopSupervisor | None = None) -> None:
        """Evaluate every `interval_s` seconds until cancelled. A failed evaluation (a bad rule or
        source) is reported to `loops` as loop `alert_evaluation` (logged with its traceback,
        counted, alerted when it keeps failing; default: logged only) and the loop goes on."""
        supervisor = loops or LoopSupervisor()
        while True:
            with supervisor.guard("alert_evaluation"):
                await self.tick()
            await asyncio.sleep(interval_s)

    async def aclose(self) -> None:
        """Wait briefly for event judgements and deliveries in flight, then close the HTTP client."""
        if self._judging:
            await asyncio.wait(self._judging, timeout=self.webhook_timeout_s)
        if self._deliveries:
            await asyncio.wait(self._deliveries, timeout=self.webhook_timeout_s)
        if self._client is not None:
            await self._client.aclose()
            self._client = None
