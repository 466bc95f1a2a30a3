"""Prices and the cost of one model call."""

from __future__ import annotations

from shipyard.config import ModelPrices
from shipyard.types import Usage

MILLION = 1_000_000


def call_cost(prices: ModelPrices, usage: Usage) -> float:
    """USD cost of one call: uncached input, cached input and output at their own prices."""
    cached_price = prices.input if prices.cached_input is None else prices.cached_input
    uncached = max(usage.input_tokens - usage.cached_input_tokens, 0)
    return (
        uncached * prices.input
        + usage.cached_input_tokens * cached_price
        + usage.output_tokens * prices.output
    ) / MILLION
