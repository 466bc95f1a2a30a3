"""Price table, cost of a call, ledger and budgets.

- `parse_usage` and `usage_from_*`: each provider's usage report in the normalized buckets of
  `shipyard.types.Usage` (input, cache read, cache write, output, reasoning).
- `call_cost` / `cost_breakdown`: a call's USD cost at the prices in effect when it was made.
- `cost_report`: totals of spend and savings from the ledger (one priced row per model call,
  written with each interaction) by request, session, user, feature, agent, version, model or day
  (`shipyard cost report`).
- `make_budgets` / `Budgets`: token and money budgets, reserved → settled around each model call
  (`cost/_budgets.py`), with counters in this process or in Redis (`cost/_budget_redis.py`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shipyard.cost._budgets import (
        Budgets,
        Hold,
        InteractionBudget,
        MemoryBackend,
        Subject,
        make_budgets,
    )
    from shipyard.cost._errors import BudgetExceeded, BudgetUnavailable
    from shipyard.cost._pricing import CostBreakdown, call_cost, cost_breakdown
    from shipyard.cost._report import REPORT_DIMENSIONS, CostReport, CostRow, cost_report, parse_since
    from shipyard.cost._usage import (
        USAGE_FORMATS,
        parse_usage,
        usage_format,
        usage_from_anthropic,
        usage_from_gemini,
        usage_from_openai_chat,
        usage_from_openai_responses,
    )

__all__ = [
    "REPORT_DIMENSIONS",
    "USAGE_FORMATS",
    "BudgetExceeded",
    "BudgetUnavailable",
    "Budgets",
    "CostBreakdown",
    "CostReport",
    "CostRow",
    "Hold",
    "InteractionBudget",
    "MemoryBackend",
    "Subject",
    "call_cost",
    "cost_breakdown",
    "cost_report",
    "make_budgets",
    "parse_since",
    "parse_usage",
    "usage_format",
    "usage_from_anthropic",
    "usage_from_gemini",
    "usage_from_openai_chat",
    "usage_from_openai_responses",
]

if not TYPE_CHECKING:  # mypy sees no __getattr__, so a misspelt import is still an error
    from shipyard._lazy import lazy_exports

    __getattr__, __dir__ = lazy_exports(__name__, __file__)
