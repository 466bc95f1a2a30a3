"""Migrations: applied on open, a no-op the second time, safe when several processes start at once."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

import shipyard.store
from shipyard.store import Store, StoreError
from shipyard.store._migrate import MIGRATIONS_DIR, current_revision, head_revision
from shipyard.store._models import metadata

TABLES = {
    "interactions",
    "spans",
    "eval_runs",
    "eval_results",
    "approvals",
    "agent_versions",
    "api_keys",
    "dead_letters",
    "idempotency_keys",
}


def test_open_creates_every_table_at_head(db_url: str) -> None:
    with Store(db_url) as store:
        names = set(inspect(store.engine).get_table_names())
        assert TABLES | {"alembic_version"} <= names
        with store.engine.connect() as conn:
            assert current_revision(conn) == head_revision()


def test_applying_twice_is_a_no_op_and_keeps_data(db_url: str, record_factory) -> None:
    record = record_factory()
    with Store(db_url) as first:
        first.write_interactions([record])
        assert first.migrate() is False
    with Store(db_url) as second:
        assert second.migrate() is False
        assert second.get_interaction(record.id) is not None
        with second.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1


def test_migration_scripts_match_the_models(db_url: str) -> None:
    """A model change without a migration shows up here as a difference."""
    with Store(db_url) as store, store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert diff == []


def test_concurrent_opens_in_threads_all_succeed(db_url: str) -> None:
    errors: list[BaseException] = []
    stores: list[Store] = []
    lock = threading.Lock()

    def open_store() -> None:
        try:
            s = Store(db_url)
            with lock:
                stores.append(s)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert all(s.ping() for s in stores)
    for s in stores:
        s.close()


def test_concurrent_starts_in_processes_one_migrates(db_url: str) -> None:
    """Three processes open one empty database at the same moment; exactly one applies the migrations."""
    go = "import sys; from shipyard.store import Store; print(Store(sys.argv[1], migrate=False).migrate())"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", go, db_url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err for _, err in results]
    assert sorted(out.strip() for out, _ in results) == ["False", "False", "True"]
    with Store(db_url) as store:
        assert set(inspect(store.engine).get_table_names()) >= TABLES


def test_a_schema_newer_than_this_shipyard_is_a_clear_error(db_url: str) -> None:
    Store(db_url).close()
    engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    engine.dispose()
    with pytest.raises(StoreError) as e:
        Store(db_url)
    assert "9999_from_the_future" in str(e.value)
    assert "upgrade shipyard" in (e.value.hint or "")


def test_migration_scripts_ship_inside_the_package() -> None:
    package = Path(shipyard.store.__file__).parent
    assert MIGRATIONS_DIR.parent == package
    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert (MIGRATIONS_DIR / "script.py.mako").is_file()
    assert (MIGRATIONS_DIR / "versions" / "0001_initial.py").is_file()
    # the folders are packages, so setuptools ships their .py files
    assert (MIGRATIONS_DIR / "__init__.py").is_file()
    assert (MIGRATIONS_DIR / "versions" / "__init__.py").is_file()
