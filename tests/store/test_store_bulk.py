"""The write path's bulk inserts (store/_bulk.py): COPY on PostgreSQL with a fallback for rows already
stored, one prepared executemany on SQLite; every field kept; a lost connection is no refusal; the
dashboard's filtered lists use their indexes."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from testdb import PG_DSN

import shipyard.store._bulk as bulk
from shipyard.store import InteractionRecord, Store, is_refusal
from shipyard.store._store import INTERACTION_COLUMNS, SPAN_COLUMNS, _interactions, _spans

Factory = Callable[..., InteractionRecord]


def test_the_row_tuples_name_every_column_in_table_order() -> None:
    assert tuple(c.name for c in _interactions.columns) == INTERACTION_COLUMNS
    assert tuple(c.name for c in _spans.columns) == SPAN_COLUMNS


def test_a_batch_partly_stored_already_stores_the_rest_once(store: Store, record_factory: Factory) -> None:
    tagged: dict[str, Any] = {"ledger": {"features": ["guardrails"], "savings": {"cache": 0.001}}}
    first = [record_factory(metadata=tagged) for _ in range(2)]
    store.write_interactions(first)
    more = [record_factory(metadata=tagged) for _ in range(3)]
    store.write_interactions([*first, *more])  # on PostgreSQL the COPY meets stored rows: INSERT instead
    assert store.count_interactions() == 5
    for r in [*first, *more]:
        got = store.get_interaction(r.id, spans=True)
        assert got is not None and got.to_dict(spans=True) == r.to_dict(spans=True)
        # one model call and one saving each, written once
        assert sorted(e["kind"] for e in store.ledger_entries(r.id)) == ["call", "saving"]
    with store.engine.connect() as conn:
        tags = conn.execute(text("SELECT count(*) FROM ledger_features")).scalar_one()
    assert tags == 10


def test_feedback_written_with_the_record_round_trips(store: Store, record_factory: Factory) -> None:
    rated = record_factory(feedback={"thumbs": -1, "score": 2.5, "comment": "slow", "at": 1_700_000_000.25})
    plain = record_factory()
    store.write_interactions([rated, plain])
    got = store.get_interaction(rated.id)
    assert got is not None and got.feedback == rated.feedback
    assert store.get_interaction(plain.id).feedback is None  # type: ignore[union-attr]


def test_json_values_and_nulls_are_kept_as_before(store: Store, record_factory: Factory) -> None:
    r = record_factory(user_id=None, error="boom", metadata={"k": [1, None, {"x": "ü"}]}, guardrails=[])
    r.spans[0].attributes = {}
    store.write_interactions([r])
    got = store.get_interaction(r.id, spans=True)
    assert got is not None and got.to_dict(spans=True) == r.to_dict(spans=True)


@pytest.mark.postgres
def test_a_connection_lost_in_the_middle_of_a_copy_is_no_refusal(
    db_url: str, record_factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("COPY is PostgreSQL's")
    name = f"bulk_{uuid.uuid4().hex[:10]}"
    store = Store(f"{db_url}&application_name={name}")
    try:
        store.write_interactions([record_factory()])
        copy = bulk._copy
        killed: list[bool] = []

        def copy_on_a_dead_connection(conn: Any, rows: bulk.Rows) -> None:
            if not killed:
                killed.append(True)
                with psycopg.connect(PG_DSN, autocommit=True) as admin:
                    admin.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                        (name,),
                    )
            copy(conn, rows)

        monkeypatch.setattr(bulk, "_copy", copy_on_a_dead_connection)
        lost = record_factory()
        with pytest.raises(Exception) as raised:
            store.write_interactions([lost])
        assert not is_refusal(raised.value)  # the writer retries it, it is no dead letter
        store.write_interactions([lost])  # the pool opens a new connection
        assert store.count_interactions() == 2
    finally:
        store.close()


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        ({"status": "failed"}, "ix_interactions_status_created"),
        ({"traffic_source": "shadow"}, "ix_interactions_traffic_source_created"),
        ({"version": "support@1.0.0+abc1234"}, "ix_interactions_version_created"),
        ({"agent": "support", "version": "support@1.0.0+abc1234"}, "ix_interactions_agent_version_created"),
    ],
)
def test_the_dashboard_trace_list_filters_use_their_index(
    tmp_path: Any, filters: dict[str, str], index: str
) -> None:
    """SQLite's plan (deterministic without ANALYZE): the filtered, newest-first list reads its index
    in order, no sort. (PostgreSQL's plans, which depend on statistics, are in the lead's report.)"""
    with Store(f"sqlite:///{tmp_path / 'plans.db'}") as store, store.engine.connect() as conn:
        where = " AND ".join(f"{k} = :{k}" for k in filters)
        plan = " | ".join(
            str(row[-1])
            for row in conn.execute(
                text(
                    f"EXPLAIN QUERY PLAN SELECT * FROM interactions WHERE {where} ORDER BY created_at DESC LIMIT 25"
                ),
                filters,
            )
        )
    assert index in plan and "TEMP B-TREE" not in plan, plan
