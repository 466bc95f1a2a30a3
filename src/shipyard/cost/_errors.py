"""How a budget refuses a call: what the runtime catches of the budgets, in a module of its own so the
runtime loads the budgets (`cost/_budgets.py`) only for a project that configures some."""

from __future__ import annotations

from typing import Any


class BudgetExceeded(Exception):
    """A budget has no room for this call (or this interaction): it is stopped gracefully."""

    def __init__(self, budget: str, scope: str, spent: float, limit: float, unit: str) -> None:
        self.budget, self.scope, self.spent, self.limit, self.unit = budget, scope, spent, limit, unit
        super().__init__(
            f"budget {budget!r} ({scope}) is exhausted: {_fmt(spent, unit)} of {_fmt(limit, unit)} spent"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "budget": self.budget,
            "scope": self.scope,
            "spent": self.spent,
            "limit": self.limit,
            "unit": self.unit,
        }


class BudgetUnavailable(Exception):
    """The counters of a fail_closed budget cannot be reached (Redis down): the call is refused."""


def _fmt(value: float, unit: str) -> str:
    return f"${value:.6f}" if unit == "usd" else f"{int(value)} tokens"
