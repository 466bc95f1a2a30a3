"""Incidents and incident rules (observe, act, evolve).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("agent", sa.String(), nullable=False),
        sa.Column("version", sa.String(), nullable=True),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("failure", sa.String(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("input", sa.Text(), nullable=False),
        sa.Column("tokens", JSON, nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("review", sa.Boolean(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("interaction_id", sa.String(), nullable=True),
        sa.Column("trace_id", sa.String(), nullable=True),
        sa.Column("expectation", JSON, nullable=True),
        sa.Column("suite", sa.String(), nullable=True),
        sa.Column("case_id", sa.String(), nullable=True),
        sa.Column("fixed_version", sa.String(), nullable=True),
        sa.Column("history", JSON, nullable=False),
        sa.Column("first_seen", sa.Double(), nullable=False),
        sa.Column("last_seen", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_incidents_agent_failure", "incidents", ["agent", "failure"], unique=False)
    op.create_index("ix_incidents_state_last_seen", "incidents", ["state", "last_seen"], unique=False)
    op.create_table(
        "incident_occurrences",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("incident_id", sa.String(), nullable=False),
        sa.Column("interaction_id", sa.String(), nullable=True),
        sa.Column("trace_id", sa.String(), nullable=True),
        sa.Column("span_ids", JSON, nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("rule", sa.String(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_incident_occurrences_incident_id"), "incident_occurrences", ["incident_id"], unique=False
    )
    op.create_index(
        "ux_incident_occurrences_interaction_source",
        "incident_occurrences",
        ["interaction_id", "source"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("ux_incident_occurrences_interaction_source", table_name="incident_occurrences")
    op.drop_index(op.f("ix_incident_occurrences_incident_id"), table_name="incident_occurrences")
    op.drop_table("incident_occurrences")
    op.drop_index("ix_incidents_state_last_seen", table_name="incidents")
    op.drop_index("ix_incidents_agent_failure", table_name="incidents")
    op.drop_table("incidents")
