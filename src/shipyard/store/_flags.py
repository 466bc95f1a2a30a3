"""Flag sets shared by every replica (mixed into `Store`): one row per project, with a revision.

Every change is an `UPDATE ... WHERE revision = :expected` (compare-and-set): when two replicas
change flags at once, exactly one wins and the other gets a `ConflictError`, re-reads and applies
its change again on top (`FlagAdmin` does that), so no change is lost. The row also keeps the
digests of the flag-file contents the store has already seen (imported, or written by a change),
so a replica with an older copy of the file never brings that copy back (see `flags/_shared.py`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Engine, Integer, String, Table, insert, select, update
from sqlalchemy.exc import IntegrityError

from shipyard.errors import ConflictError
from shipyard.store._models import JSONType, UTCDateTime, metadata, utcnow

MAX_DIGESTS = 200  # file contents remembered per flag set (oldest forgotten first)


# A project's whole flag set (flagd document) at its current revision.
_flag_sets = Table(
    "flag_sets",
    metadata,
    Column("name", String, primary_key=True),  # the project
    Column("revision", Integer, nullable=False),
    Column("document", JSONType, nullable=False),  # the flagd flag-set JSON
    Column("file_digests", JSONType, nullable=False),  # flag-file contents already seen
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", String, nullable=False),  # "api", "cli", "file", "kill_switch", ...
)


class FlagSetStore:
    """The store's flag-set methods (`Store` inherits them; it provides `engine`)."""

    engine: Engine

    def get_flag_set(self, name: str) -> dict[str, Any] | None:
        """The flag-set row of `name` as a dict (name, revision, document, file_digests, updated_at,
        updated_by), or None when none was stored yet."""
        with self.engine.connect() as conn:
            row = conn.execute(select(_flag_sets).where(_flag_sets.c.name == name)).first()
        return dict(row._mapping) if row is not None else None

    def flag_set_revision(self, name: str) -> int | None:
        """Only the revision (the cheap poll replicas run to catch up); None when there is no set."""
        with self.engine.connect() as conn:
            rev = conn.execute(select(_flag_sets.c.revision).where(_flag_sets.c.name == name)).scalar()
        return int(rev) if rev is not None else None

    def save_flag_set(
        self,
        name: str,
        document: dict[str, Any],
        *,
        expected_revision: int | None,
        actor: str,
        file_digest: str | None = None,
    ) -> dict[str, Any]:
        """Store a new flag set if nobody changed it since it was read.

        Args:
            name: the flag set (the project).
            document: the whole flag set as flagd JSON; its `metadata.shipyard.revision` should be
                `expected_revision + 1` (1 for a new set), the revision the row gets.
            expected_revision: the revision the caller read; None creates the row.
            actor: who changed it (api, cli, file, kill_switch, ...).
            file_digest: the digest of a flag-file content this change imported or writes; it is
                remembered so that content is never imported again.

        Returns the new row. Raises ConflictError when the row changed (or appeared) meanwhile.
        """
        now = utcnow()
        new_revision = 1 if expected_revision is None else expected_revision + 1
        try:
            with self.engine.begin() as conn:
                if expected_revision is None:
                    digests = [file_digest] if file_digest else []
                    conn.execute(
                        insert(_flag_sets).values(
                            name=name,
                            revision=new_revision,
                            document=document,
                            file_digests=digests,
                            updated_at=now,
                            updated_by=actor,
                        )
                    )
                else:
                    values: dict[str, Any] = {
                        "revision": new_revision,
                        "document": document,
                        "updated_at": now,
                        "updated_by": actor,
                    }
                    if file_digest:
                        known = conn.execute(
                            select(_flag_sets.c.file_digests).where(_flag_sets.c.name == name)
                        ).scalar()
                        kept = [d for d in (known or []) if d != file_digest]
                        values["file_digests"] = [*kept, file_digest][-MAX_DIGESTS:]
                    done = conn.execute(
                        update(_flag_sets)
                        .where(_flag_sets.c.name == name, _flag_sets.c.revision == expected_revision)
                        .values(**values)
                    ).rowcount
                    if not done:
                        raise _Lost
                saved = conn.execute(select(_flag_sets).where(_flag_sets.c.name == name)).one()
        except (_Lost, IntegrityError):
            current = self.flag_set_revision(name)
            now_at = "no flag set" if current is None else f"revision {current}"
            raise ConflictError(
                f"the flags of {name!r} changed since they were read (expected revision "
                f"{expected_revision}, now {now_at}); retry",
                hint="read the flags again and apply the change on top",
            ) from None
        return dict(saved._mapping)


class _Lost(Exception):
    """Another writer changed the row first."""
