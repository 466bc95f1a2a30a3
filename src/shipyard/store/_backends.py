"""Database backends of the store, by URL scheme: SQLite (the default) and PostgreSQL.

A backend says how to open an engine for its URLs and which INSERT construct gives the store its
`ON CONFLICT` upserts. `STORE_BACKENDS` is a plugin registry keyed by the URL's scheme without the
driver (`postgresql` for `postgresql+psycopg://`); Shipyard's own are registered by the `store`
entry point of `shipyard.plugins` (`shipyard.store._plugins`). A third-party backend must speak the
SQL the store and its migrations use (ON CONFLICT upserts, JSON columns): a PostgreSQL-compatible
database, or another driver of one of these two.

SQLAlchemy is imported when a backend is used, not when the backends are registered: every command
that loads shipyard.yaml loads the plugins, and most never open the store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import orjson

from shipyard.plugins import Registry
from shipyard.store._files import private_dir, private_file

if TYPE_CHECKING:
    from sqlalchemy import Engine, Table
    from sqlalchemy.dialects import postgresql, sqlite
    from sqlalchemy.engine import URL

UpsertInsert: TypeAlias = "postgresql.Insert | sqlite.Insert"
"""An INSERT with `on_conflict_do_nothing` / `on_conflict_do_update` and `excluded`."""


def _same(url: str, root: Path | None) -> str:
    return url


@dataclass(frozen=True, slots=True)
class StoreBackend:
    """A database the store can keep its records in.

    Attributes:
        engine: `engine(url, json_serializer) -> sqlalchemy.Engine` for a (normalized) URL of this backend.
        insert: the INSERT construct with `on_conflict_do_nothing` / `on_conflict_do_update`
            (`sqlalchemy.dialects.postgresql.insert` for a PostgreSQL-compatible database).
        normalize: `normalize(url, root) -> url`: picks the driver, resolves relative paths against
            the project folder `root` (None: the working directory). Default: unchanged.
    """

    engine: Callable[[URL, Callable[[Any], str]], Engine]
    insert: Callable[[Table], UpsertInsert]
    normalize: Callable[[str, Path | None], str] = _same


STORE_BACKENDS: Registry[StoreBackend] = Registry("database backend", builtin="store")
"""Store backends by URL scheme (`sqlite`, `postgresql`, `postgres`)."""


def scheme_of(url: str) -> str:
    """The backend part of a URL's scheme: `postgresql` for `postgresql+psycopg://...`."""
    return url.partition("://")[0].partition("+")[0].lower() if "://" in url else ""


# SQLite ----------------------------------------------------------------------------------------------


def _sqlite_normalize(url: str, root: Path | None) -> str:
    from sqlalchemy.engine import make_url

    if root is None:
        return url
    parsed = make_url(url)
    db = parsed.database
    if db and db != ":memory:" and not db.startswith("file:") and not Path(db).is_absolute():
        return parsed.set(database=str((Path(root) / db).resolve())).render_as_string(hide_password=False)
    return url


def _sqlite_engine(url: URL, dumps: Callable[[Any], str]) -> Engine:
    from sqlalchemy import create_engine, event
    from sqlalchemy.pool import StaticPool

    db = url.database
    in_memory = not db or db == ":memory:"
    if db and not in_memory and not db.startswith("file:"):
        private_dir(Path(db).parent)  # owner-only: the records and the keys' hashes (store/_files.py)
        for path in (db, f"{db}-wal", f"{db}-shm"):  # SQLite gives -wal and -shm the database's mode
            if path == db or Path(path).exists():
                private_file(Path(path))
    # `timeout` is SQLite's busy timeout: how long a write waits for another writer's lock.
    # A URL may set its own (`sqlite:///x.db?timeout=0.5`).
    connect_args: dict[str, Any] = {} if "timeout" in url.query else {"timeout": 10.0}
    extra: dict[str, Any] = {}
    if in_memory:  # one shared connection, or each thread (the writer's too) sees its own empty database
        connect_args["check_same_thread"] = False
        extra["poolclass"] = StaticPool
    engine = create_engine(
        url, json_serializer=dumps, json_deserializer=orjson.loads, connect_args=connect_args, **extra
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
        cur.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; safe with WAL
        # a WAL grown by a big transaction (a prune) or a long read goes back to 16 MiB once it restarts
        cur.execute("PRAGMA journal_size_limit=16777216")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    return engine


def _sqlite_insert(table: Table) -> sqlite.Insert:
    from sqlalchemy.dialects.sqlite import insert

    return insert(table)


SQLITE = StoreBackend(_sqlite_engine, _sqlite_insert, _sqlite_normalize)


# PostgreSQL ------------------------------------------------------------------------------------------


def _postgresql_normalize(url: str, root: Path | None) -> str:
    """psycopg 3 for `postgresql://` and `postgres://` URLs; a URL naming its driver is kept."""
    for plain in ("postgres://", "postgresql://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    return url


def _postgresql_engine(url: URL, dumps: Callable[[Any], str]) -> Engine:
    from sqlalchemy import create_engine

    return create_engine(
        url,
        json_serializer=dumps,
        json_deserializer=orjson.loads,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=10,
        connect_args={"connect_timeout": 10} if "connect_timeout" not in url.query else {},
    )


def _postgresql_insert(table: Table) -> postgresql.Insert:
    from sqlalchemy.dialects.postgresql import insert

    return insert(table)


POSTGRESQL = StoreBackend(_postgresql_engine, _postgresql_insert, _postgresql_normalize)

BUILTIN_BACKENDS: dict[str, StoreBackend] = {
    "sqlite": SQLITE,
    "postgresql": POSTGRESQL,
    "postgres": POSTGRESQL,
}
"""Registered by `shipyard.store._plugins` (the `store` entry point)."""


__all__ = ["BUILTIN_BACKENDS", "STORE_BACKENDS", "StoreBackend", "UpsertInsert", "scheme_of"]
