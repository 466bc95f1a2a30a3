"""Prometheus metrics of served interactions, in a dedicated registry (served at `/metrics`).

Production KPIs exclude eval and shadow traffic (DESIGN.md §4): interactions whose traffic_source
is `eval` or `shadow` are counted only in `shipyard_offline_interactions_total{traffic_source}`,
never in the KPI metrics below. Every KPI metric is labelled by `agent` and `version`.

Reading the KPIs (PromQL):

    completion rate   sum(rate(shipyard_interactions_total{status="completed"}[5m]))
                        / sum(rate(shipyard_interactions_total[5m]))
    p95 latency       histogram_quantile(0.95, sum by (le) (rate(shipyard_interaction_duration_seconds_bucket[5m])))
    cost/interaction  rate(shipyard_interaction_cost_usd_sum[1h]) / rate(shipyard_interaction_cost_usd_count[1h])
    escalation rate   rate(shipyard_escalations_total[1h]) / rate(shipyard_interactions_total[1h])
    tool error rate   rate(shipyard_tool_errors_total[15m]) / rate(shipyard_tool_calls_total[15m])
    satisfaction      rate(shipyard_feedback_score_sum[1d]) / rate(shipyard_feedback_score_count[1d])

Cost (the cost ledger's figures, of every traffic source; no user or session labels):

    shipyard_cost_usd_total{agent, version, model, traffic_source, feature}        USD spent
    shipyard_tokens_total{agent, version, model, traffic_source, feature, type}    type: input |
        cached_input | cache_write_input (parts of input) | output | reasoning (part of output)
    shipyard_saved_usd_total{agent, version, traffic_source, feature, reason}      reason: cache | routing | ...

The OpenTelemetry GenAI metrics are exposed with Prometheus-legal names (dots become underscores,
the duration gets its unit suffix): `gen_ai_client_token_usage` (label `gen_ai_token_type` =
input | output) and `gen_ai_client_operation_duration_seconds`; their `gen_ai_request_model` is the
provider's model id sent (as on the spans), not the config key.

Model clients (process-wide, labelled by the model's config key and its endpoint `host:port`), fed
by `observe_llm_event`, which the server subscribes to the llm package's events:

    shipyard_llm_retries_total{model, endpoint, outcome}       outcome: http_5xx | http_429 | timeout | connect_error
    shipyard_llm_gave_up_total{model, endpoint, reason}        retries_exhausted | rate_limit_retries_exhausted
                                                               | retry_after_too_long | circuit_open | not_retryable
    shipyard_llm_fallbacks_total{model, fallback, reason}      reason: the failed model's error kind
    shipyard_llm_breaker_transitions_total{model, endpoint, from_state, to_state}
    shipyard_llm_breaker_state{model, endpoint}                0 closed, 1 half-open, 2 open

With `shipyard serve --workers N` every worker keeps its values in files of one folder
(prometheus_client's multiprocess mode, server/_worker_metrics.py) and `/metrics` of any worker shows
the sum over all of them, so a scrape is right whichever worker answers. Gauges say how workers
combine: `shipyard_llm_breaker_state` the most open breaker of the live workers (livemax).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import values as prom_values
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

from shipyard.observe import _semconv as sc
from shipyard.store import InteractionRecord, ledger_meta

OFFLINE_TRAFFIC = frozenset({"eval", "shadow"})
TOKEN_TYPES = (
    "input_tokens",
    "cached_input_tokens",
    "cache_write_input_tokens",
    "output_tokens",
    "reasoning_tokens",
)
MAX_FEATURE_LABELS = 200  # distinct `feature` label values of the cost metrics; more are "(other)"
UNKNOWN_TOOL = "(unknown)"  # the `tool` label of calls to tools that do not exist (status not_found)

# Agents take seconds, not milliseconds: buckets from 50 ms to 2 minutes, dense around the 5 s SLO.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 30.0, 60.0, 120.0)
COST_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
SCORE_BUCKETS = (1.0, 2.0, 3.0, 4.0, 5.0, 10.0)
# The OpenTelemetry GenAI semantic conventions' advised buckets.
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)

CONTENT_TYPE = CONTENT_TYPE_LATEST
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's multiprocess mode (`serve --workers N`)


BREAKER_STATE_VALUES = {"closed": 0.0, "half_open": 1.0, "open": 2.0}


class LLMEventLike(Protocol):
    """What `Metrics.observe_llm_event` reads of a `shipyard.llm.LLMEvent` (observe does not import llm)."""

    @property
    def kind(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def endpoint(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def target(self) -> str: ...


def _prom(name: str) -> str:
    return name.replace(".", "_")


INCIDENT_VERDICTS = frozenset({"block", "escalate"})
"""Guardrail verdicts that make an interaction a safety incident."""


def is_safety_incident(record: InteractionRecord) -> bool:
    """A blocked interaction, or any guardrail that blocked or escalated something (a refused tool
    call included)."""
    return record.status == "blocked" or any(g.get("verdict") in INCIDENT_VERDICTS for g in record.guardrails)


@dataclass(slots=True)
class _Children:
    """The labelled children of one (agent, version), looked up once (labels() is not free)."""

    latency: Any
    cost_hist: Any
    escalations: Any
    safety: Any
    by_status: dict[str, Any]
    tools: dict[tuple[str, str], Any]
    tool_errors: dict[str, Any]


class Metrics:
    """The metrics of one process.

    Args:
        registry: where they live (default: a new CollectorRegistry, so tests and several servers
            in one process never collide with each other or with the global registry).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        disable_created_metrics()  # the *_created series only add noise to every scrape
        self.registry = r = registry or CollectorRegistry(auto_describe=True)
        av = ("agent", "version")
        self.interactions = Counter(
            "shipyard_interactions", "Production interactions by final status.", [*av, "status"], registry=r
        )
        self.offline = Counter(
            "shipyard_offline_interactions",
            "Eval and shadow interactions (excluded from every production KPI).",
            ["agent", "traffic_source"],
            registry=r,
        )
        self.duration = Histogram(
            "shipyard_interaction_duration_seconds",
            "End-to-end interaction latency.",
            av,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.cost = Histogram(
            "shipyard_interaction_cost_usd",
            "Cost of one interaction in USD.",
            av,
            buckets=COST_BUCKETS,
            registry=r,
        )
        # the cost ledger's figures, every traffic source (money spent on evals is spent too)
        cost_labels = [*av, "model", "traffic_source", "feature"]
        self.cost_total = Counter(
            "shipyard_cost_usd",
            "Money spent on model calls in USD (the cost ledger).",
            cost_labels,
            registry=r,
        )
        self.tokens_total = Counter(
            "shipyard_tokens",
            "Model tokens by bucket: input, cached_input, cache_write_input (parts of input), output, "
            "reasoning (part of output).",
            [*cost_labels, "type"],
            registry=r,
        )
        self.saved_total = Counter(
            "shipyard_saved_usd",
            "Money not spent thanks to caches and routing, in USD.",
            [*av, "traffic_source", "feature", "reason"],
            registry=r,
        )
        self.escalations = Counter(
            "shipyard_escalations", "Interactions handed over to a human.", av, registry=r
        )
        self.safety = Counter(
            "shipyard_safety_incidents",
            "Interactions that were blocked or had a guardrail block or escalate something.",
            av,
            registry=r,
        )
        self.guardrail_verdicts = Counter(
            "shipyard_guardrail_verdicts",
            "Guardrail checks that acted (block, redact, escalate), by guardrail, stage and verdict.",
            [*av, "guardrail", "stage", "verdict"],
            registry=r,
        )
        self.tool_calls = Counter(
            "shipyard_tool_calls",
            "Tool calls by tool and result status.",
            [*av, "tool", "status"],
            registry=r,
        )
        self.tool_errors = Counter(
            "shipyard_tool_errors", "Tool calls that did not succeed.", [*av, "tool"], registry=r
        )
        self.feedback = Counter("shipyard_feedback", "User thumbs up / down.", [*av, "thumbs"], registry=r)
        self.score = Histogram(
            "shipyard_feedback_score",
            "User satisfaction scores (e.g. CSAT 1-5).",
            av,
            buckets=SCORE_BUCKETS,
            registry=r,
        )
        gen_ai = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "agent", "version")
        self.token_usage = Histogram(
            _prom(sc.METRIC_TOKEN_USAGE),
            "Tokens used per model call (GenAI semantic conventions).",
            [*gen_ai, _prom(sc.TOKEN_TYPE)],
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        self.operation_duration = Histogram(
            _prom(sc.METRIC_OPERATION_DURATION),
            "Duration of model calls (GenAI semantic conventions).",
            [*gen_ai, "error_type"],
            buckets=DURATION_BUCKETS,
            unit="seconds",
            registry=r,
        )
        me = ("model", "endpoint")
        self.llm_retries = Counter(
            "shipyard_llm_retries",
            "Model call attempts that failed and were retried, by outcome.",
            [*me, "outcome"],
            registry=r,
        )
        self.llm_gave_up = Counter(
            "shipyard_llm_gave_up",
            "Model calls a model stopped trying (the call failed, or the next fallback was asked), by reason.",
            [*me, "reason"],
            registry=r,
        )
        self.llm_fallbacks = Counter(
            "shipyard_llm_fallbacks",
            "Calls handed from a failed model to the next of its fallback chain.",
            ["model", "fallback", "reason"],
            registry=r,
        )
        self.breaker_transitions = Counter(
            "shipyard_llm_breaker_transitions",
            "Circuit breaker state changes.",
            [*me, "from_state", "to_state"],
            registry=r,
        )
        self.breaker_state = Gauge(
            "shipyard_llm_breaker_state",
            "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
            me,
            registry=r,
            multiprocess_mode="livemax",  # --workers N: each worker has its breakers; the most open
        )
        self.dead_letters = Counter(
            "shipyard_dead_letters",
            "Records the store refused, kept aside as dead letters (see `shipyard store dead-letters`).",
            ["kind", "error_type"],
            registry=r,
        )
        self.loop_failures = Counter(
            "shipyard_background_loop_failures",
            "Failed passes of background loops (canary ticks, flag sync, alerts, journal mover, ...).",
            ["loop"],
            registry=r,
        )
        self._children: dict[tuple[str, str], _Children] = {}
        self._llm: dict[tuple[str, ...], tuple[Any, Any, Any]] = {}
        self._cost: dict[tuple[str, ...], tuple[Any, ...]] = {}
        self._saved: dict[tuple[str, ...], Any] = {}
        self._features: set[str] = set()

    def _for(self, agent: str, version: str) -> _Children:
        key = (agent, version)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = _Children(
                latency=self.duration.labels(agent, version),
                cost_hist=self.cost.labels(agent, version),
                escalations=self.escalations.labels(agent, version),
                safety=self.safety.labels(agent, version),
                by_status={},
                tools={},
                tool_errors={},
            )
        return found

    def observe_interaction(self, record: InteractionRecord) -> None:
        """Count one finished interaction (eval and shadow traffic only in the offline counter)."""
        agent, version = record.agent, record.version
        self.observe_cost(record)
        if record.traffic_source in OFFLINE_TRAFFIC:
            self.offline.labels(agent, record.traffic_source).inc()
            return
        ch = self._for(agent, version)
        status = ch.by_status.get(record.status)
        if status is None:
            status = ch.by_status[record.status] = self.interactions.labels(agent, version, record.status)
        status.inc()
        ch.latency.observe(record.latency_ms / 1000)
        ch.cost_hist.observe(record.cost_usd)
        if record.status == "escalated":
            ch.escalations.inc()
        if is_safety_incident(record):
            ch.safety.inc()
        for g in record.guardrails:
            self.guardrail_verdicts.labels(
                agent, version, str(g.get("name")), str(g.get("stage")), str(g.get("verdict"))
            ).inc()
        for t in record.tool_calls:
            # a name the model made up is not a label value: it would be a new series per name
            name = UNKNOWN_TOOL if t.status == "not_found" else t.name
            key = (name, t.status)
            counter = ch.tools.get(key)
            if counter is None:
                counter = ch.tools[key] = self.tool_calls.labels(agent, version, name, t.status)
            counter.inc()
            if t.status != "success":
                err = ch.tool_errors.get(name)
                if err is None:
                    err = ch.tool_errors[name] = self.tool_errors.labels(agent, version, name)
                err.inc()
        for c in record.llm_calls:
            requested = c.request_model or c.model  # the provider's model id, as on the spans
            key2 = (c.provider, requested, agent, version, c.status)
            found = self._llm.get(key2)
            if found is None:
                base = (sc.OP_CHAT, c.provider, requested, agent, version)
                found = self._llm[key2] = (
                    self.token_usage.labels(*base, "input"),
                    self.token_usage.labels(*base, "output"),
                    self.operation_duration.labels(*base, "" if c.status == "ok" else "error"),
                )
            found[0].observe(c.input_tokens)
            found[1].observe(c.output_tokens)
            found[2].observe(c.duration_ms / 1000)

    def observe_cost(self, record: InteractionRecord) -> None:
        """Count an interaction as the cost ledger does (`shipyard.store.ledger_rows`, every traffic
        source): USD and tokens per model call (usage the agent reported itself under model ""),
        savings per reason. `feature` is the interaction's features joined by commas ("" when
        untagged), so the series of one call add up to it once; past MAX_FEATURE_LABELS distinct
        values a new one is counted as "(other)"."""
        features, _, savings = ledger_meta(record)
        feature = self._feature_label(",".join(features))
        agent, version, source = record.agent, record.version, record.traffic_source
        spent_usd = 0.0
        spent_in = spent_cached = spent_out = 0
        for c in record.llm_calls:
            spent_usd += c.cost_usd
            spent_in += c.input_tokens
            spent_cached += c.cached_input_tokens
            spent_out += c.output_tokens
            self._count(
                (agent, version, c.model, source, feature),
                c.cost_usd,
                (
                    c.input_tokens,
                    c.cached_input_tokens,
                    c.cache_write_input_tokens,
                    c.output_tokens,
                    c.reasoning_tokens,
                ),
            )
        rest = (
            max(record.input_tokens - spent_in, 0),
            max(record.cached_input_tokens - spent_cached, 0),
            0,
            max(record.output_tokens - spent_out, 0),
            0,
        )
        rest_usd = record.cost_usd - spent_usd
        if rest_usd > 1e-12 or rest[0] or rest[3]:
            self._count((agent, version, "", source, feature), max(rest_usd, 0.0), rest)
        for reason, usd in savings.items():
            key = (agent, version, source, feature, reason)
            saved = self._saved.get(key)
            if saved is None:
                saved = self._saved[key] = self.saved_total.labels(*key)
            saved.inc(usd)

    def _count(self, labels: tuple[str, ...], usd: float, tokens: tuple[int, ...]) -> None:
        found = self._cost.get(labels)
        if found is None:
            found = self._cost[labels] = (
                self.cost_total.labels(*labels),
                *(self.tokens_total.labels(*labels, t.removesuffix("_tokens")) for t in TOKEN_TYPES),
            )
        if usd > 0:
            found[0].inc(usd)
        for counter, n in zip(found[1:], tokens, strict=True):
            if n:
                counter.inc(n)

    def _feature_label(self, label: str) -> str:
        if label and label not in self._features:
            if len(self._features) >= MAX_FEATURE_LABELS:
                return "(other)"
            self._features.add(label)
        return label

    def observe_llm_event(self, event: LLMEventLike) -> None:
        """Count one model-client event (a `shipyard.llm.LLMEvent`; subscribe this method with
        `shipyard.llm.add_listener`). Unknown kinds are ignored."""
        kind = event.kind
        if kind == "retry":
            self.llm_retries.labels(event.model, event.endpoint, event.reason).inc()
        elif kind == "give_up":
            self.llm_gave_up.labels(event.model, event.endpoint, event.reason).inc()
        elif kind == "fallback":
            self.llm_fallbacks.labels(event.model, event.target, event.reason).inc()
        elif kind == "breaker":
            self.breaker_transitions.labels(event.model, event.endpoint, event.reason, event.target).inc()
            self.breaker_state.labels(event.model, event.endpoint).set(
                BREAKER_STATE_VALUES.get(event.target, 0.0)
            )

    def observe_dead_letter(self, kind: str, error_type: str) -> None:
        """Count one record the store refused (`kind`: interaction; `error_type`: e.g. DataError)."""
        self.dead_letters.labels(kind, error_type).inc()

    def observe_feedback(
        self, record: InteractionRecord, thumbs: int | None = None, score: float | None = None
    ) -> None:
        """Count one piece of user feedback on a production interaction."""
        if record.traffic_source in OFFLINE_TRAFFIC:
            return
        if thumbs is not None:
            self.feedback.labels(record.agent, record.version, "up" if thumbs > 0 else "down").inc()
        if score is not None:
            self.score.labels(record.agent, record.version).observe(score)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric. Under `shipyard serve --workers N` (values
        kept in files in $PROMETHEUS_MULTIPROC_DIR, set before the workers start) it is the whole
        server's: every worker's counters and histograms summed, gauges by their multiprocess mode."""
        folder = os.environ.get(MULTIPROC_ENV)
        if folder and prom_values.ValueClass is not prom_values.MutexValue:
            merged = CollectorRegistry()
            MultiProcessCollector(merged, path=folder)
            return generate_latest(merged)
        return generate_latest(self.registry)

    def observe_loop_failure(self, loop: str) -> None:
        """Count one failed pass of background loop `loop` (see `shipyard.observe.LoopSupervisor`)."""
        self.loop_failures.labels(loop).inc()
