"""SQLAlchemy tables for the core records (DESIGN.md §5).

Core `Table`s in one `MetaData` (the store reads and writes with SQLAlchemy Core only, so no ORM
mapping is configured: importing the store stays cheap for a short command).

Column types are portable between SQLite and PostgreSQL: JSON (JSONB on PostgreSQL), BigInteger
for nanosecond span times, Double for epoch seconds and money, and `UTCDateTime` for timestamps
people read. Interaction times stay epoch seconds (`created_at`), as the runtime produces them.
Changing a table needs a new migration under `migrations/versions/`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    event,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

metadata = MetaData()
"""Every table of the store (the tables of `_budgets`, `_rollout`, ... join it when imported)."""


@event.listens_for(Column, "after_parent_attach")
def _plain_names(column: Column[Any], table: Any) -> None:
    """A store column's name and key as plain `str`, as a declarative mapping makes them: `Column`
    wraps them in `quoted_name`, a str subclass, and rows would carry those as their keys (which
    orjson refuses as dict keys: `Dict key must be str`). Columns of other metadata are left alone."""
    if getattr(table, "metadata", None) is metadata:
        column.name = str(column.name)
        column.key = str(column.key)


class JSONDocument(TypeDecorator[Any]):
    """JSON on every backend, JSONB on PostgreSQL: `JSON().with_variant(JSONB(), "postgresql")`
    without importing the PostgreSQL dialect until a PostgreSQL connection compiles it."""

    impl = JSON
    cache_ok = True
    should_evaluate_none = True  # as JSON's: None is stored as JSON null, not SQL NULL
    hashable = False

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())


JSONType = JSONDocument()


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


interactions = Table(
    "interactions",
    metadata,
    Column("id", String, primary_key=True),
    Column("trace_id", String, index=True, nullable=False),
    Column("session_id", String, index=True, nullable=False),
    Column("user_id", String),
    Column("agent", String, nullable=False),
    Column("version", String, nullable=False),
    Column("traffic_source", String, nullable=False),
    Column("input", Text, nullable=False),
    Column("output", Text, nullable=False),
    Column("status", String, nullable=False),
    Column("latency_ms", Double, nullable=False),
    Column("input_tokens", Integer, default=0, nullable=False),
    Column("output_tokens", Integer, default=0, nullable=False),
    Column("cached_input_tokens", Integer, default=0, nullable=False),
    Column("cost_usd", Double, default=0.0, nullable=False),
    Column("tool_calls", JSONType, nullable=False),
    Column("llm_calls", JSONType, nullable=False),
    Column("guardrails", JSONType, nullable=False),
    Column("error", Text),
    Column("metadata", JSONType, nullable=False),
    Column("created_at", Double, nullable=False),  # Unix epoch seconds
    Column("thumbs", Integer),  # +1 / -1
    Column("score", Double),
    Column("comment", Text),
    Column("feedback_at", UTCDateTime),
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


spans = Table(
    "spans",
    metadata,
    Column("trace_id", String, primary_key=True),  # the key indexes trace_id
    Column("span_id", String, primary_key=True),
    Column("parent_id", String),
    Column("name", String, nullable=False),
    Column("kind", String, nullable=False),
    Column("start_ns", BigInteger, nullable=False),
    Column("end_ns", BigInteger, nullable=False),
    Column("status", String, nullable=False),
    Column("attributes", JSONType, nullable=False),
)


eval_runs = Table(
    "eval_runs",
    metadata,
    Column("id", String, primary_key=True),
    Column("agent", String, nullable=False),
    Column("version", String, nullable=False),
    Column("suites", JSONType, nullable=False),
    Column("stage", String),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("status", String, nullable=False),  # running | finished | interrupted | budget_exhausted
    Column("config", JSONType, nullable=False),
    Column("summary", JSONType),
    # {verdict: PASS | FAIL | MARGINAL, reasons: [...]}
    Column("decision", JSONType),
    Column("baseline_run_id", String),
    Index("ix_eval_runs_agent_version_stage", "agent", "version", "stage", "started_at"),
)


eval_results = Table(
    "eval_results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String, ForeignKey("eval_runs.id", ondelete="CASCADE"), index=True, nullable=False),
    Column("suite", String, default="", nullable=False),
    Column("case_id", String, nullable=False),
    Column("category", String, nullable=False),
    Column("repeat", Integer, nullable=False),
    Column("outcome", String, nullable=False),  # PASS | FAIL | ERROR
    Column("scores", JSONType, nullable=False),
    Column("output", Text, nullable=False),
    Column("status", String, nullable=False),
    Column("latency_ms", Double, nullable=False),
    Column("cost_usd", Double, nullable=False),
    Column("judge_cost_usd", Double, nullable=False),
    Column("judge_input_tokens", Integer, default=0, nullable=False),
    Column("judge_output_tokens", Integer, default=0, nullable=False),
    Column("input_tokens", Integer, default=0, nullable=False),
    Column("output_tokens", Integer, default=0, nullable=False),
    Column("tool_calls", JSONType, nullable=False),
    Column("replayed", Boolean, default=False, nullable=False),
    Column("error", Text),
    Column("interaction_id", String),
    Column("trace_id", String),
    Column("tags", JSONType, nullable=False),
)


approvals = Table(
    "approvals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String, ForeignKey("eval_runs.id", ondelete="CASCADE"), index=True, nullable=False),
    Column("by", String, nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)


agent_versions = Table(
    "agent_versions",
    metadata,
    Column("version", String, primary_key=True),  # the full version id
    Column("agent", String, index=True, nullable=False),
    Column("label", String, nullable=False),
    Column("hash", String, nullable=False),
    Column("components", JSONType, nullable=False),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
)


api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String, primary_key=True),
    Column("prefix", String, unique=True, nullable=False),
    Column("hash", String, nullable=False),
    Column("role", String, nullable=False),
    Column("name", String),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
)


# An incident (loop): what production showed, grouped (same agent, same failure, similar input),
# with its lifecycle `state` and how it became an eval case. Times are epoch seconds.
incidents = Table(
    "incidents",
    metadata,
    Column("id", String, primary_key=True),
    Column("agent", String, nullable=False),
    Column("version", String),  # the version it was first seen on
    Column("source", String, nullable=False),  # the first occurrence's source
    Column("failure", String, nullable=False),  # the grouping signature, e.g. `status:failed`
    Column("title", Text, nullable=False),
    Column("input", Text, nullable=False),  # the first occurrence's input
    Column("tokens", JSONType, nullable=False),  # its normalised words, for "similar input"
    # open | triaged | candidate | golden | in_suite | fixed | wont_fix
    Column("state", String, nullable=False),
    Column("review", Boolean, default=False, nullable=False),  # waiting in the review queue
    Column("count", Integer, nullable=False),
    Column("interaction_id", String),
    Column("trace_id", String),
    Column("expectation", JSONType),  # a human correction / assertions
    Column("suite", String),
    Column("case_id", String),
    Column("fixed_version", String),
    Column("history", JSONType, nullable=False),  # [{at, from, to, by, note}]
    Column("first_seen", Double, nullable=False),
    Column("last_seen", Double, nullable=False),
    Index("ix_incidents_agent_failure", "agent", "failure"),
    Index("ix_incidents_state_last_seen", "state", "last_seen"),
)


# One interaction (or alert firing) behind an incident: its provenance.
incident_occurrences = Table(
    "incident_occurrences",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", String, ForeignKey("incidents.id", ondelete="CASCADE"), index=True, nullable=False),
    Column("interaction_id", String),
    Column("trace_id", String),
    Column("span_ids", JSONType, nullable=False),
    Column("source", String, nullable=False),
    Column("rule", String),
    Column("detail", Text, nullable=False),
    Column("at", Double, nullable=False),
    # one interaction counts once per source: a backfill run twice adds nothing
    Index("ux_incident_occurrences_interaction_source", "interaction_id", "source", unique=True),
)


# The cost ledger: one priced row per model call (`kind` call), and one per kind of saving an
# interaction made (`kind` saving, `reason` cache / routing / ..., `saved_usd`). Written with
# the interaction, in the same transaction; ids are `<interaction id>:<n>`, so a batch written
# twice adds nothing. `day` is the UTC day of `created_at` (YYYY-MM-DD), for daily totals and
# daily budgets alike on every backend.
ledger = Table(
    "ledger",
    metadata,
    Column("id", String, primary_key=True),
    Column("interaction_id", String, nullable=False),
    Column("kind", String, nullable=False),  # call | saving
    Column("reason", String),  # a saving's reason
    Column("session_id", String, nullable=False),
    Column("user_id", String),
    Column("api_key_id", String),
    Column("agent", String, nullable=False),
    Column("version", String, nullable=False),
    Column("model", String),
    Column("provider", String),
    Column("tier", String),
    Column("traffic_source", String, nullable=False),
    Column("status", String, nullable=False),  # ok | error
    Column("features", String, nullable=False),  # the interaction's features, sorted, comma-joined
    Column("input_tokens", Integer, default=0, nullable=False),  # every prompt token
    Column("cached_input_tokens", Integer, default=0, nullable=False),  # of which read from a cache
    Column("cache_write_input_tokens", Integer, default=0, nullable=False),  # of which written to one
    Column("output_tokens", Integer, default=0, nullable=False),  # every generated token
    Column("reasoning_tokens", Integer, default=0, nullable=False),  # of which reasoning
    Column("cost_usd", Double, default=0.0, nullable=False),
    Column("saved_usd", Double, default=0.0, nullable=False),
    Column("created_at", Double, nullable=False),  # Unix epoch seconds
    Column("day", String, nullable=False),
    # reports scan a time range; per user / session / API key: what budgets reconcile against
    Index("ix_ledger_created_at", "created_at"),
    Index("ix_ledger_interaction", "interaction_id"),
    Index("ix_ledger_user_day", "user_id", "day"),
    Index("ix_ledger_session_created", "session_id", "created_at"),
    Index("ix_ledger_api_key_day", "api_key_id", "day"),
)


# The features a ledger row is tagged with (one row each), so totals per feature add up
# without splitting a row's cost.
ledger_features = Table(
    "ledger_features",
    metadata,
    Column("ledger_id", String, ForeignKey("ledger.id", ondelete="CASCADE"), primary_key=True),
    Column("feature", String, primary_key=True),
    Index("ix_ledger_features_feature", "feature", "ledger_id"),
)


# A shadow replay (loop): recorded production interactions replayed against a candidate and
# twice against the version that served them; the summary per kind of difference and the verdict.
# Times are epoch seconds.
shadow_runs = Table(
    "shadow_runs",
    metadata,
    Column("id", String, primary_key=True),
    Column("agent", String, nullable=False),
    Column("candidate", String, nullable=False),  # the candidate's version id
    Column("baselines", JSONType, nullable=False),  # the version ids that served the traffic
    Column("source", String, nullable=False),  # replay (`shipyard shadow`; the mirror keeps no run)
    Column("status", String, nullable=False),  # running | finished | budget_exhausted | failed
    Column("verdict", String),  # PASS | FAIL | INCOMPLETE
    Column("config", JSONType, nullable=False),  # since, sample, filters, thresholds
    Column("summary", JSONType),
    Column("interactions", Integer, default=0, nullable=False),
    Column("cost_usd", Double, default=0.0, nullable=False),  # every arm's model spend
    Column("started_at", Double, nullable=False),
    Column("finished_at", Double),
    Index("ix_shadow_runs_agent_candidate_started", "agent", "candidate", "started_at"),
)


# One recorded interaction in a shadow run: the traces of its arms and, per kind (status,
# trajectory, output, guardrails, cost, latency), same | noisy | different with the values.
shadow_comparisons = Table(
    "shadow_comparisons",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String, ForeignKey("shadow_runs.id", ondelete="CASCADE"), index=True, nullable=False),
    Column("interaction_id", String, nullable=False),  # the production interaction replayed
    Column("trace_id", String, nullable=False),  # its trace
    Column("arms", JSONType, nullable=False),  # arm -> {interaction_id, trace_id, version}
    Column("kinds", JSONType, nullable=False),  # kind -> {state, baseline, candidate}
    Column("differences", JSONType, nullable=False),  # kinds reported above the noise
    Column("error", Text),
)
