"""Eval run settings (`evals:` in shipyard.yaml). Owned by the evals work.

```yaml
evals:
  user_simulator:        # plays the user of `scenario` cases (ADK's conversation_scenario)
    model: simulator     # a key of `models`
    max_turns: 10        # user turns at most, the starting prompt included (ADK's max_allowed_invocations)
```

Without `user_simulator`, a `scenario` case is SKIPPED, saying so; it never counts as passed.
"""

from pydantic import Field

from shipyard.config._schema_base import StrictModel


class UserSimulatorConfig(StrictModel):
    """The model that plays the user of a `scenario` case: from the scenario's starting prompt, one
    call per further user turn (the conversation plan and the conversation so far in ADK's user
    simulator prompt), until it answers with the stop signal or `max_turns` user turns were sent."""

    model: str = Field(..., min_length=1, description="a key of `models`")
    max_turns: int = Field(
        20,
        ge=1,
        le=1000,
        description="most user turns per case, the starting prompt included (ADK's default is 20)",
    )


class EvalsConfig(StrictModel):
    """Settings of eval runs."""

    user_simulator: UserSimulatorConfig | None = Field(
        None, description="plays the user of `scenario` cases; without it they are SKIPPED"
    )
