"""Price table, cost of a call, ledger and budgets."""

from shipyard.cost._pricing import call_cost

__all__ = ["call_cost"]
