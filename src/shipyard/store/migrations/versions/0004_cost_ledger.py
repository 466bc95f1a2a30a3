"""The cost ledger: one priced row per model call.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXES = {
    "ix_ledger_created_at": ["created_at"],
    "ix_ledger_interaction": ["interaction_id"],
    "ix_ledger_user_day": ["user_id", "day"],
    "ix_ledger_session_created": ["session_id", "created_at"],
    "ix_ledger_api_key_day": ["api_key_id", "day"],
}


def upgrade() -> None:
    op.create_table(
        "ledger",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("interaction_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("session_id", sa.String(), nullable=False),
        sa.Column("user_id", sa.String(), nullable=True),
        sa.Column("api_key_id", sa.String(), nullable=True),
        sa.Column("agent", sa.String(), nullable=False),
        sa.Column("version", sa.String(), nullable=False),
        sa.Column("model", sa.String(), nullable=True),
        sa.Column("provider", sa.String(), nullable=True),
        sa.Column("tier", sa.String(), nullable=True),
        sa.Column("traffic_source", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("features", sa.String(), nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("cached_input_tokens", sa.Integer(), nullable=False),
        sa.Column("cache_write_input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("reasoning_tokens", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Double(), nullable=False),
        sa.Column("saved_usd", sa.Double(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("day", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    for name, columns in _INDEXES.items():
        op.create_index(name, "ledger", columns, unique=False)
    op.create_table(
        "ledger_features",
        sa.Column("ledger_id", sa.String(), nullable=False),
        sa.Column("feature", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["ledger_id"], ["ledger.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("ledger_id", "feature"),
    )
    op.create_index("ix_ledger_features_feature", "ledger_features", ["feature", "ledger_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_ledger_features_feature", table_name="ledger_features")
    op.drop_table("ledger_features")
    for name in _INDEXES:
        op.drop_index(name, table_name="ledger")
    op.drop_table("ledger")
