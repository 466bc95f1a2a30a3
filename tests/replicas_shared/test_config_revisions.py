"""Config revisions in the store (store/_config_revisions.py): replicas recording at once, each with a
Store of its own on one PostgreSQL schema (SQLite when PostgreSQL is unreachable), lose none."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from testdb import fresh_database, postgres_problem

from shipyard.store import Store


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[list[Store]]:
    kind = "sqlite" if postgres_problem() else "postgresql"
    with fresh_database(kind, tmp_path) as url:
        out = [Store(url) for _ in range(2)]
        yield out
        for s in out:
            s.close()


def test_the_same_hash_is_one_revision(stores: list[Store]) -> None:
    a, b = stores
    first = a.record_config_revision("p", "h1", by="a", trigger="start")
    assert first["revision"] == 1
    assert b.record_config_revision("p", "h1", by="b", trigger="start")["revision"] == 1  # the fleet runs it
    assert (
        b.record_config_revision("p", "h2", by="b", trigger="api", changes={"agents": ["x"]})["revision"] == 2
    )
    newest = a.config_revision("p")
    assert newest is not None and (newest["config_hash"], newest["recorded_by"]) == ("h2", "b")
    assert newest["changes"] == {"agents": ["x"]}
    assert a.config_revision("other") is None


def test_two_replicas_recording_at_once_lose_none(stores: list[Store]) -> None:
    barrier = threading.Barrier(2)

    def record(store: Store, who: str) -> None:
        barrier.wait()
        for i in range(15):
            store.record_config_revision("p", f"{who}-{i}", by=who, trigger="api")

    threads = [threading.Thread(target=record, args=(s, f"r{n}")) for n, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = stores[0].config_revisions("p", limit=100)
    assert [r["revision"] for r in rows] == list(range(30, 0, -1))  # numbered once each, no gap
    assert sorted(r["config_hash"] for r in rows) == sorted(f"r{n}-{i}" for n in range(2) for i in range(15))
