"""Deployments, rollout decisions and experiments (DESIGN.md §5): tables and the store's methods.

A deployment row is the whole state of one agent's rollout. Every change goes through
`save_deployment`, an `UPDATE ... WHERE revision = :expected` (optimistic concurrency): when two
admins, or two server replicas ticking the controller, act on the same state at once, exactly
one wins and the other gets a `ConflictError` naming the state it missed. A decision is written in
the same transaction as the change it records, so the log never disagrees with the state.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Engine, Index, Integer, String, Table, insert, select, update
from sqlalchemy.exc import IntegrityError

from shipyard.errors import ConflictError, NotFoundError
from shipyard.store._models import JSONType, UTCDateTime, metadata, utcnow
from shipyard.store._records import new_id

STRATEGIES = ("none", "canary", "blue_green", "experiment")
ACTIONS = (
    "deploy",
    "start",
    "step_up",
    "hold",
    "pause",
    "promote",
    "rollback",
    "abort",
    "resume",
    "switch",
    "dry_run",
    "gate_override",
)


_deployments = Table(
    "deployments",
    metadata,
    Column("agent", String, primary_key=True),
    Column("stable_version", String),
    Column("candidate_version", String),
    Column("strategy", String, nullable=False),  # none | canary | blue_green | experiment
    Column("weight", Integer, nullable=False),  # percent of traffic to the candidate, 0-100
    Column("state", String, nullable=False),
    Column("step", Integer, nullable=False),  # index into config["steps"]
    Column("started_at", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("config", JSONType, nullable=False),
)


_decisions = Table(
    "rollout_decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("agent", String, nullable=False),
    Column("candidate", String),
    Column("step", Integer, nullable=False),
    Column("action", String, nullable=False),
    Column("verdict", String),
    Column("reasons", JSONType, nullable=False),
    Column("numbers", JSONType, nullable=False),  # everything the decision was made on
    Column("actor", String, nullable=False),  # "auto" or a person's name
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_rollout_decisions_agent_id", "agent", "id"),
)


_experiments = Table(
    "experiments",
    metadata,
    Column("id", String, primary_key=True),
    Column("agent", String, index=True, nullable=False),
    Column("arms", JSONType, nullable=False),  # {"a": version id, "b": version id}
    Column("split", Integer, nullable=False),  # percent of traffic to arm b
    Column("metrics", JSONType, nullable=False),
    Column("state", String, nullable=False),  # running | stopped
    Column("started_at", UTCDateTime, nullable=False),
    Column("stopped_at", UTCDateTime),
    Column("report", JSONType),
)


_DEPLOYMENT_KEYS = frozenset(c.key for c in _deployments.c) - {"agent", "revision", "updated_at"}
_DECISION_KEYS = frozenset(c.key for c in _decisions.c) - {"id", "agent", "created_at"}


class _Lost(Exception):
    """Another writer changed the row first."""


def describe_deployment(row: dict[str, Any]) -> str:
    """One line people read: `canary running, 25% to support@1.2.0+abc (revision 7)`."""
    to = f" to {row['candidate_version']}" if row.get("candidate_version") else ""
    return f"{row['strategy']} {row['state']}, {row['weight']}%{to} (revision {row['revision']})"


class RolloutStore:
    """The store's rollout methods; `Store` inherits them (it provides `engine`)."""

    engine: Engine

    # deployments --------------------------------------------------------------------------------
    def get_deployment(self, agent: str) -> dict[str, Any] | None:
        """The deployment row of an agent as a dict, or None when it was never deployed."""
        with self.engine.connect() as conn:
            row = conn.execute(select(_deployments).where(_deployments.c.agent == agent)).first()
        return dict(row._mapping) if row is not None else None

    def list_deployments(self) -> list[dict[str, Any]]:
        """Every agent's deployment, by agent name."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(_deployments).order_by(_deployments.c.agent))
            return [dict(r._mapping) for r in rows]

    def save_deployment(
        self,
        agent: str,
        values: dict[str, Any],
        *,
        expected_revision: int | None,
        decision: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Change an agent's deployment if nobody changed it since it was read, and log a decision.

        Args:
            agent: the agent.
            values: the columns to set (stable_version, candidate_version, strategy, weight, state,
                step, started_at, config); the rest keep their stored value.
            expected_revision: the revision the caller read; None creates the row (first deploy).
            decision: a decision to record with the change (candidate, step, action, verdict,
                reasons, numbers, actor).

        Returns the new row. Raises ConflictError when the row changed (or appeared) meanwhile.
        """
        unknown = set(values) - _DEPLOYMENT_KEYS
        if unknown:
            raise ValueError(f"not deployment columns: {', '.join(sorted(unknown))}")
        now = utcnow()
        try:
            with self.engine.begin() as conn:
                if expected_revision is None:
                    row = {
                        "stable_version": None,
                        "candidate_version": None,
                        "strategy": "none",
                        "weight": 0,
                        "state": "stable",
                        "step": 0,
                        "started_at": None,
                        "config": {},
                        **values,
                        "agent": agent,
                        "revision": 1,
                        "updated_at": now,
                    }
                    conn.execute(insert(_deployments).values(**row))
                else:
                    done = conn.execute(
                        update(_deployments)
                        .where(_deployments.c.agent == agent, _deployments.c.revision == expected_revision)
                        .values(**values, revision=expected_revision + 1, updated_at=now)
                    ).rowcount
                    if not done:
                        raise _Lost
                if decision is not None:
                    conn.execute(insert(_decisions).values(**_decision_row(agent, decision, now)))
                saved = conn.execute(select(_deployments).where(_deployments.c.agent == agent)).one()
        except (_Lost, IntegrityError):
            # the transaction is rolled back: nothing of this change (or its decision) is stored
            raise self._conflict(agent) from None
        return dict(saved._mapping)

    def _conflict(self, agent: str) -> ConflictError:
        current = self.get_deployment(agent)
        now = describe_deployment(current) if current else "no deployment"
        return ConflictError(
            f"the deployment of {agent!r} changed since you read it: now {now}; retry",
            hint="read the current state (`shipyard rollout status AGENT`) and act on that",
        )

    # decisions ----------------------------------------------------------------------------------
    def add_rollout_decision(self, agent: str, decision: dict[str, Any]) -> dict[str, Any]:
        """Record a decision that changes no state (e.g. a dry run's). Returns the stored row."""
        row = _decision_row(agent, decision, utcnow())
        with self.engine.begin() as conn:
            conn.execute(insert(_decisions).values(**row))
        return row

    def rollout_decisions(
        self, agent: str, *, limit: int | None = 20, candidate: str | None = None
    ) -> list[dict[str, Any]]:
        """An agent's decisions, newest first (optionally of one candidate version)."""
        query = select(_decisions).where(_decisions.c.agent == agent)
        if candidate is not None:
            query = query.where(_decisions.c.candidate == candidate)
        query = query.order_by(_decisions.c.id.desc())
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    # experiments --------------------------------------------------------------------------------
    def create_experiment(
        self,
        agent: str,
        arms: dict[str, str],
        split: int,
        metrics: list[str],
        *,
        experiment_id: str | None = None,
    ) -> dict[str, Any]:
        """Store a new running experiment. `arms` maps "a"/"b" to version ids; `split` is the
        percent of traffic to arm b."""
        row = dict(
            id=experiment_id or new_id()[:12],
            agent=agent,
            arms=dict(arms),
            split=split,
            metrics=list(metrics),
            state="running",
            started_at=utcnow(),
            stopped_at=None,
            report=None,
        )
        with self.engine.begin() as conn:
            conn.execute(insert(_experiments).values(**row))
        return row

    def get_experiment(self, experiment_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(_experiments).where(_experiments.c.id == experiment_id)).first()
        return dict(row._mapping) if row is not None else None

    def list_experiments(self, agent: str | None = None, state: str | None = None) -> list[dict[str, Any]]:
        """Experiments, newest first."""
        query = select(_experiments)
        if agent is not None:
            query = query.where(_experiments.c.agent == agent)
        if state is not None:
            query = query.where(_experiments.c.state == state)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(_experiments.c.started_at.desc(), _experiments.c.id))
            return [dict(r._mapping) for r in rows]

    def save_experiment_report(self, experiment_id: str, report: dict[str, Any]) -> None:
        """Keep the latest look's report of a running experiment (the next look continues from it)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(_experiments)
                .where(_experiments.c.id == experiment_id, _experiments.c.state == "running")
                .values(report=report)
            )

    def stop_experiment(self, experiment_id: str, report: dict[str, Any] | None) -> dict[str, Any]:
        """Mark a running experiment stopped and keep its final report. Stopping twice keeps the first."""
        with self.engine.begin() as conn:
            conn.execute(
                update(_experiments)
                .where(_experiments.c.id == experiment_id, _experiments.c.state == "running")
                .values(state="stopped", stopped_at=utcnow(), report=report)
            )
        found = self.get_experiment(experiment_id)
        if found is None:
            raise NotFoundError(
                f"no experiment {experiment_id!r}", hint="`shipyard experiment status AGENT` lists them"
            )
        return found


def _decision_row(agent: str, decision: dict[str, Any], now: datetime) -> dict[str, Any]:
    unknown = set(decision) - _DECISION_KEYS
    if unknown:
        raise ValueError(f"not decision fields: {', '.join(sorted(unknown))}")
    action = decision.get("action")
    if action not in ACTIONS:
        raise ValueError(f"decision action must be one of {', '.join(ACTIONS)}, not {action!r}")
    return {
        "agent": agent,
        "candidate": decision.get("candidate"),
        "step": int(decision.get("step") or 0),
        "action": action,
        "verdict": decision.get("verdict"),
        "reasons": list(decision.get("reasons") or []),
        "numbers": dict(decision.get("numbers") or {}),
        "actor": decision.get("actor") or "auto",
        "created_at": now,
    }
