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
    traffic_source: Mapped[str] = mapped_column(String)
    input: Mapped[str] = mapped_column(Text)
    output: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String)
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
        # the dashboard's trace list filtered by status, traffic source or version, newest first
        # (migration 0010; each also serves an equality filter on its first column alone)
        Index("ix_interactions_status_created", "status", "created_at"),
        Index("ix_interactions_traffic_source_created", "traffic_source", "created_at"),
        Index("ix_interactions_version_created", "version", "created_at"),
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


class IncidentRow(Base):
    """An incident (loop): what production showed, grouped (same agent, same failure, similar input),
    with its lifecycle `state` and how it became an eval case. Times are epoch seconds."""

    __tablename__ = "incidents"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    agent: Mapped[str] = mapped_column(String)
    version: Mapped[str | None] = mapped_column(String)  # the version it was first seen on
    source: Mapped[str] = mapped_column(String)  # the first occurrence's source
    failure: Mapped[str] = mapped_column(String)  # the grouping signature, e.g. `status:failed`
    title: Mapped[str] = mapped_column(Text)
    input: Mapped[str] = mapped_column(Text)  # the first occurrence's input
    tokens: Mapped[list[Any]] = mapped_column(JSONType)  # its normalised words, for "similar input"
    # open | triaged | candidate | golden | in_suite | fixed | wont_fix
    state: Mapped[str] = mapped_column(String)
    review: Mapped[bool] = mapped_column(Boolean, default=False)  # waiting in the review queue
    count: Mapped[int] = mapped_column(Integer)
    interaction_id: Mapped[str | None] = mapped_column(String)
    trace_id: Mapped[str | None] = mapped_column(String)
    expectation: Mapped[dict[str, Any] | None] = mapped_column(JSONType)  # a human correction / assertions
    suite: Mapped[str | None] = mapped_column(String)
    case_id: Mapped[str | None] = mapped_column(String)
    fixed_version: Mapped[str | None] = mapped_column(String)
    history: Mapped[list[Any]] = mapped_column(JSONType)  # [{at, from, to, by, note}]
    first_seen: Mapped[float] = mapped_column(Double)
    last_seen: Mapped[float] = mapped_column(Double)

    __table_args__ = (
        Index("ix_incidents_agent_failure", "agent", "failure"),
        Index("ix_incidents_state_last_seen", "state", "last_seen"),
    )


class IncidentOccurrenceRow(Base):
    """One interaction (or alert firing) behind an incident: its provenance."""

    __tablename__ = "incident_occurrences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(
        String, ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    interaction_id: Mapped[str | None] = mapped_column(String)
    trace_id: Mapped[str | None] = mapped_column(String)
    span_ids: Mapped[list[Any]] = mapped_column(JSONType)
    source: Mapped[str] = mapped_column(String)
    rule: Mapped[str | None] = mapped_column(String)
    detail: Mapped[str] = mapped_column(Text)
    at: Mapped[float] = mapped_column(Double)

    __table_args__ = (
        # one interaction counts once per source: a backfill run twice adds nothing
        Index("ux_incident_occurrences_interaction_source", "interaction_id", "source", unique=True),
    )


class LedgerEntry(Base):
    """The cost ledger: one priced row per model call (`kind` call), and one per kind of saving an
    interaction made (`kind` saving, `reason` cache / routing / ..., `saved_usd`). Written with
    the interaction, in the same transaction; ids are `<interaction id>:<n>`, so a batch written
    twice adds nothing. `day` is the UTC day of `created_at` (YYYY-MM-DD), for daily totals and
    daily budgets alike on every backend."""

    __tablename__ = "ledger"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    interaction_id: Mapped[str] = mapped_column(String)
    kind: Mapped[str] = mapped_column(String)  # call | saving
    reason: Mapped[str | None] = mapped_column(String)  # a saving's reason
    session_id: Mapped[str] = mapped_column(String)
    user_id: Mapped[str | None] = mapped_column(String)
    api_key_id: Mapped[str | None] = mapped_column(String)
    agent: Mapped[str] = mapped_column(String)
    version: Mapped[str] = mapped_column(String)
    model: Mapped[str | None] = mapped_column(String)
    provider: Mapped[str | None] = mapped_column(String)
    tier: Mapped[str | None] = mapped_column(String)
    traffic_source: Mapped[str] = mapped_column(String)
    status: Mapped[str] = mapped_column(String)  # ok | error
    features: Mapped[str] = mapped_column(String)  # the interaction's features, sorted, comma-joined
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)  # every prompt token
    cached_input_tokens: Mapped[int] = mapped_column(Integer, default=0)  # of which read from a cache
    cache_write_input_tokens: Mapped[int] = mapped_column(Integer, default=0)  # of which written to one
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)  # every generated token
    reasoning_tokens: Mapped[int] = mapped_column(Integer, default=0)  # of which reasoning
    cost_usd: Mapped[float] = mapped_column(Double, default=0.0)
    saved_usd: Mapped[float] = mapped_column(Double, default=0.0)
    created_at: Mapped[float] = mapped_column(Double)  # Unix epoch seconds
    day: Mapped[str] = mapped_column(String)

    __table_args__ = (
        # reports scan a time range; per user / session / API key: what budgets reconcile against
        Index("ix_ledger_created_at", "created_at"),
        Index("ix_ledger_interaction", "interaction_id"),
        Index("ix_ledger_user_day", "user_id", "day"),
        Index("ix_ledger_session_created", "session_id", "created_at"),
        Index("ix_ledger_api_key_day", "api_key_id", "day"),
    )


class LedgerFeature(Base):
    """The features a ledger row is tagged with (one row each), so totals per feature add up
    without splitting a row's cost."""

    __tablename__ = "ledger_features"

    ledger_id: Mapped[str] = mapped_column(
        String, ForeignKey("ledger.id", ondelete="CASCADE"), primary_key=True
    )
    feature: Mapped[str] = mapped_column(String, primary_key=True)

    __table_args__ = (Index("ix_ledger_features_feature", "feature", "ledger_id"),)


class ShadowRunRow(Base):
    """A shadow replay (loop): recorded production interactions replayed against a candidate and
    twice against the version that served them; the summary per kind of difference and the verdict.
    Times are epoch seconds."""

    __tablename__ = "shadow_runs"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    agent: Mapped[str] = mapped_column(String)
    candidate: Mapped[str] = mapped_column(String)  # the candidate's version id
    baselines: Mapped[list[Any]] = mapped_column(JSONType)  # the version ids that served the traffic
    source: Mapped[str] = mapped_column(String)  # replay (`shipyard shadow`; the mirror keeps no run)
    status: Mapped[str] = mapped_column(String)  # running | finished | budget_exhausted | failed
    verdict: Mapped[str | None] = mapped_column(String)  # PASS | FAIL | INCOMPLETE
    config: Mapped[dict[str, Any]] = mapped_column(JSONType)  # since, sample, filters, thresholds
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    interactions: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Double, default=0.0)  # every arm's model spend
    started_at: Mapped[float] = mapped_column(Double)
    finished_at: Mapped[float | None] = mapped_column(Double)

    __table_args__ = (Index("ix_shadow_runs_agent_candidate_started", "agent", "candidate", "started_at"),)


class ShadowComparisonRow(Base):
    """One recorded interaction in a shadow run: the traces of its arms and, per kind (status,
    trajectory, output, guardrails, cost, latency), same | noisy | different with the values."""

    __tablename__ = "shadow_comparisons"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String, ForeignKey("shadow_runs.id", ondelete="CASCADE"), index=True)
    interaction_id: Mapped[str] = mapped_column(String)  # the production interaction replayed
    trace_id: Mapped[str] = mapped_column(String)  # its trace
    arms: Mapped[dict[str, Any]] = mapped_column(JSONType)  # arm -> {interaction_id, trace_id, version}
    kinds: Mapped[dict[str, Any]] = mapped_column(JSONType)  # kind -> {state, baseline, candidate}
    differences: Mapped[list[Any]] = mapped_column(JSONType)  # kinds reported above the noise
    error: Mapped[str | None] = mapped_column(Text)
