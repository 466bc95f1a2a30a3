"""SQLAlchemy tables for the core records (DESIGN.md §5).

Column types are portable between SQLite and PostgreSQL: JSON (JSONB on PostgreSQL), BigInteger
for nanosecond span times, Double for epoch seconds and money, and `UTCDateTime` for timestamps
people read. Interaction times stay epoch seconds (`created_at`), as the runtime produces them.
Changing a table needs a new migration under `migrations/versions/`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

JSONType = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone: store naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSONType,
        list[Any]: JSONType,
        datetime: UTCDateTime,
    }


class Interaction(Base):
    __tablename__ = "interactions"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    trace_id: Mapped[str] = mapped_column(String, index=True)
    session_id: Mapped[str] = mapped_column(String, index=True)
    user_id: Mapped[str | None] = mapped_column(String)
    agent: Mapped[str] = mapped_column(String)
    version: Mapped[str] = mapped_column(String)
    traffic_source: Mapped[str] = mapped_column(String, index=True)
    input: Mapped[str] = mapped_column(Text)
    output: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String, index=True)
    latency_ms: Mapped[float] = mapped_column(Double)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cached_input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Double, default=0.0)
    tool_calls: Mapped[list[Any]] = mapped_column(JSONType)
    llm_calls: Mapped[list[Any]] = mapped_column(JSONType)
    guardrails: Mapped[list[Any]] = mapped_column(JSONType)
    error: Mapped[str | None] = mapped_column(Text)
    # "metadata" is reserved on declarative classes, so the attribute has another name.
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType)
    created_at: Mapped[float] = mapped_column(Double)  # Unix epoch seconds
    thumbs: Mapped[int | None] = mapped_column(Integer)  # +1 / -1
    score: Mapped[float | None] = mapped_column(Double)
    comment: Mapped[str | None] = mapped_column(Text)
    feedback_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_interactions_agent_version_created", "agent", "version", "created_at"),
        # "newest first" lists, of everything and of one agent
        Index("ix_interactions_created_at", "created_at"),
        Index("ix_interactions_agent_created", "agent", "created_at"),
    )


class Span(Base):
    __tablename__ = "spans"

    trace_id: Mapped[str] = mapped_column(String, primary_key=True)  # the key indexes trace_id
    span_id: Mapped[str] = mapped_column(String, primary_key=True)
    parent_id: Mapped[str | None] = mapped_column(String)
    name: Mapped[str] = mapped_column(String)
    kind: Mapped[str] = mapped_column(String)
    start_ns: Mapped[int] = mapped_column(BigInteger)
    end_ns: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType)


class EvalRun(Base):
    __tablename__ = "eval_runs"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    agent: Mapped[str] = mapped_column(String)
    version: Mapped[str] = mapped_column(String)
    suites: Mapped[list[Any]] = mapped_column(JSONType)
    stage: Mapped[str | None] = mapped_column(String)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String)  # running | finished | interrupted | budget_exhausted
    config: Mapped[dict[str, Any]] = mapped_column(JSONType)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # {verdict: PASS | FAIL | MARGINAL, reasons: [...]}
    decision: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    baseline_run_id: Mapped[str | None] = mapped_column(String)

    __table_args__ = (Index("ix_eval_runs_agent_version_stage", "agent", "version", "stage", "started_at"),)


class EvalResult(Base):
    __tablename__ = "eval_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String, ForeignKey("eval_runs.id", ondelete="CASCADE"), index=True)
    suite: Mapped[str] = mapped_column(String, default="")
    case_id: Mapped[str] = mapped_column(String)
    category: Mapped[str] = mapped_column(String)
    repeat: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String)  # PASS | FAIL | ERROR
    scores: Mapped[list[Any]] = mapped_column(JSONType)
    output: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String)
    latency_ms: Mapped[float] = mapped_column(Double)
    cost_usd: Mapped[float] = mapped_column(Double)
    judge_cost_usd: Mapped[float] = mapped_column(Double)
    judge_input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    judge_output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    tool_calls: Mapped[list[Any]] = mapped_column(JSONType)
    replayed: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text)
    interaction_id: Mapped[str | None] = mapped_column(String)
    trace_id: Mapped[str | None] = mapped_column(String)
    tags: Mapped[list[Any]] = mapped_column(JSONType)


class Approval(Base):
    __tablename__ = "approvals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String, ForeignKey("eval_runs.id", ondelete="CASCADE"), index=True)
    by: Mapped[str] = mapped_column(String)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AgentVersionRow(Base):
    __tablename__ = "agent_versions"

    version: Mapped[str] = mapped_column(String, primary_key=True)  # the full version id
    agent: Mapped[str] = mapped_column(String, index=True)
    label: Mapped[str] = mapped_column(String)
    hash: Mapped[str] = mapped_column(String)
    components: Mapped[dict[str, Any]] = mapped_column(JSONType)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    prefix: Mapped[str] = mapped_column(String, unique=True)
    hash: Mapped[str] = mapped_column(String)
    role: Mapped[str] = mapped_column(String)
    name: Mapped[str | None] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
