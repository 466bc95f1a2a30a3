"""Token and money budgets (`budgets:` in shipyard.yaml).

budgets:
  backend: redis                      # memory (one machine, kept in the store) | redis (many replicas)
  redis_url: redis://127.0.0.1:6379/0 # or SHIPYARD_REDIS_URL
  reservation_share: 0.05             # a model call holds at most 5% of the smallest budget it touches
  limits:
    - {name: session-cap, scope: session, window: interaction, usd: 0.05}
    - {name: user-daily, scope: user, window: day, usd: 1.00}
    - {name: refund-flow-monthly, scope: feature, feature: new_refund_flow, window: month, tokens: 5000000,
       on_unavailable: fail_open}
"""

import re
from typing import Literal, Self

from pydantic import Field, model_validator

from shipyard.config._schema_base import RedisCounters, StrictModel, empty_list

BudgetScope = Literal["session", "user", "api_key", "feature", "agent", "global"]
BudgetWindow = Literal["interaction", "session", "day", "month"]

TrafficKind = Literal["production", "canary", "eval", "shadow", "replay"]


def _live_traffic() -> list[TrafficKind]:
    return ["production", "canary"]


DEFAULT_GRACEFUL_ANSWER = (
    "I have reached my processing limit for this session. Let me summarize what I have found so far."
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class BudgetLimit(StrictModel):
    """One budget: a cap on what one session, user, API key, feature, agent or everyone may spend in
    a window, in USD or in tokens (exactly one of `usd`, `tokens`)."""

    name: str = Field(..., description="unique name, used by the admin API and on refusals")
    scope: BudgetScope = Field(..., description="whose spending is counted: one counter per value")
    window: BudgetWindow = Field(
        "day",
        description="interaction: each request on its own; session: the whole session, however long; "
        "day / month: calendar UTC day or month",
    )
    usd: float | None = Field(None, gt=0, description="cap in USD (priced from `models.<key>.prices`)")
    tokens: int | None = Field(None, gt=0, description="cap in tokens (input + output)")
    agent: str | None = Field(None, description="count only this agent's calls (default: every agent)")
    feature: str | None = Field(None, description="with scope feature: the feature tag counted")
    traffic: list[TrafficKind] = Field(
        default_factory=_live_traffic,
        min_length=1,
        description="the traffic counted (eval runs and shadow replays are not, unless listed)",
    )
    on_unavailable: Literal["fail_closed", "fail_open"] = Field(
        "fail_closed",
        description="when the budget's counters cannot be reached (Redis down): fail_closed refuses "
        "the call, fail_open lets it through and logs it",
    )

    @model_validator(mode="after")
    def _one_unit(self) -> Self:
        if not _NAME.match(self.name):
            raise ValueError(
                f"budget name {self.name!r} must be letters, digits, '-', '_' or '.' (at most 64)"
            )
        if (self.usd is None) == (self.tokens is None):
            raise ValueError(f"budget {self.name!r} needs exactly one of usd or tokens")
        if self.scope == "feature" and not self.feature:
            raise ValueError(f"budget {self.name!r} has scope feature: say which with feature: <tag>")
        if self.feature and self.scope != "feature":
            raise ValueError(
                f"budget {self.name!r}: feature is only for scope feature (scope is {self.scope})"
            )
        return self

    @property
    def unit(self) -> Literal["usd", "tokens"]:
        return "usd" if self.usd is not None else "tokens"

    @property
    def limit(self) -> float:
        return float(self.usd if self.usd is not None else self.tokens or 0)


class BudgetsConfig(RedisCounters):
    """Budgets and where their counters live. No limits: nothing is checked (no budget step)."""

    enabled: bool | None = Field(
        None,
        description="check budgets (default: when limits are listed); true with no limits: budgets are "
        "set through the admin API only",
    )
    backend: Literal["memory", "redis"] = Field(
        "memory",
        description="memory: counters in this process, persisted to the store (one machine); redis: one "
        "set of counters shared by every replica",
    )
    reservation_share: float = Field(
        0.05,
        gt=0,
        le=1,
        description="a model call reserves at most this share of the smallest budget it touches (unless "
        "max_reservation_usd / _tokens say otherwise); its max_tokens is lowered so its worst case fits",
    )
    max_reservation_usd: float | None = Field(
        None, gt=0, description="the most one model call reserves in USD (instead of reservation_share)"
    )
    max_reservation_tokens: int | None = Field(
        None, gt=0, description="the most one model call reserves in tokens (instead of reservation_share)"
    )
    min_output_tokens: int = Field(
        256,
        gt=0,
        description="max_tokens is never lowered below this to fit the cap (the call reserves its real "
        "worst case instead)",
    )
    reservation_ttl_s: float = Field(
        300.0,
        gt=0,
        description="a reservation not settled by then is released (a crashed replica leaks nothing)",
    )
    wait_s: float = Field(
        30.0,
        ge=0,
        description="a call that fits the budget but not beside other calls' reservations waits this long "
        "for them to settle before it is refused",
    )
    reconcile_interval_s: float = Field(
        60.0, gt=0, description="how often the counters are raised to what the store has recorded"
    )
    graceful_answer: str = Field(
        DEFAULT_GRACEFUL_ANSWER, min_length=1, description="the answer of an interaction stopped by a budget"
    )
    limits: list[BudgetLimit] = Field(default_factory=empty_list)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        seen: set[str] = set()
        for b in self.limits:
            if b.name in seen:
                raise ValueError(f"two budgets are named {b.name!r}; names must be unique")
            seen.add(b.name)
        return self

    @property
    def on(self) -> bool:
        """Whether budgets are checked (the `budget_check` step and the reservations run)."""
        return bool(self.limits) if self.enabled is None else self.enabled
