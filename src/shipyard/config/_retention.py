"""How long the store keeps interactions (`store.retention` in shipyard.yaml).

store:
  retention: {max_age: 30d, max_size_mb: 2000, every: 1h, ledger_max_age: 400d}

A running server prunes every `every`; `shipyard store prune` does it on demand. Without `max_age` and
`max_size_mb` no interaction is ever deleted; without `ledger_max_age` no cost ledger row is.
"""

from pydantic import Field, field_validator

from shipyard.config._alerts import parse_window
from shipyard.config._schema_base import StrictModel

LEDGER_MIN_AGE_S = 32 * 86400.0
"""The shortest `ledger_max_age`: budgets with a month window are reconciled from the ledger, so it
keeps at least a whole calendar month."""


class RetentionConfig(StrictModel):
    """Which interactions (with their spans) the store deletes, oldest first, and which cost ledger
    rows, by age only (never with the interactions or by size). Eval runs, rollouts and dead letters
    are kept."""

    max_age: str | None = Field(
        None, description="delete interactions older than this (90s, 15m, 1h, 30d); none: any age"
    )
    max_size_mb: float | None = Field(
        None,
        gt=0,
        description="then delete the oldest until the interactions and their spans take at most this "
        "many MB on disk, with their indexes (SQLite: their pages, freed ones are reused; PostgreSQL: "
        "their live rows, the relations keep room for what arrives between prunes). The cost ledger is "
        "not counted: ledger_max_age bounds it",
    )
    every: str = Field("1h", description="how often a running server prunes (90s, 15m, 1h)")
    ledger_max_age: str | None = Field(
        None,
        description="delete cost ledger rows older than this (400d; at least 32d, since budgets with a "
        "month window are reconciled from the ledger); none: keep the ledger forever",
    )

    @field_validator("max_age", "every")
    @classmethod
    def _window(cls, value: str | None) -> str | None:
        if value is not None:
            parse_window(value)
        return value

    @field_validator("ledger_max_age")
    @classmethod
    def _ledger_window(cls, value: str | None) -> str | None:
        if value is not None:
            check_ledger_max_age(parse_window(value), value)
        return value

    @property
    def max_age_s(self) -> float | None:
        return None if self.max_age is None else parse_window(self.max_age)

    @property
    def ledger_max_age_s(self) -> float | None:
        return None if self.ledger_max_age is None else parse_window(self.ledger_max_age)

    @property
    def max_bytes(self) -> int | None:
        return None if self.max_size_mb is None else int(self.max_size_mb * 1024 * 1024)

    @property
    def every_s(self) -> float:
        return parse_window(self.every)

    @property
    def enabled(self) -> bool:
        return self.max_age is not None or self.max_size_mb is not None or self.ledger_max_age is not None


def check_ledger_max_age(seconds: float, shown: str) -> None:
    """ValueError when a ledger max age is shorter than `LEDGER_MIN_AGE_S`."""
    if seconds < LEDGER_MIN_AGE_S:
        raise ValueError(
            f"ledger_max_age must be at least 32d, got {shown!r}: budgets with a month window are "
            "reconciled from the ledger, so it keeps at least a whole month"
        )
