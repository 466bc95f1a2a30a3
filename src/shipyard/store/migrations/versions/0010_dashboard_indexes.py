"""Indexes for the dashboard's trace list: newest first by status, by traffic source, by version.

The single-column status and traffic-source indexes become (column, created_at), which also serve
every query the old ones did (a write updates one index more than before: the version one, for a
version filter without an agent). tests/store/test_store_bulk.py checks that SQLite's plans read
them in order.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_interactions_status", table_name="interactions")
    op.drop_index("ix_interactions_traffic_source", table_name="interactions")
    op.create_index("ix_interactions_status_created", "interactions", ["status", "created_at"], unique=False)
    op.create_index(
        "ix_interactions_traffic_source_created",
        "interactions",
        ["traffic_source", "created_at"],
        unique=False,
    )
    op.create_index(
        "ix_interactions_version_created", "interactions", ["version", "created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_interactions_version_created", table_name="interactions")
    op.drop_index("ix_interactions_traffic_source_created", table_name="interactions")
    op.drop_index("ix_interactions_status_created", table_name="interactions")
    op.create_index("ix_interactions_traffic_source", "interactions", ["traffic_source"], unique=False)
    op.create_index("ix_interactions_status", "interactions", ["status"], unique=False)
