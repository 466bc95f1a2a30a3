"""The store checks its schema against a revision written in the code (`HEAD_REVISION`), without
reading the migration scripts or importing Alembic: it must be the one head Alembic finds in the
packaged scripts (a new migration script sets it to its own revision)."""

from __future__ import annotations

from shipyard.store._migrate import HEAD_REVISION, alembic_config, head_revision


def test_the_written_head_is_the_one_head_alembic_finds() -> None:
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(alembic_config())
    assert scripts.get_heads() == [HEAD_REVISION]
    assert head_revision() == HEAD_REVISION
