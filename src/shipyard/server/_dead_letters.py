"""Where the server puts a record the store refuses, so the records behind it keep moving.

The journal's mover writes batches with `isolate` (store/_dead_letters.py): records the database
refuses (a number out of range...; one refused for a NUL byte is stored sanitized instead) are
found and handed to
`DeadLetterSink.divert`, which keeps each one with the reason in the store's `dead_letters` table,
or, when even that insert fails, in a file `<id>.json` (mode 0600) under `.shipyard/dead-letter/`.
Either way the journal's checkpoint then moves past it, it is logged (event `dead_letter`, with the
reason but none of the record's content) and the server counts it and raises the `dead_letters`
alert. `shipyard store dead-letters list | show | retry` reads both places.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from shipyard._atomic import atomic_write
from shipyard.observe import log_event
from shipyard.store import DeadLetter, InteractionRecord, dead_letter_for, error_reason, private_dir

FOLDER = "dead-letter"


def dead_letter_folder(root: Path) -> Path:
    """The folder of a project's dead-letter files: `<root>/.shipyard/dead-letter/`."""
    return Path(root) / ".shipyard" / FOLDER


class DeadLetterSink:
    """Keeps refused records: in the store's table, else in files.

    Args:
        store: the Store (anything with `add_dead_letter(letter)`).
        folder: where files go when the table cannot take a dead letter.
    """

    def __init__(self, store: Any, folder: Path) -> None:
        self.store = store
        self.folder = Path(folder)

    def divert(self, record: InteractionRecord, error: BaseException) -> tuple[DeadLetter, str]:
        """Keep one refused record; returns its dead letter and where it went (`store` or a file's
        path). Raises OSError when neither the table nor the folder could take it (the caller keeps
        the record and tries again later)."""
        letter = dead_letter_for(record, error)
        where = "store"
        try:
            self.store.add_dead_letter(letter)
        except Exception as e:
            where = str(write_dead_letter_file(self.folder, letter, store_error=error_reason(e, 500)))
        log_event(
            "dead_letter",
            level="error",
            dead_letter_id=letter.id,
            kind=letter.kind,
            record_id=letter.record_id,
            error_type=letter.error_type,
            reason=letter.reason.splitlines()[0][:300],  # the first line; later ones may quote content
            where=where,
        )
        return letter, where


def write_dead_letter_file(folder: Path, letter: DeadLetter, *, store_error: str = "") -> Path:
    """Write a dead letter to `<folder>/<id>.json`, readable by its owner only; returns the path.

    Args:
        store_error: why the store's table could not take it.
    """
    private_dir(folder)
    path = Path(folder) / f"{letter.id}.json"
    data = orjson.dumps({**letter.to_dict(), "store_error": store_error}, option=orjson.OPT_INDENT_2)
    atomic_write(path, data, private=True, fsync=True)
    return path


def read_dead_letter_files(folder: Path) -> list[tuple[Path, DeadLetter]]:
    """The dead letters kept in files, oldest first; unreadable files are skipped."""
    found: list[tuple[Path, DeadLetter]] = []
    if not Path(folder).is_dir():
        return found
    for path in sorted(Path(folder).glob("*.json")):
        try:
            data = orjson.loads(path.read_bytes())
            data.pop("store_error", None)
            found.append((path, DeadLetter(**data)))
        except (OSError, ValueError, TypeError):
            continue
    return sorted(found, key=lambda item: item[1].created_at)
