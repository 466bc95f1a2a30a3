"""Size-based retention bounds what the database holds on disk: the interactions and their spans with
their indexes, on SQLite (their pages, read here from `dbstat`) and PostgreSQL (their relations'
size), while traffic keeps arriving; the cost ledger is not part of it."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text

from shipyard.store import InteractionRecord, Store, _retention

FRESH_DATABASE = True  # sizes on disk: each test's database is new (conftest.py's `store`)
NOW = 1_700_000_000.0
ROUND = 300  # interactions written between two prunes


def disk_bytes(store: Store) -> tuple[int, int, int]:
    """(bytes the interactions and spans tables with their indexes take on disk, bytes of the whole
    database, bytes of SQLite's free pages), read with the database's own tools, not the store's."""
    if store.dialect == "sqlite":
        path = store.engine.url.database
        assert path is not None
        conn = sqlite3.connect(path)
        try:
            names = [
                row[0]
                for row in conn.execute(
                    "SELECT name FROM sqlite_schema WHERE tbl_name IN ('interactions', 'spans')"
                )
            ]
            used = sum(
                conn.execute("SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name = ?", (n,)).fetchone()[0]
                for n in names
            )
            (pages,) = conn.execute("PRAGMA page_count").fetchone()
            (free,) = conn.execute("PRAGMA freelist_count").fetchone()
            (page_size,) = conn.execute("PRAGMA page_size").fetchone()
            return int(used), int(pages * page_size), int(free * page_size)
        finally:
            conn.close()
    with store.engine.connect() as conn:
        tables = conn.execute(
            text("SELECT pg_total_relation_size('interactions') + pg_total_relation_size('spans')")
        ).scalar_one()
        everything = conn.execute(
            text(
                "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND c.relkind = 'r'"
            )
        ).scalar_one()
        return int(tables), int(everything), 0


def write(
    store: Store, make: Callable[..., InteractionRecord], first: int, n: int
) -> list[InteractionRecord]:
    records = [make(created_at=NOW + first + i) for i in range(n)]  # one second apart, in order
    store.write_interactions(records)
    return records


def test_records_bytes_is_what_the_tables_take_on_disk(
    store: Store, record_factory: Callable[..., InteractionRecord]
) -> None:
    assert store.records_bytes() == 0
    records = write(store, record_factory, 0, 1500)
    measured = store.records_bytes()
    on_disk, _, _ = disk_bytes(store)
    if store.dialect == "sqlite":
        assert measured == on_disk  # the pages themselves
    else:  # nothing deleted yet: the relations hold only live rows, which the store estimates
        assert 0.85 * on_disk <= measured <= on_disk
    # far more than the text of the rows: indexes, page headers, free room in pages
    texts = sum(len(r.input) + len(r.output) + len(str(r.metadata)) for r in records)
    assert measured > 2 * texts


def test_size_retention_keeps_the_tables_on_disk_within_the_limit_under_traffic(
    store: Store, record_factory: Callable[..., InteractionRecord]
) -> None:
    write(store, record_factory, 0, 1000)
    limit = store.records_bytes()  # about 1,000 interactions
    newest: list[InteractionRecord] = []
    sizes: list[tuple[int, int, int]] = []
    for k in range(1, 9):
        newest = write(store, record_factory, k * 10_000, ROUND)
        result = store.prune(max_bytes=limit, now=NOW + 10**6)
        assert result.deleted > 0 and result.bytes_before > limit
        assert result.bytes_after <= limit and store.records_bytes() == result.bytes_after
        sizes.append(disk_bytes(store))
        kept = store.count_interactions()
        assert 600 <= kept <= 1000  # the limit's worth, give or take pages not yet empty
        # the newest stayed, the oldest went
        listed = store.list_interactions(limit=None, oldest_first=True)
        assert [r.id for r in listed[-ROUND:]] == [r.id for r in newest]
        assert listed[0].created_at > NOW + 1000 + (k - 4) * 10_000
    tables = [t for t, _, _ in sizes]
    if store.dialect == "sqlite":
        # the pages in use never pass the limit, and the file's free pages take the next rounds' rows:
        # the tables' pages and the free ones stop growing (the ledger is the rest of the file's growth)
        assert max(tables) <= limit
        held = [t + free for t, _, free in sizes]
        assert max(held[4:]) <= max(held[:4]) * 1.05
    # PostgreSQL: the relations keep room for a round's rows and for dead rows until VACUUM can take
    # them, which a transaction open elsewhere in the database holds back; only the live rows are
    # the store's to bound (`bytes_after` above), measured against the relations in the test before


def test_the_cost_ledger_is_not_counted_nor_pruned_by_size(
    store: Store, record_factory: Callable[..., InteractionRecord]
) -> None:
    write(store, record_factory, 0, 600)
    before = len(store.ledger_entries(limit=None))
    assert before >= 600  # a row per model call
    size = store.records_bytes()
    _, whole, _ = disk_bytes(store)
    assert size < whole  # the ledger and every other table are outside it
    result = store.prune(max_bytes=size // 3, now=NOW + 10**6)
    assert result.deleted > 0 and result.bytes_after <= size // 3
    assert len(store.ledger_entries(limit=None)) == before


def test_a_sqlite_without_dbstat_apportions_its_used_pages(
    tmp_path: Path, record_factory: Callable[..., InteractionRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'plain.db'}")
    try:
        write(store, record_factory, 0, 1500)
        exact = store.records_bytes()

        def no_dbstat(conn: object, name: str) -> int:
            raise sqlite3.OperationalError("no such table: dbstat")

        monkeypatch.setattr(_retention, "_dbstat", no_dbstat)
        estimated = store.records_bytes()
        _, whole, free = disk_bytes(store)
        assert estimated < whole - free  # the ledger and the other tables are left out
        assert 0.6 * exact <= estimated <= 1.4 * exact
    finally:
        store.close()
