"""Initial schema: interactions, spans, eval runs and results, approvals, agent versions, API keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
# UTC timestamps; shipyard.store._models.UTCDateTime adds the zone back on SQLite when reading.
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "agent_versions",
        sa.Column("version", sa.String(), nullable=False),
        sa.Column("agent", sa.String(), nullable=False),
        sa.Column("label", sa.String(), nullable=False),
        sa.Column("hash", sa.String(), nullable=False),
        sa.Column("components", JSON, nullable=False),
        sa.Column("first_seen", TIMESTAMP, nullable=False),
        sa.Column("last_seen", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )
    op.create_index(op.f("ix_agent_versions_agent"), "agent_versions", ["agent"], unique=False)
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("prefix", sa.String(), nullable=False),
        sa.Column("hash", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("revoked_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("prefix"),
    )
    op.create_table(
        "eval_runs",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("agent", sa.String(), nullable=False),
        sa.Column("version", sa.String(), nullable=False),
        sa.Column("suites", JSON, nullable=False),
        sa.Column("stage", sa.String(), nullable=True),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("config", JSON, nullable=False),
        sa.Column("summary", JSON, nullable=True),
        sa.Column("decision", JSON, nullable=True),
        sa.Column("baseline_run_id", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_eval_runs_agent_version_stage",
        "eval_runs",
        ["agent", "version", "stage", "started_at"],
        unique=False,
    )
    op.create_table(
        "interactions",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("trace_id", sa.String(), nullable=False),
        sa.Column("session_id", sa.String(), nullable=False),
        sa.Column("user_id", sa.String(), nullable=True),
        sa.Column("agent", sa.String(), nullable=False),
        sa.Column("version", sa.String(), nullable=False),
        sa.Column("traffic_source", sa.String(), nullable=False),
        sa.Column("input", sa.Text(), nullable=False),
        sa.Column("output", sa.Text(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("latency_ms", sa.Double(), nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("cached_input_tokens", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Double(), nullable=False),
        sa.Column("tool_calls", JSON, nullable=False),
        sa.Column("llm_calls", JSON, nullable=False),
        sa.Column("guardrails", JSON, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("thumbs", sa.Integer(), nullable=True),
        sa.Column("score", sa.Double(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("feedback_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_interactions_agent_version_created",
        "interactions",
        ["agent", "version", "created_at"],
        unique=False,
    )
    op.create_index("ix_interactions_created_at", "interactions", ["created_at"], unique=False)
    op.create_index("ix_interactions_agent_created", "interactions", ["agent", "created_at"], unique=False)
    op.create_index(op.f("ix_interactions_session_id"), "interactions", ["session_id"], unique=False)
    op.create_index(op.f("ix_interactions_status"), "interactions", ["status"], unique=False)
    op.create_index(op.f("ix_interactions_trace_id"), "interactions", ["trace_id"], unique=False)
    op.create_index(op.f("ix_interactions_traffic_source"), "interactions", ["traffic_source"], unique=False)
    op.create_table(
        "spans",
        sa.Column("trace_id", sa.String(), nullable=False),
        sa.Column("span_id", sa.String(), nullable=False),
        sa.Column("parent_id", sa.String(), nullable=True),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("start_ns", sa.BigInteger(), nullable=False),
        sa.Column("end_ns", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("attributes", JSON, nullable=False),
        sa.PrimaryKeyConstraint("trace_id", "span_id"),
    )
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("by", sa.String(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["eval_runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_approvals_run_id"), "approvals", ["run_id"], unique=False)
    op.create_table(
        "eval_results",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("suite", sa.String(), nullable=False),
        sa.Column("case_id", sa.String(), nullable=False),
        sa.Column("category", sa.String(), nullable=False),
        sa.Column("repeat", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("scores", JSON, nullable=False),
        sa.Column("output", sa.Text(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("latency_ms", sa.Double(), nullable=False),
        sa.Column("cost_usd", sa.Double(), nullable=False),
        sa.Column("judge_cost_usd", sa.Double(), nullable=False),
        sa.Column("judge_input_tokens", sa.Integer(), nullable=False),
        sa.Column("judge_output_tokens", sa.Integer(), nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("tool_calls", JSON, nullable=False),
        sa.Column("replayed", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("interaction_id", sa.String(), nullable=True),
        sa.Column("trace_id", sa.String(), nullable=True),
        sa.Column("tags", JSON, nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["eval_runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_eval_results_run_id"), "eval_results", ["run_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_eval_results_run_id"), table_name="eval_results")
    op.drop_table("eval_results")
    op.drop_index(op.f("ix_approvals_run_id"), table_name="approvals")
    op.drop_table("approvals")
    op.drop_table("spans")
    op.drop_index(op.f("ix_interactions_traffic_source"), table_name="interactions")
    op.drop_index(op.f("ix_interactions_trace_id"), table_name="interactions")
    op.drop_index(op.f("ix_interactions_status"), table_name="interactions")
    op.drop_index(op.f("ix_interactions_session_id"), table_name="interactions")
    op.drop_index("ix_interactions_created_at", table_name="interactions")
    op.drop_index("ix_interactions_agent_created", table_name="interactions")
    op.drop_index("ix_interactions_agent_version_created", table_name="interactions")
    op.drop_table("interactions")
    op.drop_index("ix_eval_runs_agent_version_stage", table_name="eval_runs")
    op.drop_table("eval_runs")
    op.drop_table("api_keys")
    op.drop_index(op.f("ix_agent_versions_agent"), table_name="agent_versions")
    op.drop_table("agent_versions")
