"""flagd's fractional bucketing, the one place Shipyard splits traffic by a stable key.

Feature-flag targeting (`fractional`) and rollout assignment both use it, so every replica gives
the same answer with no shared state: murmur3 x86 32-bit, seed 0, of the key string; bucket =
(hash × total weight) >> 32; the first variant whose cumulative weight exceeds the bucket wins.
A variant listed first keeps every key it already has when its weight rises."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import mmh3

T = TypeVar("T")


def bucket(key: str, total_weight: int) -> int:
    """The key's bucket in [0, total_weight)."""
    return (mmh3.hash(key, 0, signed=False) * total_weight) >> 32


def fractional(key: str, weights: Sequence[tuple[T, int]]) -> T | None:
    """The variant `key` falls in, given `(variant, weight)` pairs in order; None if all weights are 0."""
    total = 0
    for _, w in weights:
        total += w
    if total <= 0:
        return None
    b = bucket(key, total)
    cumulative = 0
    for name, w in weights:
        cumulative += w
        if b < cumulative:
            return name
    return None  # unreachable: b < total
