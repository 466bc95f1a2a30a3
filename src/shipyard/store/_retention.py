"""What retention measures: the bytes some tables take on disk, with their indexes.

`store.retention.max_size_mb` bounds the interactions and their spans as the database holds them,
not the text they contain (indexes alone make that 2-3 times more):

- SQLite: the pages their b-trees use (the tables and their indexes), from the `dbstat` virtual
  table. Pages freed by deletes go to the file's free list and are reused by the next writes, so the
  file stops growing once retention deletes as much as arrives. A SQLite built without `dbstat`:
  the file's used pages (page count minus free list) times the tables' share of every table's text.
- PostgreSQL: `pg_total_relation_size` (heap, TOAST and indexes) of the tables, but never more than
  an estimate of what their live rows take (each row's stored size from `pg_column_size` with its
  tuple header and line pointer, and one entry per index, for a sample of the newest rows): after a
  DELETE the relation keeps its size until VACUUM, and its free space is then reused, not returned.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, Table

_PAGE = 8192  # PostgreSQL's block size
_PAGE_ROOM = _PAGE - 24  # less the page header
_LINE_POINTER = 4  # per tuple, heap or index (a heap tuple's 24-byte header is in pg_column_size(row))
_INDEX_HEADER = 8  # an index tuple's header
_INDEX_FILL = 0.7
"""How full B-tree leaf pages are: 90% when keys arrive in order (times), about 70% when they arrive at
random (ids); most of the interactions' indexes are on ids or lead with a column other than time."""


def sqlite_bytes(conn: Connection, tables: Sequence[Table], sample: int = 1000) -> int:
    """Bytes of the pages `tables` and their indexes use in a SQLite database."""
    names = [t.name for t in tables]
    marks = ", ".join("?" * len(names))
    btrees = [
        row[0]
        for row in conn.exec_driver_sql(
            f"SELECT name FROM sqlite_schema WHERE tbl_name IN ({marks}) AND type IN ('table', 'index')",
            tuple(names),
        )
    ]
    try:
        return sum(_dbstat(conn, name) for name in btrees)
    except Exception as e:  # no dbstat in this SQLite: apportion the used pages by text
        if "dbstat" not in str(e):
            raise
    page_size = int(conn.exec_driver_sql("PRAGMA page_size").scalar_one())
    used = int(conn.exec_driver_sql("PRAGMA page_count").scalar_one()) - int(
        conn.exec_driver_sql("PRAGMA freelist_count").scalar_one()
    )
    everything = [t for t in tables[0].metadata.sorted_tables]
    text = {t.name: _text_bytes(conn, t, sample) for t in everything}
    total = sum(text.values())
    return round(used * page_size * sum(text[n] for n in names) / total) if total else 0


def _dbstat(conn: Connection, name: str) -> int:
    try:  # SQLite 3.31+: one row per b-tree, without a row per page
        found = conn.exec_driver_sql(
            "SELECT sum(pgsize) FROM dbstat WHERE name = ? AND aggregate = TRUE", (name,)
        ).scalar_one()
    except Exception as e:
        if "aggregate" not in str(e):
            raise
        found = conn.exec_driver_sql("SELECT sum(pgsize) FROM dbstat WHERE name = ?", (name,)).scalar_one()
    return int(found or 0)


def _text_bytes(conn: Connection, table: Table, sample: int) -> float:
    """Rows of `table` times the average length of `sample` of them as text."""
    q = f'"{table.name}"'
    count = int(conn.exec_driver_sql(f"SELECT count(*) FROM {q}").scalar_one())
    if not count:
        return 0.0
    width = " + ".join(f'coalesce(length(CAST("{c.name}" AS TEXT)), 0)' for c in table.columns)
    avg = conn.exec_driver_sql(
        f"SELECT avg({width}) FROM (SELECT * FROM {q} LIMIT {int(sample)})"
    ).scalar_one()
    return count * float(avg or 0)


def postgresql_disk_bytes(conn: Connection, tables: Sequence[Table]) -> int:
    """`pg_total_relation_size` of `tables`: heap, TOAST and indexes, free space included."""
    sizes = " + ".join(f"pg_total_relation_size(to_regclass('{t.name}'))" for t in tables)
    return int(conn.exec_driver_sql(f"SELECT coalesce({sizes}, 0)").scalar_one())


def postgresql_row_bytes(conn: Connection, table: Table, rows_sql: str) -> tuple[int, float]:
    """(rows, their estimated bytes on disk) of the rows of `table` that `rows_sql` selects (`SELECT *
    FROM table ...`): each row as stored (`pg_column_size`) with its line pointer, and its entry in
    each of the table's indexes (key columns as stored, index tuple header, line pointer), leaf
    pages 90% full."""
    keys = [list(table.primary_key.columns)] + [list(ix.columns) for ix in table.indexes]
    parts = ["avg(pg_column_size(r.*))"]
    for cols in keys:
        key = " + ".join(f'coalesce(pg_column_size(r."{c.name}"), 0)' for c in cols)
        parts.append(f"sum({key} + {_INDEX_HEADER + _LINE_POINTER}) / {_INDEX_FILL}")
    n, row, *indexes = conn.exec_driver_sql(
        f"SELECT count(*), {', '.join(parts)} FROM ({rows_sql}) AS r"
    ).one()
    if not n:
        return 0, 0.0
    # whole tuples to a page: a page holds as many rows as fit, the rest of it stays empty
    tuple_bytes = -(-float(row) // 8) * 8 + _LINE_POINTER
    heap = int(n) * _PAGE / max(_PAGE_ROOM // tuple_bytes, 1)
    return int(n), heap + sum(float(i or 0) for i in indexes)
