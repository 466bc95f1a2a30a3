"""Budgets set through the admin API, and the budget counters of one machine (mixed into `Store`).

`budget_counters` keeps what each counter spent when the counters live in the server's process
(`budgets.backend: memory`), so a restart does not forget the day's spend; with Redis the counters
live there and this table is unused. Saving takes the larger of the stored and the new value, so
writing a counter twice never counts anything twice. `budgets` holds the budgets the admin API set
(their definition as the `budgets.limits` entries of shipyard.yaml); they override config ones by name.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import BigInteger, Column, Double, Engine, String, Table, delete, func, select

from shipyard.store._backends import StoreBackend
from shipyard.store._models import JSONType, metadata

_counters = Table(
    "budget_counters",
    metadata,
    Column("key", String, primary_key=True),
    Column("spent", BigInteger, nullable=False),  # tokens, or nano-USD
    Column("expires_at", Double, index=True, nullable=False),
    Column("updated_at", Double, nullable=False),
)


_budgets = Table(
    "budgets",
    metadata,
    Column("name", String, primary_key=True),
    Column("definition", JSONType, nullable=False),
    Column("updated_at", Double, nullable=False),
    Column("updated_by", String, nullable=False),
)


class BudgetStore:
    """The store's methods for budgets (mixed into `Store`)."""

    engine: Engine
    backend: StoreBackend

    def budget_counter_rows(self, now: float | None = None) -> Iterator[tuple[str, int, float]]:
        """Counters whose window is not over, (key, spent, expires_at), the latest to expire first,
        streamed (a server starting over a million counters does not hold them all at once)."""
        now = time.time() if now is None else now
        query = (
            select(_counters.c.key, _counters.c.spent, _counters.c.expires_at)
            .where(_counters.c.expires_at > now)
            .order_by(_counters.c.expires_at.desc())
        )
        with self.engine.connect() as conn:
            for k, s, e in conn.execution_options(yield_per=5_000).execute(query):
                yield k, int(s), float(e)

    def load_budget_counters_for(self, keys: Sequence[str], now: float | None = None) -> dict[str, int]:
        """What the counters named `keys` spent, those whose window is not over (key -> spent; a key
        not stored, or whose window is over, is absent): one query on the primary key."""
        if not keys:
            return {}
        now = time.time() if now is None else now
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(_counters.c.key, _counters.c.spent).where(
                    _counters.c.key.in_(list(keys)), _counters.c.expires_at > now
                )
            )
            return {k: int(s) for k, s in rows}

    def save_budget_counters(self, rows: list[tuple[str, int, float]]) -> int:
        """Write (key, spent, expires_at) rows; a stored value larger than the new one stays. Drops
        counters whose window is over. Returns how many rows were written."""
        now = time.time()
        values = [{"key": k, "spent": s, "expires_at": e, "updated_at": now} for k, s, e in rows]
        stmt = self.backend.insert(_counters)
        upsert = stmt.on_conflict_do_update(
            index_elements=[_counters.c.key],
            set_={
                "spent": func.max(_counters.c.spent, stmt.excluded.spent)
                if self.engine.dialect.name == "sqlite"
                else func.greatest(_counters.c.spent, stmt.excluded.spent),
                "expires_at": stmt.excluded.expires_at,
                "updated_at": stmt.excluded.updated_at,
            },
        )
        with self.engine.begin() as conn:
            if values:
                conn.execute(upsert, values)
            conn.execute(delete(_counters).where(_counters.c.expires_at <= now))
        return len(values)

    def admin_budgets(self) -> dict[str, dict[str, Any]]:
        """Budgets set through the admin API: name -> {definition, updated_at, updated_by}."""
        with self.engine.connect() as conn:
            return {
                r.name: {
                    "definition": dict(r.definition),
                    "updated_at": r.updated_at,
                    "updated_by": r.updated_by,
                }
                for r in conn.execute(select(_budgets))
            }

    def put_admin_budget(self, name: str, definition: dict[str, Any], by: str) -> None:
        """Add or replace the admin budget `name`."""
        stmt = self.backend.insert(_budgets).values(
            name=name, definition=definition, updated_at=time.time(), updated_by=by
        )
        with self.engine.begin() as conn:
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[_budgets.c.name],
                    set_={
                        "definition": stmt.excluded.definition,
                        "updated_at": stmt.excluded.updated_at,
                        "updated_by": stmt.excluded.updated_by,
                    },
                )
            )

    def delete_admin_budget(self, name: str) -> bool:
        """Remove the admin budget `name`; False when there was none."""
        with self.engine.begin() as conn:
            return bool(conn.execute(delete(_budgets).where(_budgets.c.name == name)).rowcount)
