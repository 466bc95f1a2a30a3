"""Fresh test databases: a SQLite file, or a schema of its own in the local PostgreSQL.

Shared by the store and server tests (pytest puts `tests/support` on the import path).
"""

from __future__ import annotations

import contextlib
import functools
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

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
