"""Model routing (`routing:` in shipyard.yaml): which model tier answers each model call.

routing:
  enabled: true                     # off: every agent calls its own `model:` exactly as configured
  agents: [support]                 # the agents whose model calls are routed
  tiers: {small: gpt-mini, large: gpt-large}   # default: each tier's model by its `tier:`
  reference: large                  # savings are measured against this tier
  router: learned                   # rules (out of the box) | learned (`shipyard routing fit`)
  rules:                            # first match wins, before the router scores the request
    - {when: {pattern: '(?i)lawyer|chargeback'}, tier: large}
  steps: {classify_intent: small}   # a named step always runs on this tier
  escalation: {min_confidence: 0.2, on_tool_error: true, on_guardrail_escalation: true}
  sessions: {backend: redis, ttl_s: 86400}   # where a session's tier is kept (memory | redis)

A session keeps the tier its first call was routed to (so provider prompt caches stay warm) and
only moves up: a low-confidence decision, a failed tool call, a guardrail escalation, a harder new
user turn or (`escalation.min_answer_logprob`) an answer the model was unsure of raises it."""

import re
from typing import TYPE_CHECKING, Literal, Self

from pydantic import Field, field_validator, model_validator

from shipyard.config._schema_base import StrictModel, empty_list, section

if TYPE_CHECKING:
    from shipyard.config._schema import ShipyardConfig

Tier = Literal["small", "medium", "large"]
TIERS: tuple[str, ...] = ("small", "medium", "large")
"""The tiers, cheapest first."""


class RuleCondition(StrictModel):
    """What a routing rule looks at; every condition given must hold (at least one is needed)."""

    pattern: str | None = Field(None, description="regex searched in the last user message")
    step: list[str] = Field(
        default_factory=empty_list, description="the agent's step names (`step=` of ctx.llm.chat)"
    )
    min_words: int | None = Field(
        None, ge=0, description="the last user message has at least this many words"
    )
    max_words: int | None = Field(None, ge=0, description="... at most this many words")
    min_turns: int | None = Field(None, ge=0, description="at least this many earlier user turns")

    @field_validator("pattern")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as e:
                raise ValueError(f"not a valid regular expression ({e}): {v!r}") from None
        return v

    @field_validator("step", mode="before")
    @classmethod
    def _one_or_many(cls, v: object) -> object:
        return [v] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _something(self) -> Self:
        if not self.model_fields_set:
            raise ValueError(
                "a rule needs at least one condition (pattern, step, min_words, max_words, min_turns)"
            )
        return self


class RoutingRule(StrictModel):
    """A request matching `when` goes to `tier` (the first matching rule wins)."""

    when: RuleCondition
    tier: Tier


class ScorerConfig(StrictModel):
    """The out-of-the-box feature scorer (`router: rules`): a difficulty score in 0..1 from the
    request's length, its questions and clauses, numbers, negations and earlier turns; the
    request goes to the cheapest tier whose threshold the score is under."""

    thresholds: list[float] = Field(
        default_factory=lambda: [0.35, 0.65],
        description="score cut-offs between consecutive tiers, ascending (one fewer than the tiers)",
    )

    @field_validator("thresholds")
    @classmethod
    def _ascending(cls, v: list[float]) -> list[float]:
        if any(not 0 < t < 1 for t in v) or v != sorted(v):
            raise ValueError("thresholds must be ascending numbers between 0 and 1")
        return v


class LearnedConfig(StrictModel):
    """The learned router (`router: learned`), fitted by `shipyard routing fit` on the project's
    eval results and kept in the project."""

    file: str = Field(
        "routing/{agent}.json", description="where the fitted router is kept ({agent}: its name)"
    )
    max_pass_rate_loss: float = Field(
        0.01, ge=0, le=1, description="most pass-rate loss against the reference tier (0.01: one point)"
    )


class EscalationConfig(StrictModel):
    """When a session moves up a tier (it never moves down)."""

    min_confidence: float = Field(
        0.2, ge=0, le=1, description="a routing decision less confident than this takes the next tier up"
    )
    on_tool_error: bool = Field(True, description="a failed tool call moves the session up a tier")
    on_guardrail_escalation: bool = Field(True, description="a tool guardrail that escalates moves it up")
    min_answer_logprob: float | None = Field(
        None,
        le=0,
        description="a routed answer whose mean token log-probability is under this moves the session up "
        "for its next calls (needs models that return logprobs, e.g. `logprobs: true` on an openai model)",
    )


class SessionsConfig(StrictModel):
    """Where a session's tier is kept: `memory` (one process) or `redis` (shared by replicas)."""

    backend: Literal["memory", "redis"] = "memory"
    redis_url: str | None = Field(None, description="default: $SHIPYARD_REDIS_URL")
    key_prefix: str = Field("shipyard:routing:", min_length=1)
    ttl_s: float = Field(86_400.0, gt=0, description="a session idle this long starts afresh")


class RoutingConfig(StrictModel):
    """`routing:`: send each model call of the routed agents to a model tier."""

    enabled: bool = Field(
        False, description="route the agents' model calls (off: `shipyard routing evaluate` only)"
    )
    agents: list[str] = Field(
        default_factory=empty_list, description="the agents whose model calls are routed"
    )
    tiers: dict[Tier, str] = Field(
        default_factory=dict,
        description="tier -> model key, the tiers routed between; default: each tier's model by its `tier:`",
    )
    reference: Tier = Field("large", description="the tier savings and pass-rate loss are measured against")
    router: Literal["rules", "learned"] = "rules"
    rules: list[RoutingRule] = Field(default_factory=empty_list)
    steps: dict[str, Tier] = Field(
        default_factory=dict, description="step name -> the tier it always runs on"
    )
    scorer: ScorerConfig = section()
    learned: LearnedConfig = section()
    escalation: EscalationConfig = section()
    sessions: SessionsConfig = section()

    def tier_models(self, cfg: "ShipyardConfig") -> dict[str, str]:
        """tier -> model key, cheapest tier first (only the tiers that have a model): `tiers` when
        given (all of them), else each tier's model by its `tier:`."""
        found: dict[str, str] = {str(t): k for t, k in self.tiers.items()}
        for tier in TIERS if not found else ():
            keys = sorted(k for k, m in cfg.models.items() if m.tier == tier)
            if len(keys) == 1:
                found[tier] = keys[0]
        return {t: found[t] for t in TIERS if t in found}


def routing_problems(cfg: "ShipyardConfig") -> list[str]:
    """What is wrong with `routing:` given the rest of the file (models, agents); empty: fine."""
    r = cfg.routing
    if "routing" not in cfg.model_fields_set:
        return []
    problems: list[str] = []
    known = ", ".join(sorted(cfg.models)) or "none"
    for named, key in r.tiers.items():
        m = cfg.models.get(key)
        if m is None:
            problems.append(
                f"routing.tiers.{named} names model {key!r}, not defined under models (known: {known})"
            )
        elif m.tier != named:
            problems.append(
                f"routing.tiers.{named} names model {key!r}, whose tier is {m.tier}: set "
                f"models.{key}.tier: {named}, or name a {named} model"
            )
    for tier in TIERS if not r.tiers else ():
        keys = sorted(k for k, m in cfg.models.items() if m.tier == tier)
        if len(keys) > 1:
            problems.append(
                f"routing: models {', '.join(keys)} all have tier {tier}; name the one to route to "
                f"under routing.tiers.{tier}"
            )
    tiers = r.tier_models(cfg) if not problems else {}
    if not problems and len(tiers) < 2:
        problems.append(
            "routing needs models of at least two tiers (models.<key>.tier: small | medium | large, or "
            f"routing.tiers); found {', '.join(f'{t}: {k}' for t, k in tiers.items()) or 'none'}"
        )
    if not problems and r.reference not in tiers:
        problems.append(
            f"routing.reference is {r.reference!r} but no model has that tier (tiers: {', '.join(tiers)})"
        )
    names = [*(rule.tier for rule in r.rules), *r.steps.values()]
    for tier in sorted(set(names) - set(tiers)) if tiers else ():
        problems.append(
            f"routing sends requests to tier {tier!r}, which has no model (tiers: {', '.join(tiers)})"
        )
    if tiers and len(r.scorer.thresholds) != len(tiers) - 1 and "thresholds" in r.scorer.model_fields_set:
        problems.append(
            f"routing.scorer.thresholds needs {len(tiers) - 1} cut-off(s) for {len(tiers)} tiers, "
            f"got {len(r.scorer.thresholds)}"
        )
    for agent in r.agents:
        if agent not in cfg.agents:
            problems.append(
                f"routing.agents names agent {agent!r}, not defined under agents "
                f"(known: {', '.join(sorted(cfg.agents)) or 'none'})"
            )
    if r.escalation.min_answer_logprob is not None and tiers:
        without = [k for k in tiers.values() if not getattr(cfg.models[k].settings, "logprobs", False)]
        if len(without) == len(tiers):
            problems.append(
                "routing.escalation.min_answer_logprob needs token log-probabilities, and no tier's model "
                f"asks for them: set logprobs: true on models {', '.join(without)} (an openai model)"
            )
    if r.enabled and not r.agents:
        problems.append("routing.enabled is true but routing.agents names no agent; list the agents to route")
    return problems


__all__ = [
    "TIERS",
    "EscalationConfig",
    "LearnedConfig",
    "RoutingConfig",
    "RoutingRule",
    "RuleCondition",
    "ScorerConfig",
    "SessionsConfig",
    "Tier",
    "routing_problems",
]
