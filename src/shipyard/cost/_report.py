"""Cost reports from the ledger: what was spent and saved, overall and per request, session, user,
API key, feature, agent, version, model, tier, traffic source or day."""

from __future__ import annotations

import csv
import io
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipyard.store import Store

REPORT_DIMENSIONS = (
    "request",
    "session",
    "user",
    "api_key",
    "feature",
    "agent",
    "version",
    "model",
    "tier",
    "traffic_source",
    "day",
)
"""What `cost_report` can group by (`shipyard cost report --by ...`)."""

NO_KEY: dict[str, str] = {
    "session": "no session",
    "user": "no user id",
    "api_key": "no API key",
    "feature": "no feature tag",
    "model": "no model call",
    "tier": "not routed",
}
"""What a row without a value of the dimension holds (its `label`), e.g. by model: what caches saved
where no model was called. Other dimensions always have a value."""


@dataclass(slots=True)
class CostRow:
    """Totals of one key (or of everything): USD spent on model calls and saved (by caches,
    routing, ...; `savings` by reason), calls and interactions counted, and the token buckets."""

    key: str | None
    spent_usd: float = 0.0
    saved_usd: float = 0.0
    savings: dict[str, float] = field(default_factory=dict)
    calls: int = 0
    interactions: int = 0
    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    dimension: str | None = None
    """What `key` is a value of (`REPORT_DIMENSIONS`); None for the total over everything."""

    @property
    def saved_share(self) -> float | None:
        """Saved / (spent + saved): the share of what it would have cost that was not spent."""
        would = self.spent_usd + self.saved_usd
        return self.saved_usd / would if would > 0 else None

    @property
    def label(self) -> str:
        """The row's name as reports show it: its key; for no key, what the row holds (`NO_KEY`,
        with the reasons of its savings when it has no model call: "(no model call: cache)"); for
        the total row, "total"."""
        if self.dimension is None:
            return "total"
        if self.key is not None:
            return str(self.key)
        what = NO_KEY.get(self.dimension, f"no {self.dimension}")
        reasons = ", ".join(sorted(self.savings)) if not self.calls else ""
        return f"({what}: {reasons})" if reasons else f"({what})"

    def to_dict(self) -> dict[str, Any]:
        """The row as JSON: `key` is null for rows without a value (and the total); `label` names
        the row as the table and the CSV do."""
        out = asdict(self)
        del out["dimension"]
        return {**out, "label": self.label, "saved_share": self.saved_share}


@dataclass(slots=True)
class CostReport:
    """A cost report: `rows` per key of `by` (biggest spend first; by day, oldest first), and
    `total` over everything in the window (not only the top rows)."""

    by: str
    since: float | None
    until: float | None
    top: int | None
    rows: list[CostRow]
    total: CostRow
    filters: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "since": self.since,
            "until": self.until,
            "top": self.top,
            "filters": self.filters,
            "rows": [r.to_dict() for r in self.rows],
            "total": self.total.to_dict(),
        }

    def to_csv(self) -> str:
        """One line per row (and a last `total` line): the row's label (its key, or what a row
        without one holds: `CostRow.label`), spent, saved, each saving reason, calls, interactions,
        tokens."""
        reasons = sorted({r for row in (*self.rows, self.total) for r in row.savings})
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(
            [
                self.by,
                "spent_usd",
                "saved_usd",
                *(f"saved_{r}_usd" for r in reasons),
                "calls",
                "interactions",
                "input_tokens",
                "cached_input_tokens",
                "cache_write_input_tokens",
                "output_tokens",
                "reasoning_tokens",
            ]
        )
        for row in (*self.rows, self.total):
            w.writerow(
                [
                    row.label,
                    f"{row.spent_usd:.6f}",
                    f"{row.saved_usd:.6f}",
                    *(f"{row.savings.get(r, 0.0):.6f}" for r in reasons),
                    row.calls,
                    row.interactions,
                    row.input_tokens,
                    row.cached_input_tokens,
                    row.cache_write_input_tokens,
                    row.output_tokens,
                    row.reasoning_tokens,
                ]
            )
        return out.getvalue()


def parse_since(value: str, *, now: float | None = None) -> float:
    """The start of a report window: a length back from now (`90s`, `15m`, `24h`, `7d`) or a UTC
    date or time (`2026-12-01`, `2026-12-01T08:00`). ValueError says what is accepted."""
    from shipyard.config import parse_window

    now = time.time() if now is None else now
    text = value.strip()
    try:
        return now - parse_window(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{value!r} is neither a length of time (90s, 15m, 24h, 7d) nor a date (2026-12-01)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def cost_report(
    store: Store,
    by: str,
    *,
    since: float | None = None,
    until: float | None = None,
    top: int | None = None,
    filters: dict[str, str] | None = None,
) -> CostReport:
    """Spend and savings per value of `by` (one of `REPORT_DIMENSIONS`), from the store's ledger.

    Args:
        store: the project's store.
        by: request | session | user | api_key | feature | agent | version | model | tier |
            traffic_source | day.
        since, until: creation time bounds (Unix seconds; `parse_since` reads `24h` or a date).
        top: at most this many rows (by day: the newest days); the total covers everything.
        filters: dimension -> value every counted call must have, e.g. {"agent": "support"}.
    """
    if by not in REPORT_DIMENSIONS:
        raise ValueError(f"cannot report cost by {by!r}; choose one of {', '.join(REPORT_DIMENSIONS)}")
    if top is not None and top < 1:
        raise ValueError(f"top must be at least 1, got {top}")
    rows = store.ledger_totals(by, since=since, until=until, top=top, filters=filters)
    total = store.ledger_totals(None, since=since, until=until, filters=filters)[0]
    return CostReport(
        by=by,
        since=since,
        until=until,
        top=top,
        rows=[CostRow(**r, dimension=by) for r in rows],
        total=CostRow(**{**total, "key": None}),
        filters=dict(filters or {}),
    )
