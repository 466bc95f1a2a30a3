"""Config revisions shared by every replica (mixed into `Store`): which shipyard.yaml the fleet runs.

Each replica reads its own shipyard.yaml (a file, or a Kubernetes ConfigMap mounted as one); what they
share is the record of it. When a replica starts or applies a reload it records the content hash it
now serves (`record_config_revision`): a new revision when the hash differs from the newest one, else
nothing (the fleet already runs it). A revision is inserted as `newest + 1` under the primary key
(project, revision), a compare-and-set: when two replicas record at once, one insert wins and the other
re-reads and records on top, so no revision is lost or numbered twice. `GET /admin/config` of every
replica shows the same newest revision, and whether that replica serves it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Engine, Integer, String, Table, insert, select
from sqlalchemy.exc import IntegrityError

from shipyard.errors import ConflictError
from shipyard.store._models import JSONType, UTCDateTime, metadata, utcnow

RECORD_TRIES = 20  # concurrent recorders re-read and try again this many times


# One revision of a project's config: the content hash a replica started or reloaded with.
_revisions = Table(
    "config_revisions",
    metadata,
    Column("project", String, primary_key=True),
    Column("revision", Integer, primary_key=True),
    Column("config_hash", String, nullable=False),  # sha256 of shipyard.yaml
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("recorded_by", String, nullable=False),  # the replica (its instance id and host)
    Column("trigger", String, nullable=False),  # start | file | signal | api | notice
    Column("changes", JSONType, nullable=False),  # what the reload changed (its result)
)


class ConfigRevisionStore:
    """The store's config-revision methods (`Store` inherits them; it provides `engine`)."""

    engine: Engine

    def config_revision(self, project: str) -> dict[str, Any] | None:
        """The newest revision of `project`'s config as a dict, or None when none was recorded."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(_revisions)
                .where(_revisions.c.project == project)
                .order_by(_revisions.c.revision.desc())
                .limit(1)
            ).first()
        return dict(row._mapping) if row is not None else None

    def config_revisions(self, project: str, limit: int = 20) -> list[dict[str, Any]]:
        """The newest `limit` revisions of `project`'s config, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(_revisions)
                .where(_revisions.c.project == project)
                .order_by(_revisions.c.revision.desc())
                .limit(limit)
            ).all()
        return [dict(r._mapping) for r in rows]

    def record_config_revision(
        self,
        project: str,
        config_hash: str,
        *,
        by: str,
        trigger: str,
        changes: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Record that a replica now serves the config with `config_hash`; returns the newest revision
        (a new one unless the newest already has this hash). Raises ConflictError only when
        RECORD_TRIES attempts in a row lost to other recorders."""
        for _ in range(RECORD_TRIES):
            newest = self.config_revision(project)
            if newest is not None and newest["config_hash"] == config_hash:
                return newest
            row = {
                "project": project,
                "revision": (newest["revision"] if newest is not None else 0) + 1,
                "config_hash": config_hash,
                "recorded_at": utcnow(),
                "recorded_by": by,
                "trigger": trigger,
                "changes": changes or {},
            }
            try:
                with self.engine.begin() as conn:
                    conn.execute(insert(_revisions).values(**row))
            except IntegrityError:
                continue  # another replica took that revision: read again, record on top
            return row
        raise ConflictError(
            f"config revision of {project!r}: {RECORD_TRIES} attempts lost to other replicas recording at once"
        )
