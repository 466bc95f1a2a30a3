"""Shadow replay runs and their per-interaction comparisons.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "shadow_runs",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("agent", sa.String(), nullable=False),
        sa.Column("candidate", sa.String(), nullable=False),
        sa.Column("baselines", JSON, nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("verdict", sa.String(), nullable=True),
        sa.Column("config", JSON, nullable=False),
        sa.Column("summary", JSON, nullable=True),
        sa.Column("interactions", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Double(), nullable=False),
        sa.Column("started_at", sa.Double(), nullable=False),
        sa.Column("finished_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_shadow_runs_agent_candidate_started", "shadow_runs", ["agent", "candidate", "started_at"]
    )
    op.create_table(
        "shadow_comparisons",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("interaction_id", sa.String(), nullable=False),
        sa.Column("trace_id", sa.String(), nullable=False),
        sa.Column("arms", JSON, nullable=False),
        sa.Column("kinds", JSON, nullable=False),
        sa.Column("differences", JSON, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["shadow_runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_shadow_comparisons_run_id", "shadow_comparisons", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_shadow_comparisons_run_id", table_name="shadow_comparisons")
    op.drop_table("shadow_comparisons")
    op.drop_index("ix_shadow_runs_agent_candidate_started", table_name="shadow_runs")
    op.drop_table("shadow_runs")
