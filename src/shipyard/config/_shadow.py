"""Shadow replay (`shadow:` in shipyard.yaml): recorded production traffic replayed against a
candidate version, and twice against the version that served it, to measure the noise.

shadow:
  max_cost_usd: 1.0                  # the model spend of one `shipyard shadow` run (every arm)
  tool_stubs:                        # what a side-effecting tool returns in shadow when production
    support:                         # recorded no call with the same arguments (agent: tool: result)
      process_refund: {refund_id: SHADOW, status: not_executed}
  output: {similarity: 0.8, margin: 0.1}
  judge: {model: judge}              # optional: a model confirms each output difference
  require_before_canary: 24h         # a canary needs a shadow run this recent that passed
  mirror:                            # the server replays a share of live traffic in the background
    - {agent: support, candidate: "1.3.0", percent: 5}
"""

from typing import Any

from pydantic import Field, field_validator

from shipyard.config._alerts import parse_window
from shipyard.config._schema_base import StrictModel, empty_list, section


class ShadowOutputConfig(StrictModel):
    """When two replies count as different: their ROUGE-1 F1 (word overlap, the `similar` scorer's
    measure) below `similarity`, and below the baseline's agreement with itself by `margin`."""

    similarity: float = Field(0.8, ge=0, le=1, description="least ROUGE-1 F1 of two replies that agree")
    margin: float = Field(
        0.1, ge=0, le=1, description="how far below the baseline's own agreement a reply must fall"
    )


class ShadowNumbersConfig(StrictModel):
    """When cost or latency counts as different: outside the two baseline runs' range widened by
    `ratio` (both ways), and further from it than `min_delta`."""

    ratio: float = Field(..., gt=1, description="the factor the baseline range is widened by")
    min_delta: float = Field(..., ge=0, description="the least absolute change that counts")


class ShadowJudgeConfig(StrictModel):
    """A model that confirms each output difference: asked whether the candidate's reply says the
    same as the baseline's; a yes drops the difference."""

    model: str = Field(..., description="a key of `models`")
    rubric: str = Field(
        "The agent reply must say the same thing to the customer as the expected reply: the same facts, "
        "the same decision and the same next step. Wording may differ.",
        description="what 'the same' means for this agent",
    )


class ShadowMirrorConfig(StrictModel):
    """The server replays `percent` of an agent's live production interactions against `candidate`,
    after the user has the answer (never on the request's path), as `traffic_source: shadow`."""

    agent: str
    candidate: str = Field(..., description="a version label, hash or id of the agent")
    percent: float = Field(..., gt=0, le=100, description="share of live interactions mirrored")
    max_concurrent: int = Field(4, gt=0, description="mirrored replays at once; more are skipped")


class ShadowConfig(StrictModel):
    """Shadow replay: the spend cap, tool stubs, what counts as a difference, canary and mirror."""

    max_cost_usd: float = Field(
        1.0,
        gt=0,
        description="most model spend (USD) of one shadow run over all its arms, and of the server's "
        "mirroring per UTC day; at the cap the replay stops (fail closed) and says so",
    )
    tool_stubs: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="agent -> side-effecting tool -> the result it returns in shadow when production "
        "recorded no call with the same arguments",
    )
    output: ShadowOutputConfig = section()
    cost: ShadowNumbersConfig = section({"ratio": 1.5, "min_delta": 1e-5})
    latency: ShadowNumbersConfig = section({"ratio": 2.0, "min_delta": 250.0})
    alpha: float = Field(
        0.05,
        gt=0,
        lt=1,
        description="a kind of difference is reported when so many differences would happen by the "
        "baseline's own noise with at most this probability (one-sided binomial test)",
    )
    judge: ShadowJudgeConfig | None = None
    require_before_canary: str | None = Field(
        None,
        description="a canary starts only after a shadow run of the candidate against the stable "
        "version that passed, at most this old (e.g. 24h)",
    )
    mirror: list[ShadowMirrorConfig] = Field(default_factory=empty_list)

    @field_validator("require_before_canary")
    @classmethod
    def _window(cls, value: str | None) -> str | None:
        if value is not None:
            parse_window(value)
        return value

    @property
    def require_before_canary_s(self) -> float | None:
        return None if self.require_before_canary is None else parse_window(self.require_before_canary)


def shadow_problems(cfg: Any) -> list[str]:
    """What `shadow:` names that the rest of the file does not define (agents, the judge's model)."""
    problems: list[str] = []
    shadow: ShadowConfig = cfg.shadow
    agents = ", ".join(sorted(cfg.agents)) or "none"
    for agent in shadow.tool_stubs:
        if agent not in cfg.agents:
            problems.append(
                f"shadow.tool_stubs names agent {agent!r}, not defined under agents (known: {agents})"
            )
    for i, m in enumerate(shadow.mirror):
        if m.agent not in cfg.agents:
            problems.append(
                f"shadow.mirror[{i}] names agent {m.agent!r}, not defined under agents (known: {agents})"
            )
    if shadow.judge is not None and shadow.judge.model not in cfg.models:
        known = ", ".join(sorted(cfg.models)) or "none"
        problems.append(
            f"shadow.judge uses model {shadow.judge.model!r}, not defined under models (known: {known})"
        )
    return problems
