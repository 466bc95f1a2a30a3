"""Apply the store's Alembic migrations from code, safely when several processes start at once.

The scripts live inside the package (`migrations/`), so this works from an installed wheel. One
process migrates while the others wait: PostgreSQL takes a transaction-scoped advisory lock, SQLite
an exclusive lock on a file next to the database. Whoever gets the lock second finds the schema
already at head and does nothing.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import re
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


@functools.cache
def head_revision() -> str:
    """The newest revision of the packaged scripts: read from their `revision` / `down_revision`
    lines, so a store whose schema is current opens without importing Alembic (with Mako and
    Pygments, most of a small command's start-up). Alembic decides when the scripts are not one
    straight line of plain string revisions."""
    down_of: dict[str, str | None] = {}
    for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        if path.name.startswith(("__init__", ".#")):  # the files Alembic skips
            continue
        found = _script_revisions(path)
        if found is None:
            down_of.clear()
            break
        down_of[found[0]] = found[1]
    heads = set(down_of) - set(down_of.values())
    if len(heads) == 1 and list(down_of.values()).count(None) == 1:
        return heads.pop()
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, f"no migrations under {MIGRATIONS_DIR}"
    return head


_FIRST_DEF = re.compile(r"^(?:async\s+def|def|class)\s", re.MULTILINE)
_REVISION_LINE = re.compile(r"^(?:revision|down_revision)\b", re.MULTILINE)


def _script_revisions(path: Path) -> tuple[str, str | None] | None:
    """(`revision`, `down_revision`) of a migration script; None unless both are plain strings
    (`down_revision` may be None). Only the script's head (before its first function) is parsed
    when neither name is assigned after it: the functions are most of the text."""
    source = path.read_text(encoding="utf-8")
    first_def = _FIRST_DEF.search(source)
    if first_def is not None and _REVISION_LINE.search(source, first_def.start()) is None:
        try:
            found = _revisions_in(source[: first_def.start()])
        except SyntaxError:  # the head is not whole statements: read the whole script
            found = None
        if found is not None:
            return found
    return _revisions_in(source)


def _revisions_in(source: str) -> tuple[str, str | None] | None:
    values: dict[str, object] = {}
    for node in ast.parse(source).body:
        target: ast.expr
        if isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        else:
            continue
        if isinstance(target, ast.Name) and isinstance(value, ast.Constant):
            values[target.id] = value.value
    revision, down = values.get("revision"), values.get("down_revision", ...)
    if isinstance(revision, str) and (down is None or isinstance(down, str)):
        return revision, down
    return None


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
