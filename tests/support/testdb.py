"""Test databases: fresh ones (a SQLite file, or a schema of its own in the local PostgreSQL), and
empty ones at the newest schema that are copied or emptied rather than migrated again for each test.

Shared by several test folders (pytest puts `tests/support` on the import path).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import graphlib
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
KINDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
"""Parameters of a `db_url`-style fixture: every test runs on both."""


@functools.cache
def postgres_problem() -> str | None:
    """Why the local PostgreSQL cannot be used, or None when it can."""
    try:
        with psycopg.connect(PG_DSN, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as e:
        return f"PostgreSQL at 127.0.0.1:5432 (db 'test') is unreachable: {e}".strip()
    return None


def pg_schema_url(schema: str) -> str:
    return f"{PG_DSN}?options=-csearch_path%3D{schema}"


@contextlib.contextmanager
def fresh_database(kind: str, folder: Path) -> Iterator[str]:
    """A URL to an empty database: `sqlite` (a file in `folder`) or `postgresql` (a new schema,
    dropped afterwards; the test is skipped when PostgreSQL is unreachable)."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'shipyard.db'}"
        return
    problem = postgres_problem()
    if problem:
        pytest.skip(problem)
    schema = f"shipyard_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield pg_schema_url(schema)
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@functools.cache
def _migrated_template() -> Path:
    """An empty SQLite database `Store` migrated, once per process (removed at exit)."""
    from shipyard.store import Store

    folder = Path(tempfile.mkdtemp(prefix="shipyard-migrated-"))
    atexit.register(shutil.rmtree, folder, True)
    Store(f"sqlite:///{folder / 'shipyard.db'}").close()
    return folder / "shipyard.db"


def migrated_sqlite(path: Path) -> str:
    """Put an empty SQLite database at the newest schema at `path` (replacing a file there) and return
    its URL: a copy of the one this process had `Store` migrate first, the same empty database a fresh
    migration gives. A store opened on it migrates nothing: the migrations' DDL through Alembic takes
    some 60 ms of CPU per database, and hundreds of tests start on an empty store (the migrations
    themselves are test_store_migrations')."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    with (
        contextlib.closing(sqlite3.connect(_migrated_template())) as src,
        contextlib.closing(sqlite3.connect(path)) as dst,
    ):
        src.backup(dst)  # the whole database, whatever its journal holds
    return f"sqlite:///{path}"


def at_newest_schema(url: str) -> str:
    """`url`, of a database not made yet (a fresh_database's, a new project's default), with its schema
    in place for a `Store` to open: a SQLite file not there yet becomes a migrated copy
    (migrated_sqlite); PostgreSQL's schema is left to the store's own migration. Returns `url`."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.exists():
            migrated_sqlite(path)
    return url


def _tables(conn: psycopg.Connection[tuple[Any, ...]]) -> set[str]:
    return {t for (t,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}


def _emptied(url: str) -> str:
    """Every table of the PostgreSQL schema at `url` emptied and its sequences restarted, as a freshly
    migrated schema has them (Alembic's revision row kept); returns `url`. Rows are deleted, children
    before the tables they refer to (a TRUNCATE of every table costs more than this whole emptying).
    A connection a test left holding a lock is an error here, not a hang."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET lock_timeout = '60s'")
        tables = _tables(conn) - {"alembic_version"}
        refers: dict[str, set[str]] = {t: set() for t in tables}  # table -> the tables that refer to it
        for child, parent in conn.execute(
            "SELECT ch.relname, pa.relname FROM pg_constraint c"
            " JOIN pg_class ch ON ch.oid = c.conrelid JOIN pg_class pa ON pa.oid = c.confrelid"
            " WHERE c.contype = 'f' AND c.connamespace = current_schema()::regnamespace"
        ):
            refers.setdefault(parent, set()).add(child)
        sequences = [
            q
            for (q,) in conn.execute(
                "SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()"
            )
        ]
        assert tables, url
        with conn.transaction():
            for t in graphlib.TopologicalSorter(refers).static_order():  # children first
                conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(t)))
            for q in sequences:
                conn.execute(sql.SQL("ALTER SEQUENCE {} RESTART").format(sql.Identifier(q)))
    return url


_MIGRATED_SCHEMA: list[tuple[str, set[str]]] = []
"""This process's migrated PostgreSQL schema: (its name, its tables at head)."""


def _drop_schema(schema: str) -> None:
    with contextlib.suppress(psycopg.Error), psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute("SET lock_timeout = '10s'")
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def migrated_postgresql() -> str:
    """A URL to an empty PostgreSQL schema at the newest schema: this process's one, migrated once and
    emptied for each use (`_emptied`), or made again when a test left it without one of its tables (a
    table dropped, or renamed and not back). The test is skipped when PostgreSQL is unreachable."""
    problem = postgres_problem()
    if problem:
        pytest.skip(problem)
    if _MIGRATED_SCHEMA:
        schema, at_head = _MIGRATED_SCHEMA[0]
        with psycopg.connect(pg_schema_url(schema)) as conn:
            intact = _tables(conn) == at_head
        if intact:
            return _emptied(pg_schema_url(schema))
        _drop_schema(schema)
        _MIGRATED_SCHEMA.clear()
    from shipyard.store import Store

    schema = f"shipyard_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    atexit.register(_drop_schema, schema)
    Store(pg_schema_url(schema)).close()
    with psycopg.connect(pg_schema_url(schema)) as conn:
        _MIGRATED_SCHEMA.append((schema, _tables(conn)))
    return pg_schema_url(schema)


def newest_schema_database(kind: str, folder: Path) -> str:
    """A URL to an empty database at the newest schema, for a `Store` that need not migrate it:
    SQLite, a migrated copy in `folder` (migrated_sqlite); PostgreSQL, migrated_postgresql."""
    if kind == "sqlite":
        return migrated_sqlite(folder / "shipyard.db")
    return migrated_postgresql()
