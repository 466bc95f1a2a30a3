"""The cost ledger's rows and queries (mixed into `Store`).

Rows are derived from each interaction record as it is written (`Store.write_interactions`, in the
same transaction, by the background writer): one row per model call, one per kind of saving the
interaction noted, and one for tokens an agent reported outside `ctx.llm` (a remote agent's), so
the ledger's totals equal the interactions' own. What the rows need beyond the record's columns
(features, savings, the API key) the runtime puts under `metadata["ledger"]` (`LEDGER_KEY`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Select, and_, case, delete, func, or_, select

from shipyard.store._backends import StoreBackend
from shipyard.store._bulk import Rows, delete_oldest
from shipyard.store._models import ledger as _ledger
from shipyard.store._models import ledger_features as _features
from shipyard.store._records import InteractionRecord

LEDGER_KEY = "ledger"
"""The record metadata key the runtime fills for the ledger: {features: [...], savings: {reason:
usd}, api_key_id}. The runtime sets it itself (a request's own metadata cannot)."""


LEDGER_DIMENSIONS: dict[str, str] = {
    "request": "interaction_id",
    "session": "session_id",
    "user": "user_id",
    "api_key": "api_key_id",
    "feature": "feature",
    "agent": "agent",
    "version": "version",
    "model": "model",
    "tier": "tier",
    "traffic_source": "traffic_source",
    "day": "day",
}
"""What ledger totals can be grouped by, and the column each reads."""

_TOKENS = (
    "input_tokens",
    "cached_input_tokens",
    "cache_write_input_tokens",
    "output_tokens",
    "reasoning_tokens",
)
_EPSILON_USD = 1e-12
_MAX_IN = 1000


_LEDGER_COLUMNS = tuple(col.name for col in _ledger.columns)
_FEATURE_COLUMNS = tuple(col.name for col in _features.columns)


def utc_day(epoch: float) -> str:
    """The UTC day (YYYY-MM-DD) of a Unix time: the ledger's `day`."""
    n = int(epoch // 86400)
    day = _DAYS.get(n)
    if day is None:
        if len(_DAYS) > 4096:
            _DAYS.clear()
        day = _DAYS[n] = datetime.fromtimestamp(n * 86400, UTC).strftime("%Y-%m-%d")
    return day


_DAYS: dict[int, str] = {}  # day number since the epoch -> its date, for the writer's many rows a day


def ledger_meta(r: InteractionRecord) -> tuple[list[str], str | None, dict[str, float]]:
    """What the runtime put under `metadata[LEDGER_KEY]`: the features (sorted, unique), the API
    key prefix, and the positive savings by reason."""
    meta = r.metadata.get(LEDGER_KEY) if isinstance(r.metadata, dict) else None
    if not isinstance(meta, dict):
        return [], None, {}
    features = sorted({f for f in meta.get("features") or () if isinstance(f, str) and f})
    api_key = meta.get("api_key_id")
    raw = meta.get("savings")
    savings = {
        str(reason): float(usd)
        for reason, usd in (sorted(raw.items()) if isinstance(raw, dict) else ())
        if isinstance(usd, int | float) and not isinstance(usd, bool) and usd > 0
    }
    return features, api_key if isinstance(api_key, str) else None, savings


def ledger_rows(r: InteractionRecord) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The ledger rows of one interaction, and their feature rows."""
    features, api_key, savings = ledger_meta(r)
    base: dict[str, Any] = {
        "interaction_id": r.id,
        "session_id": r.session_id,
        "user_id": r.user_id,
        "api_key_id": api_key,
        "agent": r.agent,
        "version": r.version,
        "traffic_source": r.traffic_source,
        "features": ",".join(features),
        "created_at": r.created_at,
        "day": utc_day(r.created_at),
    }
    rows: list[dict[str, Any]] = []
    spent = dict.fromkeys(_TOKENS, 0)
    spent_usd = 0.0
    for i, c in enumerate(r.llm_calls):
        tokens = {
            "input_tokens": c.input_tokens,
            "cached_input_tokens": c.cached_input_tokens,
            "cache_write_input_tokens": c.cache_write_input_tokens,
            "output_tokens": c.output_tokens,
            "reasoning_tokens": c.reasoning_tokens,
        }
        for k, v in tokens.items():
            spent[k] += v
        spent_usd += c.cost_usd
        rows.append(
            {
                **base,
                **tokens,
                "id": f"{r.id}:{i}",
                "kind": "call",
                "reason": None,
                "model": c.model,
                "provider": c.provider or None,
                "tier": c.tier,
                "status": c.status,
                "cost_usd": c.cost_usd,
                "saved_usd": 0.0,
            }
        )
    # tokens and cost on the record beyond its model calls: what an agent reported itself
    rest = {
        "input_tokens": max(r.input_tokens - spent["input_tokens"], 0),
        "cached_input_tokens": max(r.cached_input_tokens - spent["cached_input_tokens"], 0),
        "cache_write_input_tokens": 0,
        "output_tokens": max(r.output_tokens - spent["output_tokens"], 0),
        "reasoning_tokens": 0,
    }
    rest_usd = r.cost_usd - spent_usd
    if rest_usd > _EPSILON_USD or rest["input_tokens"] or rest["output_tokens"]:
        rows.append(
            {
                **base,
                **rest,
                "id": f"{r.id}:reported",
                "kind": "call",
                "reason": "agent_reported",
                "model": None,
                "provider": None,
                "tier": None,
                "status": "ok",
                "cost_usd": max(rest_usd, 0.0),
                "saved_usd": 0.0,
            }
        )
    for reason, usd in savings.items():
        rows.append(
            {
                **base,
                **dict.fromkeys(_TOKENS, 0),
                "id": f"{r.id}:saved:{reason}",
                "kind": "saving",
                "reason": reason,
                "model": None,
                "provider": None,
                "tier": None,
                "status": "ok",
                "cost_usd": 0.0,
                "saved_usd": usd,
            }
        )
    tags = [{"ledger_id": row["id"], "feature": f} for row in rows for f in features]
    return rows, tags


class LedgerStore:
    """The store's methods for the cost ledger (mixed into `Store`)."""

    engine: Engine
    backend: StoreBackend

    def _write_ledger(self, batch: list[Rows], records: Sequence[InteractionRecord]) -> None:
        """Add the ledger rows of `records` (and their feature tags) to `batch`, the rows that
        `Store.write_interactions` writes in the interactions' own transaction; rows already stored
        are skipped, so writing a batch twice adds nothing."""
        rows: list[tuple[Any, ...]] = []
        tags: list[tuple[Any, ...]] = []
        for r in records:
            more, more_tags = ledger_rows(r)
            rows += [tuple(row[n] for n in _LEDGER_COLUMNS) for row in more]
            tags += [tuple(t[n] for n in _FEATURE_COLUMNS) for t in more_tags]
        batch.append(Rows(_ledger, _LEDGER_COLUMNS, rows))
        batch.append(Rows(_features, _FEATURE_COLUMNS, tags))

    def _delete_ledger_before(self, cutoff: float, batch: int) -> int:
        """Delete ledger rows created before `cutoff` with their feature tags, oldest first, about
        `batch` rows per transaction (rows created at the same time as a batch's last go with it).
        Savings are ledger rows themselves; nothing else refers to the ledger. Returns rows deleted."""

        def upto(conn: Connection, gone: ColumnElement[bool]) -> int:
            conn.execute(delete(_features).where(_features.c.ledger_id.in_(select(_ledger.c.id).where(gone))))
            return conn.execute(delete(_ledger).where(gone)).rowcount or 0

        return delete_oldest(self.engine, _ledger.c.created_at, cutoff, None, batch, upto)

    def ledger_entries(
        self, interaction_id: str | None = None, *, since: float | None = None, limit: int | None = 1000
    ) -> list[dict[str, Any]]:
        """Ledger rows (of one interaction, or since a time), oldest first, as dicts."""
        query = select(_ledger)
        if interaction_id is not None:
            query = query.where(_ledger.c.interaction_id == interaction_id)
        if since is not None:
            query = query.where(_ledger.c.created_at >= since)
        query = query.order_by(_ledger.c.created_at, _ledger.c.id)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def ledger_totals(
        self,
        by: str | None = None,
        *,
        since: float | None = None,
        until: float | None = None,
        top: int | None = None,
        filters: dict[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Spend and savings totals, overall (`by` None: one row) or per value of a dimension
        (`LEDGER_DIMENSIONS`), biggest spend first (`day`: oldest first, `top` the newest days).

        Each row: key (None for rows without a value, e.g. no user), spent_usd, saved_usd,
        savings ({reason: usd}), calls, interactions, and the token buckets. By `feature`, a row
        tagged with two features counts in both.

        Args:
            since, until: creation time bounds (Unix seconds); since inclusive, until exclusive.
            top: at most this many keys.
            filters: dimension -> value that every row counted must have (e.g. {"agent": "support"}).
        """
        if by is not None and by not in LEDGER_DIMENSIONS:
            raise ValueError(
                f"cannot total the ledger by {by!r}; choose one of {', '.join(LEDGER_DIMENSIONS)}"
            )
        source: Any = _ledger
        if by == "feature" or (filters and "feature" in filters):
            source = _ledger.outerjoin(_features, _features.c.ledger_id == _ledger.c.id)
        key: ColumnElement[Any] | None = None
        if by is not None:
            key = _features.c.feature if by == "feature" else _ledger.c[LEDGER_DIMENSIONS[by]]
        where = _conditions(since, until, filters)
        c = _ledger.c
        spent = func.coalesce(func.sum(c.cost_usd), 0.0)
        saved = func.coalesce(func.sum(c.saved_usd), 0.0)
        totals = (
            spent.label("spent_usd"),
            saved.label("saved_usd"),
            func.coalesce(func.sum(case(((c.kind == "call") & c.reason.is_(None), 1), else_=0)), 0).label(
                "calls"
            ),
            func.count(func.distinct(c.interaction_id)).label("interactions"),
            *(func.coalesce(func.sum(c[t]), 0).label(t) for t in _TOKENS),
        )
        query: Select[Any] = select(*((key.label("key"),) if key is not None else ()), *totals).select_from(
            source
        )
        if where is not None:
            query = query.where(where)
        if key is not None:
            query = query.group_by(key)
            query = (
                query.order_by(key.desc()) if by == "day" else query.order_by(spent.desc(), saved.desc(), key)
            )
            if top is not None:
                query = query.limit(top)
        saving = c.kind == "saving"
        reasons = select(*((key.label("key"),) if key is not None else ()), c.reason, func.sum(c.saved_usd))
        reasons = reasons.select_from(source).where(saving if where is None else and_(where, saving))
        with self.engine.connect() as conn:
            rows = [dict(row._mapping) for row in conn.execute(query)]
            if key is None:
                rows[0]["key"] = None
            else:
                keys = [r["key"] for r in rows]
                if not keys:
                    return []
                named = [k for k in keys if k is not None]
                if len(named) <= _MAX_IN:  # else every key's savings (bind parameters are limited)
                    picked: list[ColumnElement[bool]] = [key.in_(named)] if named else []
                    if None in keys:
                        picked.append(key.is_(None))
                    reasons = reasons.where(or_(*picked))
            reasons = reasons.group_by(*((key,) if key is not None else ()), c.reason)
            by_key: dict[Any, dict[str, float]] = {}
            for found in conn.execute(reasons):
                k, reason, usd = (
                    (found[0], found[1], found[2]) if key is not None else (None, found[0], found[1])
                )
                by_key.setdefault(k, {})[reason] = float(usd or 0.0)
        if by == "day":
            rows.reverse()
        for row in rows:
            row["spent_usd"] = float(row["spent_usd"])
            row["saved_usd"] = float(row["saved_usd"])
            for t in (*_TOKENS, "calls", "interactions"):
                row[t] = int(row[t] or 0)
            row["savings"] = by_key.get(row["key"], {})
        return rows


def _conditions(
    since: float | None, until: float | None, filters: dict[str, str] | None
) -> ColumnElement[bool] | None:
    parts: list[ColumnElement[bool]] = []
    if since is not None:
        parts.append(_ledger.c.created_at >= since)
    if until is not None:
        parts.append(_ledger.c.created_at < until)
    for dim, value in (filters or {}).items():
        if dim not in LEDGER_DIMENSIONS:
            raise ValueError(
                f"cannot filter the ledger by {dim!r}; choose one of {', '.join(LEDGER_DIMENSIONS)}"
            )
        column = _features.c.feature if dim == "feature" else _ledger.c[LEDGER_DIMENSIONS[dim]]
        parts.append(column == value)
    return and_(*parts) if parts else None
