"""Retention: the store deletes its oldest interactions (with their spans) by age and by size, on SQLite
and on PostgreSQL, and keeps everything else."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from shipyard.store import InteractionRecord, Store

FRESH_DATABASE = True  # sizes on disk: each test's database is new (conftest.py's `store`)
NOW = 1_700_000_000.0
DAY = 86400.0


def fill(
    store: Store, make: Callable[..., InteractionRecord], ages_days: list[float]
) -> list[InteractionRecord]:
    records = [make(created_at=NOW - age * DAY) for age in ages_days]
    store.write_interactions(records)
    return records


def test_prune_by_age_deletes_old_interactions_and_their_spans(
    store: Store, record_factory: Callable[..., InteractionRecord]
) -> None:
    records = fill(store, record_factory, [40, 35, 31, 29, 10, 1, 0.5])
    result = store.prune(max_age_s=30 * DAY, now=NOW, batch=2)  # several transactions
    assert result.deleted == 3
    assert store.count_interactions() == 4
    for r in records[:3]:
        assert store.get_interaction(r.id) is None and store.get_trace(r.trace_id) == []
    for r in records[3:]:
        kept = store.get_interaction(r.id, spans=True)
        assert kept is not None and len(kept.spans) == 2
    assert result.bytes_after < result.bytes_before
    assert store.prune(max_age_s=30 * DAY, now=NOW).deleted == 0  # nothing more to do


def test_prune_by_size_keeps_the_newest_within_the_limit(
    store: Store, record_factory: Callable[..., InteractionRecord]
) -> None:
    records = fill(store, record_factory, [float(600 - i) / 10 for i in range(600)])  # oldest first
    size = store.records_bytes()  # on disk, with the indexes (test_store_retention_disk.py)
    per = size / 600
    assert 1000 < per < 10_000  # a realistic record with two spans, its index entries and page room
    result = store.prune(max_bytes=int(size * 0.4), now=NOW, batch=70)
    assert result.bytes_before == size and result.bytes_after <= size * 0.4
    left = store.count_interactions()
    # 40% of the bytes: 40% of the records, less some for index pages that a delete leaves part full
    assert 0.3 * 600 <= left <= 0.41 * 600 and result.deleted == 600 - left
    # the oldest went, the newest stayed
    assert store.get_interaction(records[0].id) is None
    assert store.get_interaction(records[-1].id) is not None
    kept = store.list_interactions(limit=None, oldest_first=True)
    assert [r.id for r in kept] == [r.id for r in records[600 - left :]]


def test_prune_keeps_other_records_and_needs_a_limit_to_do_anything(
    store: Store, record_factory: Callable[..., InteractionRecord]
) -> None:
    fill(store, record_factory, [400, 300])
    run = store.create_eval_run("support", "support@1.0.0+abc1234", ["smoke"], stage="pre_merge")
    assert store.prune(now=NOW).deleted == 0 and store.count_interactions() == 2
    assert store.prune(max_age_s=DAY, max_bytes=10**12, now=NOW).deleted == 2
    assert store.get_eval_run(run) is not None
    assert store.records_bytes() == 0


def test_an_empty_store_prunes_nothing(store: Store) -> None:
    result = store.prune(max_age_s=1.0, max_bytes=0, now=NOW)
    assert (result.deleted, result.bytes_before, result.bytes_after) == (0, 0, 0)


@pytest.mark.parametrize("batch", [1, 3, 1000])
def test_ties_at_the_edge_of_a_batch_are_deleted_together(
    store: Store, record_factory: Callable[..., InteractionRecord], batch: int
) -> None:
    fill(store, record_factory, [50, 50, 50, 20])
    assert store.prune(max_age_s=30 * DAY, now=NOW, batch=batch).deleted == 3
    assert store.count_interactions() == 1
