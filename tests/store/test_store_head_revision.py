"""The store reads a migration script's `revision` / `down_revision` from the script's head (before its
first function) when they are not assigned again after it, else from the whole script; it gives up
(None, so Alembic decides) unless both are plain strings."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.store._migrate import MIGRATIONS_DIR, _revisions_in, _script_revisions

HEAD = 'revision: str = "0011"\ndown_revision: str | None = "0010"\n'
BODY = "\n\ndef upgrade() -> None:\n    pass\n\n\ndef downgrade() -> None:\n    pass\n"
LOOKALIKE = "X = '''\nrevision = 'nope'\n'''\n"  # an assignment's look-alike inside a string


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (HEAD + BODY, ("0011", "0010")),
        ('"""Doc."""\n\nrevision = "a"\ndown_revision = None\n' + BODY, ("a", None)),
        # a line that looks like an assignment after the first function: the whole script is read
        (HEAD + BODY + LOOKALIKE, ("0011", "0010")),
        # assigned again after the first function: the last assignment counts, as in the module
        (HEAD + BODY + 'revision = "0012"\n', ("0012", "0010")),
        # not plain strings: Alembic decides
        ('revision = "b"\ndown_revision = ("a", "c")\n' + BODY, None),
        ('revision = "b"\n' + BODY, None),
        # a `def` inside a string cuts the head short of whole statements: the whole script is read
        ('revision = "b"\ndown_revision = "a"\nNOTE = """\ndef not_code\n"""\n' + BODY, ("b", "a")),
    ],
)
def test_script_revisions(tmp_path: Path, text: str, expected: tuple[str, str | None] | None) -> None:
    path = tmp_path / "0011_x.py"
    path.write_text(text, encoding="utf-8")
    assert _script_revisions(path) == expected


def test_the_packaged_scripts_read_the_same_from_their_head_as_whole() -> None:
    for path in sorted((MIGRATIONS_DIR / "versions").glob("0*.py")):
        found = _script_revisions(path)
        assert found is not None and found == _revisions_in(path.read_text(encoding="utf-8"))
