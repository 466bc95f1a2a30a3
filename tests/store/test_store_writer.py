"""The batch writer: nothing lost on close, retries while the database is locked, bad rows isolated."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url
from waiting import wait_until

from shipyard.store import BatchWriter, InteractionRecord, Store

Factory = Callable[..., InteractionRecord]


def test_many_records_from_several_threads_all_land_on_close(store: Store, record_factory: Factory) -> None:
    writer = BatchWriter(store, batch_size=64, flush_interval_ms=50)
    per_thread, threads = 300, 6
    ids: list[list[str]] = [[] for _ in range(threads)]

    def produce(n: int) -> None:
        for _ in range(per_thread):
            r = record_factory(session_id=f"thread-{n}")
            ids[n].append(r.id)
            writer.submit(r)

    workers = [threading.Thread(target=produce, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert writer.close() is True

    stats = writer.stats()
    total = per_thread * threads
    assert (stats["submitted"], stats["written"], stats["failed"], stats["pending"]) == (total, total, 0, 0)
    assert stats["batches"] >= total // 64
    assert store.count_interactions() == total
    for n in range(threads):
        got = {r.id for r in store.list_interactions(session_id=f"thread-{n}", limit=None)}
        assert got == set(ids[n])
    some = store.get_interaction(ids[0][0], spans=True)
    assert some is not None and len(some.spans) == 2  # spans went in with their interaction


def test_flush_waits_for_everything_submitted(store: Store, record_factory: Factory) -> None:
    # a long interval: only flush() makes these records go now
    with BatchWriter(store, batch_size=1000, flush_interval_ms=60_000) as writer:
        records = [record_factory() for _ in range(10)]
        for r in records:
            writer.submit(r)
        assert writer.flush(timeout=30) is True
        assert store.count_interactions() == 10
        assert writer.stats()["pending"] == 0
        assert writer.flush(timeout=30) is True  # nothing pending: returns at once


def test_close_twice_and_submit_after_close(store: Store, record_factory: Factory) -> None:
    writer = BatchWriter(store)
    writer.submit(record_factory())
    assert writer.close() is True
    assert writer.close() is True
    with pytest.raises(RuntimeError, match="closed"):
        writer.submit(record_factory())
    assert store.count_interactions() == 1


def test_a_bad_record_fails_alone_and_the_thread_lives_on(
    store: Store, record_factory: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    good = [record_factory() for _ in range(9)]
    bad = record_factory(status=None)  # NOT NULL column: no retry can store this
    writer = BatchWriter(store, batch_size=100, flush_interval_ms=10)
    with caplog.at_level(logging.ERROR, logger="shipyard.store"):
        for r in [*good[:4], bad, *good[4:]]:
            writer.submit(r)
        assert writer.flush(timeout=30)
    assert writer.stats()["written"] == 9 and writer.stats()["failed"] == 1
    assert bad.id in caplog.text
    assert store.count_interactions() == 9
    kept = store.get_dead_letter(bad.id)  # kept aside with the reason, not just logged
    assert kept is not None and kept.record().id == bad.id and "null" in kept.reason.lower()
    later = record_factory()
    writer.submit(later)  # the thread survived
    assert writer.close() is False  # something was lost (the bad record), and close says so
    assert store.get_interaction(later.id) is not None


@contextlib.contextmanager
def write_locked(db_url: str) -> Iterator[str]:
    """Another session holds the write lock on `interactions` until the block ends. Yields a URL
    whose connections give up waiting for a lock quickly, so the lock surfaces as an error."""
    Store(db_url).close()  # create the tables
    if db_url.startswith("sqlite"):
        path = make_url(db_url).database
        assert path is not None
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            yield f"{db_url}?timeout=0.05"
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    plain = db_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain) as pg_holder:
        pg_holder.execute("LOCK TABLE interactions IN ACCESS EXCLUSIVE MODE")
        try:
            yield f"{db_url}%20-clock_timeout%3D50"  # appended to the fixture's `options`
        finally:
            pg_holder.rollback()


def test_a_locked_database_is_retried_until_it_frees(db_url: str, record_factory: Factory) -> None:
    records = [record_factory() for _ in range(25)]
    with write_locked(db_url) as url:
        store = Store(url)
        writer = BatchWriter(store, batch_size=10, flush_interval_ms=10, max_backoff_s=0.1)
        for r in records:
            writer.submit(r)
        wait_until(lambda: writer.stats()["retries"] >= 3, "the writer to retry the locked database")
        assert writer.stats()["written"] == 0 and writer.stats()["failed"] == 0
    assert writer.flush(timeout=30) is True
    assert writer.close() is True
    assert writer.stats()["written"] == 25 and writer.stats()["failed"] == 0
    assert store.count_interactions() == 25
    store.close()


def test_close_gives_up_on_a_database_that_stays_locked(
    db_url: str, record_factory: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    with write_locked(db_url) as url:
        store = Store(url)
        writer = BatchWriter(store, batch_size=10, flush_interval_ms=10, max_backoff_s=0.05)
        with caplog.at_level(logging.ERROR, logger="shipyard.store"):
            for _ in range(5):
                writer.submit(record_factory())
            assert writer.close(timeout=0.5) is False  # returns, and says records were lost
        assert writer.stats()["failed"] == 5
        assert "not written" in caplog.text
    store.close()


def test_writer_uses_the_config_batch_settings(store: Store) -> None:
    from shipyard.config import ShipyardConfig

    cfg = ShipyardConfig.model_validate({"store": {"batch_size": 7, "flush_interval_ms": 30}})
    with BatchWriter.from_config(store, cfg) as writer:
        assert (writer.batch_size, writer.interval) == (7, 0.03)


def test_an_in_memory_database_is_shared_with_the_writer_thread(record_factory: Factory) -> None:
    with Store("sqlite://") as store:
        with BatchWriter(store) as writer:
            for _ in range(20):
                writer.submit(record_factory())
        assert writer.stats()["written"] == 20
        assert store.count_interactions() == 20
