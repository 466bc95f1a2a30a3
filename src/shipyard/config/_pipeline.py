"""The CI/CD pipeline (`pipeline:` in shipyard.yaml). Owned by the pipeline work.

```yaml
pipeline:
  agent: support                  # the agent the stages gate (default: the only one)
  base_ref: origin/main           # the base branch: what changed, and the regression baseline
  stages: [pre-merge, post-merge, production]
  pre-merge:
    unit_tests: auto              # auto: pytest when the project has a tests/ folder; always | never
    fast_evals: changed           # changed: only what the change touches, when git can tell; all
  post-merge:
    suites: []                    # besides gates.post-merge.suites and the safety suites
    integration_suites: [evals/support/integration.yaml]
    benchmark: {requests: 40, concurrency: 4}
  production:
    adversarial_suites: [evals/support/red_team.yaml]
    min_model_agreement: 0.9
    review_prompt_lines: 20       # more changed system-prompt lines than this needs a human review
```

Every stage's eval thresholds stay in `gates:`; this section says what else a stage runs.
"""

from typing import Literal

from pydantic import Field, field_validator

from shipyard.config._schema_base import StrictModel, empty_list, section

PIPELINE_STAGES: tuple[str, ...] = ("pre-merge", "post-merge", "production")


def _no_blank(paths: list[str]) -> list[str]:
    if any(not p.strip() for p in paths):
        raise ValueError("a suite path is empty")
    return paths


class PreMergeStage(StrictModel):
    """What pre-merge runs besides its gate's suites."""

    unit_tests: Literal["auto", "always", "never"] = Field(
        "auto", description="the project's own tests: auto runs pytest when a tests/ folder exists"
    )
    unit_test_command: list[str] | None = Field(
        None, description="the command that runs them (default: python -m pytest -q tests)"
    )
    fast_evals: Literal["changed", "all"] = Field(
        "changed",
        description="changed: run only the agents and suites the change touches when git can tell; all",
    )


class BenchmarkSettings(StrictModel):
    """Requests sent to the staging server to measure latency and cost."""

    requests: int = Field(40, ge=1, le=100_000)
    concurrency: int = Field(4, ge=1, le=256)


class PostMergeStage(StrictModel):
    """What post-merge runs against the staging server besides its gate's suites."""

    suites: list[str] = Field(
        default_factory=empty_list, description="more suites, relative to shipyard.yaml"
    )
    integration_suites: list[str] = Field(
        default_factory=empty_list, description="suites that use real tool connections (run on staging only)"
    )
    benchmark: BenchmarkSettings | None = section(description="null turns the benchmark off")
    startup_timeout_s: float = Field(
        120.0, gt=0, description="how long the staging server may take to be ready"
    )

    _blank = field_validator("suites", "integration_suites")(_no_blank)


class ProductionStage(StrictModel):
    """What the production stage adds to its gate."""

    adversarial_suites: list[str] = Field(
        default_factory=empty_list, description="red-team suites, run with the gate's suites"
    )
    min_model_agreement: float = Field(
        0.9, ge=0, le=1, description="cross-model consistency below this needs a recorded approval"
    )
    review_prompt_lines: int = Field(
        20, ge=0, description="more changed system-prompt lines than this needs a human review"
    )
    review_safety_rules: bool = Field(True, description="any change to safety_rules.txt needs a human review")
    red_team_on_tool_change: bool = Field(True, description="added or changed tools need a red-team sign-off")

    _blank = field_validator("adversarial_suites")(_no_blank)


class PipelineConfig(StrictModel):
    """`pipeline:` the stages `shipyard ci run` runs, in order."""

    agent: str | None = Field(None, description="the agent the stages gate (default: the only one)")
    base_ref: str = Field("origin/main", description="the base branch (a git ref)")
    stages: list[Literal["pre-merge", "post-merge", "production"]] = Field(
        default_factory=lambda: list(PIPELINE_STAGES)  # type: ignore[arg-type]
    )
    pre_merge: PreMergeStage = section(alias="pre-merge")
    post_merge: PostMergeStage = section(alias="post-merge")
    production: ProductionStage = section()

    @field_validator("stages")
    @classmethod
    def _ordered(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("a stage is listed twice")
        if v != sorted(v, key=PIPELINE_STAGES.index):
            raise ValueError(f"stages run in the order {', '.join(PIPELINE_STAGES)}; list them in that order")
        return v
