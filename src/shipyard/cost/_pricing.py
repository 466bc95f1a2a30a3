"""Prices and the cost of one model call."""

from __future__ import annotations

from dataclasses import dataclass

from shipyard.config import ModelPrices, PriceRates
from shipyard.types import Usage

MILLION = 1_000_000


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    """The USD cost of one call by usage bucket; `total` is their sum. Each token is in exactly
    one bucket: uncached input, cache read, cache write, visible output, reasoning."""

    input: float
    cached_input: float
    cache_write_input: float
    output: float
    reasoning: float

    @property
    def total(self) -> float:
        return self.input + self.cached_input + self.cache_write_input + self.output + self.reasoning


def cost_breakdown(
    prices: ModelPrices | PriceRates, usage: Usage, *, at: float | None = None
) -> CostBreakdown:
    """The cost of a call by bucket, at the prices in effect at `at` (Unix seconds; None: now).

    Cache reads are billed at `cached_input` and cache writes at `cache_write_input` (each defaults
    to the input price), and only the rest of the prompt at `input`, so no token is billed twice;
    reasoning tokens are billed at `reasoning` (default: the output price), the rest of the output
    at `output`."""
    return CostBreakdown(*_buckets(prices, usage, at))


def _buckets(
    prices: ModelPrices | PriceRates, usage: Usage, at: float | None
) -> tuple[float, float, float, float, float]:
    """`CostBreakdown`'s fields, in its order (input, cached_input, cache_write_input, output,
    reasoning)."""
    rates = prices.rates_at(at) if isinstance(prices, ModelPrices) else prices
    read = min(usage.cached_input_tokens, usage.input_tokens)
    write = min(usage.cache_write_input_tokens, usage.input_tokens - read)
    uncached = usage.input_tokens - read - write
    reasoning = min(usage.reasoning_tokens, usage.output_tokens)
    visible = usage.output_tokens - reasoning
    return (
        uncached * rates.input / MILLION,
        read * (rates.input if rates.cached_input is None else rates.cached_input) / MILLION,
        write * (rates.input if rates.cache_write_input is None else rates.cache_write_input) / MILLION,
        visible * rates.output / MILLION,
        reasoning * (rates.output if rates.reasoning is None else rates.reasoning) / MILLION,
    )


def call_cost(prices: ModelPrices | PriceRates, usage: Usage, *, at: float | None = None) -> float:
    """USD cost of one call: each usage bucket at its own price, at the prices in effect at `at`
    (Unix seconds; None: now). See `cost_breakdown`; the same sum, in the same order, without
    building the breakdown (this runs on every model call)."""
    i, c, w, o, r = _buckets(prices, usage, at)
    return i + c + w + o + r
