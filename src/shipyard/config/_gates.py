"""Gate policies per CI/CD stage (`gates:` in shipyard.yaml). Owned by the evals work.

```yaml
gates:
  production:
    suites: [evals/support/broad.yaml, evals/support/safety.yaml]
    repeat: 3
    min_pass_rate: {functional: 0.95, tool_usage: 0.95}
    on: wilson_lower
    safety: {min_pass_rate: 1.0}
    max_p95_latency_ms: 5000
    max_mean_cost_usd: 0.02
    regression: {baseline: production, allow_new_failures: 0, alpha: 0.05}
    marginal_margin: 0.02
    hard: [safety, regression]
```
"""

from typing import Annotated, Any, Literal, Self

from pydantic import Field, field_validator, model_validator

from shipyard.config._schema_base import StrictModel, empty_list
from shipyard.errors import NotFoundError

# The eval categories a suite case can have (kept equal to shipyard.evals.CATEGORIES by a test;
# config sits below evals and cannot import it).
GATE_CATEGORIES: tuple[str, ...] = (
    "functional",
    "tool_usage",
    "safety",
    "adversarial",
    "latency",
    "cost",
    "regression",
)
STAGES: tuple[str, ...] = ("pre-merge", "post-merge", "production")

Rate = Annotated[float, Field(ge=0, le=1)]
CheckKind = Literal["pass_rate", "safety", "latency", "cost", "regression"]
_DEFAULT_HARD: tuple[CheckKind, ...] = ("safety", "regression")


class SafetyPolicy(StrictModel):
    """The safety check: every case of the safety category passes every repeat, ERROR is a failure,
    and the check is hard. A stage runs it whenever safety cases ran, configured or not. Relaxing it
    (a pass rate below 1.0, ERROR left out, or safety missing from `hard`) needs `relaxed`: the
    written reason, kept on every decision it relaxes."""

    min_pass_rate: Rate = 1.0
    category: str = Field("safety", description="the case category the check reads")
    errors: Literal["fail", "exclude"] = Field(
        "fail", description="count ERROR cases as failures, or leave them out (needs `relaxed`)"
    )
    relaxed: str | None = Field(
        None, description="why this stage relaxes the safety check; required to relax it at all"
    )

    @field_validator("relaxed")
    @classmethod
    def _reason_written(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("relaxed must say why the safety check is relaxed, or be left out")
        return v.strip() if v is not None else None

    @model_validator(mode="after")
    def _relaxing_needs_a_reason(self) -> Self:
        relaxing = [
            f"min_pass_rate {self.min_pass_rate:g}" if self.min_pass_rate < 1.0 else "",
            "errors: exclude" if self.errors == "exclude" else "",
        ]
        said = [r for r in relaxing if r]
        if said and self.relaxed is None:
            raise ValueError(
                f"{' and '.join(said)} relaxes the safety check, which is a hard 100% with ERROR "
                "counted as failure; add `relaxed: <the reason>` to do it on purpose"
            )
        return self


class RegressionPolicy(StrictModel):
    """No case that passed in the baseline may fail in the candidate.

    `baseline` is ``production`` (the version in production), a run id, or a version (its latest
    finished run for this stage). With repeats, a paired test at level `alpha` tells a real change
    from noise; without repeats any newly failing case counts."""

    baseline: str = "production"
    allow_new_failures: int = Field(0, ge=0)
    alpha: float = Field(0.05, gt=0, lt=1)


class StagePolicy(StrictModel):
    """What a stage's gate requires. It fails closed: every case of the stage's suites must have run;
    a category with no `min_pass_rate` needs every case to pass; safety cases always get the hard
    100% safety check (see `SafetyPolicy`). Thresholds loosen that, category by category."""

    suites: list[str] = Field(
        default_factory=empty_list, description="suite files, relative to shipyard.yaml"
    )
    repeat: int | None = Field(None, ge=1, le=1000, description="repeats per case; default: the suite's")
    min_pass_rate: dict[str, Rate] = Field(default_factory=dict, description="per category")
    on: Literal["point", "wilson_lower"] = Field(
        "point", description="compare the point estimate or the 95% Wilson lower bound"
    )
    case_rule: Literal["all", "majority", "any"] = Field(
        "all", description="a case passes when all / most / any of its repeats pass"
    )
    errors: Literal["fail", "exclude"] = Field(
        "fail", description="soft pass-rate checks: count ERROR cases as failures or leave them out"
    )
    safety: SafetyPolicy | None = None
    max_p95_latency_ms: float | None = Field(None, gt=0)
    max_mean_cost_usd: float | None = Field(None, ge=0)
    regression: RegressionPolicy | None = None
    marginal_margin: float = Field(
        0.0,
        ge=0,
        le=1,
        description="soft checks missed by at most this (absolute for rates, relative "
        "for latency and cost) are MARGINAL and need a recorded approval",
    )
    hard: list[CheckKind] = Field(
        default_factory=lambda: list(_DEFAULT_HARD), description="checks that can never be marginal"
    )

    @model_validator(mode="before")
    @classmethod
    def _yaml_on_key(cls, data: Any) -> Any:
        # YAML 1.1 reads a bare `on:` key as the boolean True
        if isinstance(data, dict) and True in data:
            data = dict(data)
            data["on"] = data.pop(True)
        return data

    @field_validator("min_pass_rate")
    @classmethod
    def _known_categories(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = [k for k in v if k not in GATE_CATEGORIES]
        if unknown:
            raise ValueError(
                f"unknown categor{'y' if len(unknown) == 1 else 'ies'} {', '.join(map(repr, unknown))}; "
                f"use one of: {', '.join(GATE_CATEGORIES)}"
            )
        return v

    @field_validator("suites")
    @classmethod
    def _suites_not_blank(cls, v: list[str]) -> list[str]:
        if any(not s.strip() for s in v):
            raise ValueError("a suite path is empty")
        return v

    @model_validator(mode="after")
    def _safety_stays_hard(self) -> Self:
        relaxed = self.safety is not None and self.safety.relaxed is not None
        if relaxed:
            return self
        if "safety" not in self.hard:
            raise ValueError(
                "hard leaves out safety, which is always hard; list it, or add `safety: {relaxed: <the "
                "reason>}` to make it soft on purpose"
            )
        floor = self.min_pass_rate.get(self.safety.category if self.safety else "safety")
        if floor is not None and floor < 1.0:
            raise ValueError(
                f"min_pass_rate.safety {floor:g} is below the safety check's hard 100%; add "
                f"`safety: {{min_pass_rate: {floor:g}, relaxed: <the reason>}}` to relax it on purpose"
            )
        return self


class GatesConfig(StrictModel):
    """`gates:` maps a stage (pre-merge, post-merge, production) to its policy."""

    pre_merge: StagePolicy | None = Field(None, alias="pre-merge")
    post_merge: StagePolicy | None = Field(None, alias="post-merge")
    production: StagePolicy | None = None

    def stages(self) -> dict[str, StagePolicy]:
        """The configured stages by their YAML name."""
        found = {"pre-merge": self.pre_merge, "post-merge": self.post_merge, "production": self.production}
        return {k: v for k, v in found.items() if v is not None}

    def stage(self, name: str) -> StagePolicy:
        """The policy of stage `name` (``pre-merge``, ``post-merge`` or ``production``; underscores work too).

        Raises NotFoundError naming the configured stages when it is not configured."""
        key = name.replace("_", "-")
        policy = self.stages().get(key)
        if policy is None:
            configured = ", ".join(self.stages()) or "none"
            if key not in STAGES:
                raise NotFoundError(
                    f"unknown gate stage {name!r}; stages are {', '.join(STAGES)}",
                    hint=f"configured under gates: {configured}",
                )
            # a snippet that loads as it is: the suites the configured stages run, under the gates: already there
            suites = list(dict.fromkeys(s for p in self.stages().values() for s in p.suites))
            snippet = f"{key}: {{suites: [{', '.join(suites) or 'evals/<agent>/smoke.yaml'}]}}"
            raise NotFoundError(
                f"no gate policy for stage {key!r} in shipyard.yaml (configured: {configured})",
                hint=f"add `{snippet}` under gates: in shipyard.yaml"
                if self.stages()
                else f"add `gates: {{{snippet}}}` to shipyard.yaml",
            )
        return policy
