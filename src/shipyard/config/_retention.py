"""How long the store keeps interactions (`store.retention` in shipyard.yaml).

store:
  retention: {max_age: 30d, max_size_mb: 2000, every: 1h}

A running server prunes every `every`; `shipyard store prune` does it on demand. Without `max_age` and
`max_size_mb` nothing is ever deleted.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from shipyard.config._alerts import parse_window
from shipyard.config._schema_base import StrictModel


class RetentionConfig(StrictModel):
    """Which interactions (with their spans) the store deletes, oldest first. Eval runs, rollouts,
    the cost ledger and dead letters are kept."""

    max_age: str | None = Field(
        None, description="delete interactions older than this (90s, 15m, 1h, 30d); none: any age"
    )
    max_size_mb: float | None = Field(
        None,
        gt=0,
        description="then delete the oldest until the interactions and spans take at most this many MB "
        "as stored (their rows' text and JSON; indexes and free pages are not counted)",
    )
    every: str = Field("1h", description="how often a running server prunes (90s, 15m, 1h)")

    @field_validator("max_age", "every")
    @classmethod
    def _window(cls, value: str | None) -> str | None:
        if value is not None:
            parse_window(value)
        return value

    @property
    def max_age_s(self) -> float | None:
        return None if self.max_age is None else parse_window(self.max_age)

    @property
    def max_bytes(self) -> int | None:
        return None if self.max_size_mb is None else int(self.max_size_mb * 1024 * 1024)

    @property
    def every_s(self) -> float:
        return parse_window(self.every)

    @property
    def enabled(self) -> bool:
        return self.max_age is not None or self.max_size_mb is not None
