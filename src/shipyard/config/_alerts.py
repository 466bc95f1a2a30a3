"""Alert rules (`alerts:` in shipyard.yaml). Owned by the observability work.

    alerts:
      interval_s: 30
      webhooks: [https://hooks.example.com/shipyard]
      files: [.shipyard/alerts.jsonl]     # each state change appended as a JSON line
      rules:
        - {name: completion, metric: completion_rate, window: 15m, warn: 0.9, alert: 0.85}

Leaving `rules` out gives the defaults of a sane production setup (`default_alert_rules()`);
`rules: []` switches alerting off. Rules on events rather than KPIs (`EVENT_METRICS`: dead letters,
records the store refused; loop failures, background loops failing again and again) are always in
force unless alerting is off; a configured rule on the same metric replaces the built-in one
(`builtin_alert_rules()`).
"""

import functools
import re
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from shipyard.config._schema_base import StrictModel, empty_list

# KPI names a rule may watch, and which direction is bad ("<": low is bad, ">": high is bad).
ALERT_METRICS: dict[str, str] = {
    "completion_rate": "<",
    "error_rate": ">",
    "escalation_rate": ">",
    "p95_latency_s": ">",
    "avg_latency_s": ">",
    "cost_per_interaction": ">",
    "cost_per_session": ">",
    "safety_incidents": ">",
    "tool_error_rate": ">",
    "satisfaction": "<",
    "dead_letters": ">",
    "loop_failures": ">",
}
# Metrics counted from events (the server's counters) rather than computed from interactions: a
# rule on one counts the events in its window. `loop_failures`: a background loop (canary ticks,
# flag sync, alert evaluation, the journal mover, ...) failed several times in a row.
EVENT_METRICS = frozenset({"dead_letters", "loop_failures"})

_WINDOW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_window(value: str | float | int, *, allow_zero: bool = False) -> float:
    """A window like `15m`, `1h`, `90s`, `1d` or a number of seconds, in seconds. ValueError for
    anything else, and for a zero length unless `allow_zero` (a minimum that may be none)."""
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        m = _WINDOW.match(value)
        if not m:
            raise ValueError(f"window must look like 90s, 15m, 1h or 1d, got {value!r}")
        seconds = float(m.group(1)) * _UNIT_S[m.group(2) or "s"]
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise ValueError("window must be longer than 0 seconds")
    return seconds


class AlertRule(StrictModel):
    """One rule: watch a KPI over a time window and compare it with a warn and an alert threshold.

    `comparator` defaults to the bad direction of the metric (`<` for completion_rate and
    satisfaction, `>` otherwise). Below `min_samples` data points (interactions; tool calls for
    tool_error_rate; ratings for satisfaction) the rule is in state `no_data` unless `no_data` says
    that missing data is itself a `warn` or an `alert`.
    """

    name: str
    metric: str
    window: str | float = "15m"
    warn: float | None = None
    alert: float | None = None
    comparator: Literal["<", "<=", ">", ">="] | None = None
    min_samples: int = Field(20, ge=0)
    no_data: Literal["ok", "warn", "alert"] = "ok"
    agent: str | None = Field(None, description="only this agent's traffic (default: all agents)")

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, v: str) -> str:
        if v not in ALERT_METRICS:
            raise ValueError(f"unknown metric {v!r}; use one of {', '.join(ALERT_METRICS)}")
        return v

    @field_validator("window")
    @classmethod
    def _window_form(cls, v: str | float) -> str | float:
        parse_window(v)
        return v

    @model_validator(mode="after")
    def _thresholds(self) -> Self:
        if self.warn is None and self.alert is None:
            raise ValueError(f"rule {self.name!r} needs a warn or an alert threshold (or both)")
        return self

    @property
    def window_s(self) -> float:
        return parse_window(self.window)

    @property
    def op(self) -> str:
        """The comparator in force (explicit, else the metric's bad direction)."""
        return self.comparator or ALERT_METRICS[self.metric]


SAFETY_INCIDENTS_WARN = 3  # more than 3 in 15 minutes: DEGRADED
SAFETY_INCIDENTS_ALERT = 10  # more than 10 in 15 minutes: DOWN


@functools.cache
def default_alert_rules() -> tuple[AlertRule, ...]:
    """The rules in force when `rules` is left out. Made on first use, once: the first rule made builds
    AlertRule's own validator, which a command without alerting (`shipyard run`) has no use for."""
    return (
        AlertRule(name="task_completion", metric="completion_rate", window="15m", warn=0.9, alert=0.85),
        AlertRule(name="latency_p95", metric="p95_latency_s", window="15m", warn=4.0, alert=5.0),
        AlertRule(
            name="cost_per_interaction", metric="cost_per_interaction", window="1h", warn=0.08, alert=0.10
        ),
        AlertRule(name="escalations", metric="escalation_rate", window="1h", warn=0.15, alert=0.20),
        AlertRule(name="tool_errors", metric="tool_error_rate", window="15m", warn=0.03, alert=0.05),
        AlertRule(
            name="satisfaction", metric="satisfaction", window="24h", warn=4.2, alert=4.0, min_samples=10
        ),
    )


# In force whatever rules are configured (unless `rules: []`): a record the store refused is lost
# to every KPI and audit until someone retries it (`shipyard store dead-letters`). Safety incidents (a
# blocked request, a guardrail that blocked or escalated, a refused tool call) are counted, but one
# is a guardrail doing its job (a public agent blocks injection attempts all day): a burst warns,
# a larger one alerts (`SAFETY_INCIDENTS_WARN` / `_ALERT` in 15 minutes); a project with more
# traffic or less tolerance sets its own rule on `safety_incidents`, which replaces this one.
@functools.cache
def builtin_alert_rules() -> tuple[AlertRule, ...]:
    """The rules in force whatever rules are configured (see above), made on first use, once."""
    return (
        AlertRule(
            name="safety_incidents",
            metric="safety_incidents",
            window="15m",
            warn=SAFETY_INCIDENTS_WARN,
            alert=SAFETY_INCIDENTS_ALERT,
            min_samples=0,
        ),
        AlertRule(name="dead_letters", metric="dead_letters", window="1h", alert=0, min_samples=0),
        # a background loop that keeps failing (say, canary ticks: automatic rollbacks would stop)
        AlertRule(name="background_loops", metric="loop_failures", window="15m", alert=0, min_samples=0),
    )


class AlertsConfig(StrictModel):
    """`alerts:` the rules the server evaluates every `interval_s`, and where transitions go."""

    rules: list[AlertRule] | None = Field(
        None, description="default: default_alert_rules(); [] turns alerts off"
    )
    webhooks: list[str] = Field(
        default_factory=empty_list, description="URLs that receive each state change (POST)"
    )
    files: list[str] = Field(
        default_factory=empty_list,
        description="files (relative to the project) each state change is appended to as a JSON line, "
        "for a log shipper or a local on-call tool",
    )
    interval_s: float = Field(30.0, gt=0)
    webhook_timeout_s: float = Field(5.0, gt=0)

    @field_validator("webhooks")
    @classmethod
    def _urls(cls, v: list[str]) -> list[str]:
        for url in v:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"webhook {url!r} must be an http:// or https:// URL")
        return v

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        names = [r.name for r in self.rules or []]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"alert rule names must be unique; repeated: {', '.join(dupes)}")
        return self

    def effective_rules(self) -> list[AlertRule]:
        """The rules in force: the configured ones, else the defaults; plus each built-in rule whose
        metric (and name) no configured rule takes. `rules: []` is none at all."""
        if self.rules is not None and not self.rules:
            return []
        rules = list(default_alert_rules()) if self.rules is None else list(self.rules)
        taken = {r.metric for r in rules} | {r.name for r in rules}
        return rules + [r for r in builtin_alert_rules() if r.metric not in taken and r.name not in taken]
