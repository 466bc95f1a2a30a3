"""The project's flag set in the store: one truth for every replica.

With a store (PostgreSQL when configured, else SQLite on one machine), the flag set lives in the
`flag_sets` table with a revision; every change is read-modify-compare-and-set, retried on a
conflict, so concurrent changes through different replicas never lose one another.

The flag file stays the format people edit and export. Which wins:

- The first time, the file seeds the store.
- Afterwards the store wins, except that a file content the store has never seen (compared without
  the revision, so formatting and the revision number do not count) is imported as a new revision,
  through the same compare-and-set: at start, when a replica's poll sees its file change, and when
  the CLI runs. A content already seen (what a change wrote, or an older copy of the file on
  another machine) is never imported again, so a stale copy cannot bring old flags back.
- A change through the admin API or CLI also writes the file of the machine it was made on (best
  effort: a read-only file, e.g. a ConfigMap, only logs a warning); that content counts as seen.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from shipyard.errors import ConflictError, ShipyardError
from shipyard.flags._model import REVISION_KEY, FlagSet, load_flag_file, parse_flag_set

log = logging.getLogger("shipyard.flags")

T = TypeVar("T")
MAX_ATTEMPTS = 100  # compare-and-set retries of one change before giving up


class FlagSetBackend(Protocol):
    """What `SharedFlags` needs of the store (`shipyard.store.Store` has it)."""

    def get_flag_set(self, name: str) -> dict[str, Any] | None: ...

    def flag_set_revision(self, name: str) -> int | None: ...

    def save_flag_set(
        self,
        name: str,
        document: dict[str, Any],
        *,
        expected_revision: int | None,
        actor: str,
        file_digest: str | None = None,
    ) -> dict[str, Any]: ...


def content_digest(flag_set: FlagSet) -> str:
    """A digest of what a flag set says, without its revision (formatting does not count)."""
    doc = flag_set.to_json()
    meta = {k: v for k, v in (doc.get("metadata") or {}).items() if k != REVISION_KEY}
    if meta:
        doc["metadata"] = meta
    else:
        doc.pop("metadata", None)
    raw = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()


class SharedFlags:
    """A project's flag set in the store.

    Args:
        backend: the store.
        name: the flag set's name (the project's name).
        file: the project's flag file (seeds the store; imported when its content is new).
    """

    def __init__(self, backend: FlagSetBackend, name: str, file: Path | str | None = None) -> None:
        self.backend = backend
        self.name = name
        self.file = Path(file) if file is not None else None

    def _parse(self, row: dict[str, Any]) -> FlagSet:
        flag_set = parse_flag_set(row["document"], f"store flag set {self.name!r}")
        return flag_set.with_revision(int(row["revision"]))

    def revision(self) -> int | None:
        """The stored revision (the cheap poll), None when there is no set yet."""
        return self.backend.flag_set_revision(self.name)

    def stored(self) -> FlagSet | None:
        """The stored flag set, None when there is none yet (nothing is imported)."""
        row = self.backend.get_flag_set(self.name)
        return self._parse(row) if row is not None else None

    def current(self) -> FlagSet:
        """The flag set, after importing the flag file when the store has not seen its content
        (the first time: the file seeds the store). A file that does not validate raises."""
        if self.file is not None and self.file.exists():
            self.import_flag_set(load_flag_file(self.file))
        return self.stored() or FlagSet()

    def import_flag_set(self, flag_set: FlagSet, *, actor: str = "file") -> FlagSet | None:
        """Store `flag_set` (a flag file's content) as a new revision unless the store has seen that
        content already; returns the stored set when it was imported, else None."""
        digest = content_digest(flag_set)
        for _ in range(MAX_ATTEMPTS):
            row = self.backend.get_flag_set(self.name)
            if row is not None and digest in (row.get("file_digests") or []):
                return None
            expected = None if row is None else int(row["revision"])
            new = flag_set.with_revision((expected or 0) + 1)
            try:
                saved = self.backend.save_flag_set(
                    self.name, new.to_json(), expected_revision=expected, actor=actor, file_digest=digest
                )
            except ConflictError:
                _pause()
                continue
            log.info("flags: imported %s as revision %d", self.file or "a flag file", saved["revision"])
            return self._parse(saved)
        raise ConflictError(
            f"could not import the flag file of {self.name!r}: the flags kept changing; retry"
        )

    def change(
        self,
        edit: Callable[[FlagSet], tuple[FlagSet, T]],
        *,
        actor: str,
        source: str,
        file_digest: Callable[[FlagSet], str | None] = lambda _fs: None,
    ) -> tuple[FlagSet, T]:
        """Read, edit, validate, compare-and-set; on a conflict read again and redo the edit.

        Args:
            edit: the change, a function of the current set: (changed set, result).
            actor: who changes it (api, cli, kill_switch, ...).
            source: where the set is, for validation messages.
            file_digest: the digest of the file content this change will write (remembered).

        Returns the stored set and the edit's result.
        """
        self.current()  # a flag file with content the store never saw is imported first
        for _ in range(MAX_ATTEMPTS):
            row = self.backend.get_flag_set(self.name)
            current = self._parse(row) if row is not None else FlagSet()
            expected = None if row is None else int(row["revision"])
            changed, result = edit(current)
            # re-validate the whole set: a flag may refer to $evaluators, names must stay unique
            new = parse_flag_set(changed.with_revision((expected or 0) + 1).to_json(), source)
            try:
                saved = self.backend.save_flag_set(
                    self.name,
                    new.to_json(),
                    expected_revision=expected,
                    actor=actor,
                    file_digest=file_digest(new),
                )
            except ConflictError:
                _pause()
                continue
            return self._parse(saved), result
        raise ConflictError(
            f"could not change the flags of {self.name!r}: other changes kept winning; retry",
            hint="the flags changed many times at once; read them again and retry",
        )


def _pause() -> None:
    time.sleep(random.uniform(0.0, 0.02))  # two writers retrying in step would collide again


def store_problem(e: BaseException) -> str:
    """One line for a store error, for logs."""
    if isinstance(e, ShipyardError):
        return e.message
    return (str(e) or type(e).__name__).splitlines()[0][:300]
