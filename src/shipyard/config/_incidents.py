"""Incidents: what production shows becomes eval cases (`incidents:` in shipyard.yaml).

```yaml
incidents:
  sources: [alert, guardrail, tool_policy, error, feedback, escalation, complaint]
  low_csat: 2                       # a feedback score at or below this is an incident
  similarity: 0.5                   # inputs sharing this share of words group onto one incident
  regression_suite: evals/{agent}/regression.yaml
  gate_stages: [production]
  rules:
    - name: failed-refunds
      agent: support
      when: {status: [failed, escalated], tags: [refund]}
      sample: 0.2
      action: candidate             # candidate | review | webhook
    - name: expensive
      when: {cost_outlier: 3}       # more than 3x the agent's median cost
      action: webhook
      webhook: https://hooks.example.com/shipyard
```

Sources watch new traffic without any rule; rules pick interactions the sources would not (a cost
outlier, a tag) or turn them into candidates at once, and can be applied to stored traffic too
(`shipyard incidents rules backfill`).
"""

from pathlib import Path
from typing import TYPE_CHECKING, Literal, Self, get_args

from pydantic import ConfigDict, Field, field_validator, model_validator

from shipyard.config._schema_base import StrictModel, empty_list, section
from shipyard.types import InteractionStatus

if TYPE_CHECKING:
    from shipyard.config._schema import ShipyardConfig

IncidentSource = Literal["alert", "guardrail", "tool_policy", "error", "feedback", "escalation", "complaint"]
INCIDENT_SOURCES: tuple[str, ...] = (
    "alert",
    "guardrail",
    "tool_policy",
    "error",
    "feedback",
    "escalation",
    "complaint",
)
RuleAction = Literal["candidate", "review", "webhook"]
WatchedTraffic = Literal["production", "canary", "replay"]
GateStage = Literal["pre-merge", "post-merge", "production"]


def _default_traffic() -> list[WatchedTraffic]:
    return ["production", "canary"]


def _default_stages() -> list[GateStage]:
    return ["production"]


_VERDICTS = ("block", "redact", "escalate")


class RuleFilter(StrictModel):
    """Which interactions a rule matches: every condition given must hold (none given: every one)."""

    model_config = ConfigDict(use_enum_values=True)  # statuses are kept as the plain strings records hold

    status: list[InteractionStatus] = Field(
        default_factory=empty_list, description="any of these statuses (every status a record can have)"
    )
    feedback: Literal["negative", "positive", "any"] | None = Field(
        None, description="negative: thumbs down or a score at or below low_csat"
    )
    guardrail: list[Literal["block", "redact", "escalate"]] = Field(
        default_factory=empty_list, description="a guardrail gave one of these verdicts"
    )
    cost_over_usd: float | None = Field(None, ge=0, description="cost above this")
    latency_over_ms: float | None = Field(None, ge=0, description="latency above this")
    cost_outlier: float | None = Field(
        None, gt=1, description="cost above this many times the agent's median (over its recent traffic)"
    )
    latency_outlier: float | None = Field(
        None, gt=1, description="latency above this many times the agent's median"
    )
    tags: list[str] = Field(
        default_factory=empty_list, description="all of these in the request's metadata.tags"
    )


class IncidentRule(StrictModel):
    """Turns matching interactions into incidents: a filter, a sampling rate and an action."""

    name: str = Field(..., min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    agent: str | None = Field(None, description="only this agent (default: every agent)")
    when: RuleFilter = section()
    sample: float = Field(1.0, gt=0, le=1, description="share of matching interactions taken (by id: stable)")
    action: RuleAction = Field("candidate", description="candidate | review | webhook")
    webhook: str | None = Field(None, description="URL that receives each new incident (action webhook)")

    @model_validator(mode="after")
    def _webhook_needs_url(self) -> Self:
        if self.action == "webhook" and not self.webhook:
            raise ValueError(f"rule {self.name!r}: action webhook needs `webhook: <url>`")
        if self.webhook and self.action != "webhook":
            raise ValueError(f"rule {self.name!r}: `webhook` is only used by action webhook; remove it")
        if self.webhook and not self.webhook.startswith(("http://", "https://")):
            raise ValueError(f"rule {self.name!r}: webhook must be an http(s) URL, got {self.webhook!r}")
        return self


class IncidentsConfig(StrictModel):
    """`incidents:`: where incidents come from, how they group, the rules, and the regression suite."""

    enabled: bool = Field(True, description="watch new traffic (the server and `shipyard run`)")
    sources: list[IncidentSource] = Field(
        default_factory=lambda: list(get_args(IncidentSource)), description="what makes an incident by itself"
    )
    traffic: list[WatchedTraffic] = Field(
        default_factory=_default_traffic, description="traffic sources watched"
    )
    low_csat: float = Field(2.0, description="a feedback score at or below this is an incident")
    similarity: float = Field(0.5, gt=0, le=1, description="least share of shared words to group inputs")
    regression_suite: str = Field(
        "evals/{agent}/regression.yaml", description="where `incidents promote` writes cases by default"
    )
    gate_stages: list[GateStage] = Field(
        default_factory=_default_stages,
        description="configured gate stages that run the regression suite (once it exists); its cases "
        "fix tool answers, so they run in process (not through post-merge's staging server)",
    )
    rules: list[IncidentRule] = Field(default_factory=empty_list)
    queue_size: int = Field(
        10_000, ge=1, description="records waiting to be looked at; beyond: counted, skipped"
    )

    @field_validator("rules")
    @classmethod
    def _unique_names(cls, rules: list[IncidentRule]) -> list[IncidentRule]:
        names = [r.name for r in rules]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"rule names must be unique: {', '.join(dup)}")
        return rules

    @field_validator("regression_suite")
    @classmethod
    def _template(cls, v: str) -> str:
        try:
            v.format(agent="a")
        except (KeyError, IndexError, ValueError):
            raise ValueError(
                "regression_suite may use only {agent}, e.g. evals/{agent}/regression.yaml"
            ) from None
        return v

    def suite_for(self, agent: str) -> str:
        """The regression suite path of an agent (relative to shipyard.yaml)."""
        return self.regression_suite.format(agent=agent)


def include_regression_suites(cfg: "ShipyardConfig") -> None:
    """Put each agent's regression suite (when the file exists: cases were promoted into it) in the
    suites of the gate stages `incidents.gate_stages` names, so the gates run it without anyone
    listing it. Called once the config knows its folder."""
    stages = cfg.gates.stages()
    for agent in cfg.agents:
        rel = cfg.incidents.suite_for(agent)
        path = Path(rel) if Path(rel).is_absolute() else cfg.root / rel
        if not path.is_file():
            continue
        for name in cfg.incidents.gate_stages:
            policy = stages.get(name)
            if policy is None:
                continue
            listed = {str(cfg.resolve(s).resolve()) for s in policy.suites}
            if str(path.resolve()) not in listed:
                policy.suites.append(rel)
