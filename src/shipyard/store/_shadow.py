"""Shadow runs and their comparisons (tables `shadow_runs`, `shadow_comparisons`; written by `shipyard.loop`)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import insert, select, update

from shipyard.store._models import shadow_comparisons as _comparisons
from shipyard.store._models import shadow_runs as _runs
from shipyard.store._sanitize import store_text
from shipyard.store._store import Store


def store_safe(value: Any) -> Any:
    """`value` as JSON both databases hold: plain types, every string `store_text`."""
    if isinstance(value, str):
        return store_text(value)
    if isinstance(value, dict):
        return {store_text(str(k)): store_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [store_safe(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return store_text(str(value))


def create_shadow_run(
    store: Store,
    run_id: str,
    *,
    agent: str,
    candidate: str,
    source: str,
    config: dict[str, Any],
    started_at: float | None = None,
) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            insert(_runs).values(
                id=run_id,
                agent=agent,
                candidate=candidate,
                baselines=[],
                source=source,
                status="running",
                verdict=None,
                config=store_safe(config),
                summary=None,
                interactions=0,
                cost_usd=0.0,
                started_at=started_at if started_at is not None else time.time(),
                finished_at=None,
            )
        )


def add_shadow_comparisons(store: Store, run_id: str, rows: Iterable[dict[str, Any]]) -> int:
    values = [store_safe({**r, "run_id": run_id}) for r in rows]
    if values:
        with store.engine.begin() as conn:
            conn.execute(insert(_comparisons), values)
    return len(values)


def finish_shadow_run(
    store: Store,
    run_id: str,
    *,
    status: str,
    verdict: str,
    baselines: list[str],
    summary: dict[str, Any],
    interactions: int,
    cost_usd: float,
) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            update(_runs)
            .where(_runs.c.id == run_id)
            .values(
                status=status,
                verdict=verdict,
                baselines=baselines,
                summary=store_safe(summary),
                interactions=interactions,
                cost_usd=cost_usd,
                finished_at=time.time(),
            )
        )


def get_shadow_run(store: Store, run_id: str) -> dict[str, Any] | None:
    with store.engine.connect() as conn:
        row = conn.execute(select(_runs).where(_runs.c.id == run_id)).mappings().first()
    return dict(row) if row is not None else None


def list_shadow_runs(
    store: Store, agent: str | None = None, candidate: str | None = None, limit: int = 20
) -> list[dict[str, Any]]:
    """Shadow runs, newest first."""
    query = select(_runs)
    if agent is not None:
        query = query.where(_runs.c.agent == agent)
    if candidate is not None:
        query = query.where(_runs.c.candidate == candidate)
    query = query.order_by(_runs.c.started_at.desc()).limit(limit)
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def shadow_comparisons(store: Store, run_id: str) -> list[dict[str, Any]]:
    query = select(_comparisons).where(_comparisons.c.run_id == run_id).order_by(_comparisons.c.id)
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def latest_shadow_run(
    store: Store, agent: str, candidate: str, *, since: float | None = None
) -> dict[str, Any] | None:
    """The newest finished shadow run of `candidate` (a version id), started at or after `since`."""
    query = select(_runs).where(
        _runs.c.agent == agent, _runs.c.candidate == candidate, _runs.c.finished_at.is_not(None)
    )
    if since is not None:
        query = query.where(_runs.c.started_at >= since)
    query = query.order_by(_runs.c.started_at.desc()).limit(1)
    with store.engine.connect() as conn:
        row = conn.execute(query).mappings().first()
    return dict(row) if row is not None else None
