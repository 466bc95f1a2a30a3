"""Apply the store's Alembic migrations from code, safely when several processes start at once.

The scripts live inside the package (`migrations/`), so this works from an installed wheel. One
process migrates while the others wait: PostgreSQL takes a transaction-scoped advisory lock, SQLite
an exclusive lock on a file next to the database. Whoever gets the lock second finds the schema
already at head and does nothing.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text

from shipyard.store._errors import StoreError
from shipyard.store._files import private_file

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version"  # Alembic's default, which env.py keeps
_ADVISORY_LOCK_KEY = 0x5348_4950_5941_5244 & 0x7FFF_FFFF_FFFF_FFFF  # "SHIPYARD", any stable bigint
_thread_lock = threading.Lock()


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config built in code, pointing at the packaged scripts.

    Args:
        connection: the open connection the migrations run on (env.py reads it).
    """
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


HEAD_REVISION = "0010"
"""The newest revision of the packaged scripts (`migrations/versions/`): what the version table of a
store at head holds. Written here, so a store whose schema is current opens without reading the
scripts or importing Alembic (with Mako and Pygments, most of a small command's start-up); a new
migration script sets it to its own revision (tests/store/test_store_head_revision.py checks that it
is the one head Alembic finds)."""


def head_revision() -> str:
    """The newest revision of the packaged scripts (`HEAD_REVISION`)."""
    return HEAD_REVISION


def current_revision(conn: Connection) -> str | None:
    """The revision the database is at (None for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def at_head(conn: Connection) -> bool:
    """True when the database is at `head_revision()`: one row in Alembic's version table, read
    with plain SQL (the cheap check every store open makes)."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return False
    rows = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    return rows == [head_revision()]


def migrate(engine: Engine) -> bool:
    """Bring the database to the newest schema. Returns True when something was applied."""
    with engine.connect() as conn:
        if at_head(conn):
            return False
    from alembic import command
    from alembic.util.exc import CommandError

    head = head_revision()
    with _thread_lock, _file_lock(engine), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
        found = current_revision(conn)
        if found == head:
            return False
        try:
            command.upgrade(alembic_config(conn), "head")
        except CommandError as e:
            raise StoreError(
                f"the database schema is at revision {found!r}, which this Shipyard does not know ({e})",
                hint="upgrade shipyard to the version that wrote this database, or point "
                "SHIPYARD_DATABASE_URL / store.url at another database",
            ) from None
    return True


@contextlib.contextmanager
def _file_lock(engine: Engine) -> Iterator[None]:
    """An exclusive lock on `<database>.migrate.lock` for SQLite files; nothing elsewhere."""
    database = engine.url.database
    if (
        engine.dialect.name != "sqlite"
        or not database
        or database == ":memory:"
        or database.startswith("file:")
    ):
        yield
        return
    try:
        import fcntl
    except ImportError:  # Windows: SQLite's own locking and busy_timeout are all we have
        yield
        return
    with private_file(Path(f"{database}.migrate.lock")).open("a+b") as fh:  # owner-only, like the database
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
