"""Alert rules evaluated over KPI windows: state per rule, transitions to the log and to webhooks.

Each rule is in one state: `ok`, `warn`, `alert`, or `no_data` (fewer than `min_samples` data
points, when the rule's `no_data` is `ok`; with `no_data: warn|alert` missing data takes that
state instead). A change of state is a transition: it is logged (event `alert`) and POSTed as
JSON to every webhook in the background, with a timeout; delivery never blocks anything else.
"""

from __future__ import annotations

import asyncio
import operator
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from shipyard.config import AlertRule
from shipyard.observe._kpis import Kpis, Sample, compute_kpis
from shipyard.observe._logging import log_event

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
    value = kpis.value(rule.metric)
    if value is None or kpis.samples_for(rule.metric) < rule.min_samples:
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
        webhook_timeout_s: how long one delivery may take.
        project: the project name, sent with each transition.
    """

    def __init__(
        self,
        rules: Sequence[AlertRule],
        source: KpiSource,
        *,
        webhooks: Sequence[str] = (),
        webhook_timeout_s: float = 5.0,
        project: str = "shipyard",
    ) -> None:
        self.source = source
        self.webhooks = list(webhooks)
        self.webhook_timeout_s = webhook_timeout_s
        self.project = project
        self._states = {r.name: AlertState(rule=r) for r in rules}
        self._deliveries: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None

    def states(self) -> list[AlertState]:
        return list(self._states.values())

    def status(self) -> str:
        return overall_status(self._states.values())

    def evaluate(self, now: float | None = None) -> list[Transition]:
        """Evaluate every rule once; return the transitions (state changes) it caused."""
        now = time.time() if now is None else now
        out: list[Transition] = []
        for st in self._states.values():
            kpis = self.source(st.rule, now)
            state, value, threshold = judge(st.rule, kpis)
            st.value, st.threshold, st.evaluated_at = value, threshold, now
            st.samples = kpis.samples_for(st.rule.metric)
            if state != st.state:
                out.append(
                    Transition(
                        st.rule.name,
                        st.rule.metric,
                        st.state,
                        state,
                        value,
                        threshold,
                        st.samples,
                        st.rule.window_s,
                        now,
                    )
                )
                st.state, st.since = state, now
        return out

    async def tick(self) -> list[Transition]:
        """Evaluate in a worker thread (KPI scans never hold up the event loop), then deliver."""
        transitions = await asyncio.to_thread(self.evaluate)
        self.deliver(transitions)
        return transitions

    def deliver(self, transitions: Sequence[Transition]) -> None:
        """Log each transition and POST it to the webhooks in background tasks."""
        for t in transitions:
            level = "warning" if t.state in ("warn", "alert") else "info"
            log_event("alert", level=level, **t.to_dict())
            for url in self.webhooks:
                task = asyncio.get_running_loop().create_task(self._post(url, t))
                self._deliveries.add(task)
                task.add_done_callback(self._deliveries.discard)

    async def _post(self, url: str, t: Transition) -> None:
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

    async def run(self, interval_s: float) -> None:
        """Evaluate every `interval_s` seconds until cancelled."""
        while True:
            try:
                await self.tick()
            except Exception as e:  # a bad rule or source must not stop the loop
                log_event("alert_evaluation_failed", level="error", error=f"{type(e).__name__}: {e}")
            await asyncio.sleep(interval_s)

    async def aclose(self) -> None:
        """Wait briefly for deliveries in flight, then close the HTTP client."""
        if self._deliveries:
            await asyncio.wait(self._deliveries, timeout=self.webhook_timeout_s)
        if self._client is not None:
            await self._client.aclose()
            self._client = None
