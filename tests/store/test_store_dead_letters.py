"""Dead letters: a record the database refuses is found, kept with its reason, and blocks nothing."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import pytest

from shipyard.store import (
    DeadLetter,
    InteractionRecord,
    Store,
    dead_letter_for,
    is_refusal,
    isolate,
)

Factory = Callable[..., InteractionRecord]


def refused_records(store: Store, make: Factory) -> list[InteractionRecord]:
    """Records this database refuses, even sanitized: a number out of range everywhere; on PostgreSQL
    also the oversized session id of issue 8, and NUL bytes beside a number out of range (NUL bytes
    alone are stored sanitized: test_store_sanitize.py)."""
    bad = [make(input_tokens=2**63)]
    if store.dialect == "postgresql":
        bad += [
            make(session_id=secrets.token_urlsafe(6000)),  # over btree's 2,704-byte index row
            make(input="a\x00b", output_tokens=2**63),
        ]
    return bad


def test_a_batch_with_refused_records_stores_every_other_one(store: Store, record_factory: Factory) -> None:
    bad = refused_records(store, record_factory)
    good = [record_factory() for _ in range(50)]
    batch = [good[0], *bad[:1], *good[1:25], *bad[1:], *good[25:]]
    with pytest.raises(Exception) as whole:
        store.write_interactions(batch)
    assert is_refusal(whole.value)
    refused = isolate(store.write_interactions, batch)
    assert [r.id for r, _ in refused] == [r.id for r in bad]
    assert all(is_refusal(e) for _, e in refused)
    assert store.count_interactions() == 50
    assert all(store.get_interaction(r.id) is not None for r in good)


def test_a_dead_letter_keeps_the_reason_and_the_whole_record(store: Store, record_factory: Factory) -> None:
    bad = refused_records(store, record_factory)[-1]
    ((record, error),) = isolate(store.write_interactions, [bad])
    letter = dead_letter_for(record, error)
    store.add_dead_letter(letter)
    found = store.get_dead_letter(bad.id)  # by the record's id, or by its own
    assert found is not None and found == store.get_dead_letter(letter.id)
    assert found.kind == "interaction" and found.attempts == 1 and found.reason
    assert "INSERT" not in found.reason and "parameters" not in found.reason  # no SQL, no content dump
    assert found.record() == bad  # NUL bytes and all: the payload is JSON text, not JSONB
    store.add_dead_letter(dead_letter_for(record, error))  # refused again: one letter, two attempts
    assert store.count_dead_letters() == 1 and store.get_dead_letter(bad.id).attempts == 2  # type: ignore[union-attr]
    assert [d.id for d in store.list_dead_letters()] == [letter.id]
    assert store.list_dead_letters(since=found.created_at + 1) == []


def test_retrying_a_dead_letter(store: Store, record_factory: Factory) -> None:
    bad = record_factory(input_tokens=2**63)
    ((record, error),) = isolate(store.write_interactions, [bad])
    letter = dead_letter_for(record, error)
    store.add_dead_letter(letter)
    still = store.retry_dead_letter(letter)  # the database refuses it again
    assert still is not None and still.attempts == 2 and still.last_attempt_at is not None
    fixed = record_factory(id=bad.id)  # someone repaired the record (a file, or a newer Shipyard)
    repaired = DeadLetter(
        kind="interaction",
        record_id=fixed.id,
        error_type=letter.error_type,
        reason=letter.reason,
        payload=dead_letter_for(fixed, error).payload,
    )
    assert repaired.id == letter.id  # one record, one dead letter
    assert store.retry_dead_letter(repaired) is None
    assert store.get_interaction(bad.id) is not None
    assert store.count_dead_letters() == 0


def test_a_database_that_cannot_be_reached_is_no_refusal(record_factory: Factory) -> None:
    down = Store("postgresql://postgres@127.0.0.1:1/test?connect_timeout=2", migrate=False)
    with pytest.raises(Exception) as e:
        down.write_interactions([record_factory()])
    assert not is_refusal(e.value)
    with pytest.raises(type(e.value)):  # nothing is dead-lettered: the caller keeps the batch
        isolate(down.write_interactions, [record_factory(), record_factory()])
    down.close()


def test_dead_letter_times_are_when_each_was_first_refused_oldest_first(store: Store) -> None:
    for i, at in enumerate((300.0, 100.0, 200.0, 50.0)):
        store.add_dead_letter(
            DeadLetter("interaction", f"r{i}", "DataError", "out of range", "{}", created_at=at)
        )
    assert store.dead_letter_times(100.0) == [100.0, 200.0, 300.0]
    assert store.dead_letter_times(0.0, limit=2) == [200.0, 300.0]  # the newest
    assert store.dead_letter_times(301.0) == []
