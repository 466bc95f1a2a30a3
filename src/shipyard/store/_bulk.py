"""Bulk inserts for the write path: rows as tuples in column order, sent the way the driver takes
them best, several tables in one transaction.

- PostgreSQL through psycopg: `COPY ... FROM STDIN`, one round trip per table per batch, the values
  turned into text by psycopg's C code. COPY has no ON CONFLICT: a batch that meets a row already
  stored (a journal replayed after a crash, a batch written twice) fails with a unique violation,
  which `write_rows` answers by writing the whole batch again with INSERT ... ON CONFLICT DO NOTHING
  in a new transaction. Every other error is raised as SQLAlchemy would have raised it
  (`sqlalchemy.exc.DBAPIError` with the driver's error and its SQLSTATE as `orig`), so
  `is_refusal` tells a refused record from a database that is down just as before.
- Any other database (SQLite): one prepared INSERT ... ON CONFLICT DO NOTHING, run with the
  driver's executemany on plain tuples; no SQLAlchemy statement compilation or type processing per
  row.

JSON columns are given already encoded (`dumps`), once per value; the few typed columns that need
a conversion (timestamps on SQLite) are named in `Rows.convert`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Column, ColumnElement, Connection, Engine, Table, func, select
from sqlalchemy.exc import DBAPIError


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return str(obj)  # anything else a tool returned: keep its text rather than lose the record


def dumps(obj: Any) -> str:
    """A value as JSON text, as the store writes its JSON columns (dataclasses as objects, sets as
    lists, datetimes as RFC 3339, anything else orjson cannot take as its `str()`)."""
    return orjson.dumps(obj, default=_json_default, option=orjson.OPT_NON_STR_KEYS).decode()


@dataclass(slots=True)
class Rows:
    """Rows of one table for a bulk insert.

    Attributes:
        table: the SQLAlchemy table (its name and column types).
        columns: the column names, in the order of each row's values.
        rows: one tuple per row; JSON columns already encoded with `dumps`.
        convert: names of columns whose non-null values go through the column type's bind processor
            on the INSERT path (e.g. timestamps on SQLite); COPY takes them as they are.
    """

    table: Table
    columns: Sequence[str]
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    convert: Sequence[str] = ()


class _Duplicate(Exception):
    """A COPY met a row already stored."""


_UNIQUE_VIOLATION = "23505"


def can_copy(engine: Engine) -> bool:
    """True when the engine's driver does COPY the way `write_rows` uses it (psycopg 3)."""
    return engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg"


def write_rows(engine: Engine, batch: Sequence[Rows], *, copy: bool) -> None:
    """Insert every table's rows of `batch` in one transaction; rows whose key is already stored are
    skipped. `copy`: use COPY (PostgreSQL through psycopg, `can_copy`)."""
    batch = [b for b in batch if b.rows]
    if not batch:
        return
    if copy:
        try:
            with engine.begin() as conn:
                for b in batch:
                    _copy(conn, b)
            return
        except _Duplicate:
            pass  # some rows are stored already: write the batch again, skipping those
    with engine.begin() as conn:
        for b in batch:
            insert_rows(conn, b)


def insert_rows(conn: Connection, b: Rows) -> None:
    """INSERT ... ON CONFLICT DO NOTHING of `b`'s rows on `conn` (its transaction), with executemany."""
    if not b.rows:
        return
    dialect = conn.dialect
    rows = b.rows
    if b.convert:
        rows = _converted(b, dialect)
    sql, shape = _insert_sql(b.table.name, tuple(b.columns), dialect.paramstyle)
    conn.exec_driver_sql(sql, [shape(r) for r in rows] if shape is not None else rows)


def _converted(b: Rows, dialect: Any) -> list[tuple[Any, ...]]:
    procs: list[tuple[int, Callable[[Any], Any]]] = []
    for name in b.convert:
        column_type = b.table.c[name].type
        proc = column_type.dialect_impl(dialect).bind_processor(dialect)
        if proc is not None:
            procs.append((list(b.columns).index(name), proc))
    if not procs:
        return b.rows
    out = []
    for row in b.rows:
        values = list(row)
        for i, process in procs:
            if values[i] is not None:
                values[i] = process(values[i])
        out.append(tuple(values))
    return out


_SQL: dict[tuple[str, tuple[str, ...], str], tuple[str, Callable[[tuple[Any, ...]], Any] | None]] = {}


def _insert_sql(
    table: str, columns: tuple[str, ...], paramstyle: str
) -> tuple[str, Callable[[tuple[Any, ...]], Any] | None]:
    """The INSERT for a DBAPI paramstyle, and how a row's tuple becomes its parameters (None: as is)."""
    key = (table, columns, paramstyle)
    found = _SQL.get(key)
    if found is not None:
        return found
    shape: Callable[[tuple[Any, ...]], Any] | None = None
    n = len(columns)
    if paramstyle == "qmark":
        marks = ["?"] * n
    elif paramstyle == "format":
        marks = ["%s"] * n
    elif paramstyle == "numeric":
        marks = [f":{i + 1}" for i in range(n)]
    else:  # named / pyformat: parameters by name
        names = [f"p{i}" for i in range(n)]
        marks = [f":{p}" for p in names] if paramstyle == "named" else [f"%({p})s" for p in names]

        def shape(row: tuple[Any, ...]) -> dict[str, Any]:
            return dict(zip(names, row, strict=True))

    quoted = ", ".join(f'"{c}"' for c in columns)
    sql = f'INSERT INTO "{table}" ({quoted}) VALUES ({", ".join(marks)}) ON CONFLICT DO NOTHING'
    found = _SQL[key] = (sql, shape)
    return found


def _copy(conn: Connection, b: Rows) -> None:
    """COPY `b`'s rows into its table on `conn` (psycopg); `_Duplicate` on a unique violation."""
    import psycopg

    quoted = ", ".join(f'"{c}"' for c in b.columns)
    sql = f'COPY "{b.table.name}" ({quoted}) FROM STDIN'
    raw = conn.connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    try:
        with raw.cursor() as cur, cur.copy(sql) as copy:
            write = copy.write_row
            for row in b.rows:
                write(row)
    except psycopg.Error as e:
        if e.sqlstate == _UNIQUE_VIOLATION:
            raise _Duplicate() from None
        broken = raw.broken
        if broken:
            conn.invalidate()
        raise DBAPIError.instance(
            sql,
            None,
            e,
            psycopg.Error,
            hide_parameters=True,
            connection_invalidated=broken,
            dialect=conn.dialect,
        ) from e


def delete_oldest(
    engine: Engine,
    created_at: Column[Any],
    cutoff: float | None,
    limit: int | None,
    batch: int,
    delete_upto: Callable[[Connection, ColumnElement[bool]], int],
) -> int:
    """Delete rows oldest first by `created_at`: those before `cutoff` (None: any), about `limit` of
    them (None: no limit), `batch` per transaction (rows created at the same time as a batch's last go
    with it). `delete_upto(conn, gone)` deletes the rows `gone` selects, with what depends on them, and
    returns how many of the rows went. Returns how many went in all."""
    deleted = 0
    while limit is None or deleted < limit:
        take = batch if limit is None else min(batch, limit - deleted)
        oldest = select(created_at).order_by(created_at)
        if cutoff is not None:
            oldest = oldest.where(created_at < cutoff)
        with engine.begin() as conn:
            edge = conn.execute(oldest.offset(take - 1).limit(1)).scalar_one_or_none()
            if edge is None:  # fewer than `take` left before the cutoff: all of them
                edge = conn.execute(
                    select(func.max(oldest.subquery().c[created_at.name]))
                ).scalar_one_or_none()
                if edge is None:
                    return deleted
            n = delete_upto(conn, created_at <= edge)
        deleted += n
        if n < take:
            return deleted
    return deleted
