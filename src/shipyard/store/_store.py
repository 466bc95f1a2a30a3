"""The store: records in and out of SQLite (default) or PostgreSQL.

Methods are synchronous and thread-safe (one SQLAlchemy engine, a connection per call); async
code calls them in a thread or hands interactions to the `BatchWriter`. Eval runs and results
go in and come out as plain dicts, so the store never imports `evals`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Insert,
    Row,
    Select,
    Table,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, SQLAlchemyError

from shipyard.errors import ConfigError, NotFoundError, ShipyardError
from shipyard.store._backends import STORE_BACKENDS, StoreBackend, scheme_of
from shipyard.store._budgets import BudgetStore  # admin-set budgets, one machine's budget counters
from shipyard.store._bulk import Rows, can_copy, delete_oldest, write_rows
from shipyard.store._bulk import dumps as _dumps
from shipyard.store._config_revisions import ConfigRevisionStore  # which config the fleet runs (CAS)
from shipyard.store._dead_letters import DeadLetterStore  # records the database refused
from shipyard.store._errors import StoreError, StoreUrlError
from shipyard.store._flags import FlagSetStore  # flag sets shared by replicas (CAS)
from shipyard.store._idempotency import IdempotencyStore  # idempotency keys of the gateway
from shipyard.store._incidents import IncidentStore  # incidents and their provenance (loop)
from shipyard.store._ledger import LedgerStore  # the cost ledger (rows written with interactions)
from shipyard.store._migrate import migrate
from shipyard.store._models import agent_versions as _versions
from shipyard.store._models import api_keys as _api_keys
from shipyard.store._models import approvals as _approvals
from shipyard.store._models import eval_results as _eval_results
from shipyard.store._models import eval_runs as _eval_runs
from shipyard.store._models import interactions as _interactions
from shipyard.store._models import spans as _spans
from shipyard.store._models import utcnow
from shipyard.store._prefix import ids_with_prefix, unique_prefix
from shipyard.store._records import InteractionRecord, LLMCallRecord, SpanRecord, ToolCallRecord, new_id
from shipyard.store._retention import postgresql_disk_bytes, postgresql_row_bytes, sqlite_bytes
from shipyard.store._rollout import RolloutStore  # rollouts: deployments, decisions, experiments

if TYPE_CHECKING:
    from shipyard.config import ShipyardConfig

ENV_URL = "SHIPYARD_DATABASE_URL"


class EvalRunStatus(StrEnum):
    """Where a stored eval run is: running, finished, or cut short (interrupted, budget spent)."""

    RUNNING = "running"
    FINISHED = "finished"
    INTERRUPTED = "interrupted"
    BUDGET_EXHAUSTED = "budget_exhausted"


_TOOL_FIELDS = frozenset(f.name for f in dataclasses.fields(ToolCallRecord))
_LLM_FIELDS = frozenset(f.name for f in dataclasses.fields(LLMCallRecord))
_EVAL_RESULT_KEYS = [c.key for c in _eval_results.c if c.key not in ("id", "run_id")]
_EVAL_RESULT_NUMBERS = [
    c.key for c in _eval_results.c if c.key != "id" and c.type.python_type in (int, float)
]
_SIZE_ROUNDS = 6  # size-based pruning: delete, measure again, at most this many times
_RUN_HINT = "the run id is printed by the eval run and listed with its agent's runs"


def default_database_url(root: Path) -> str:
    """The SQLite database of a project: `<root>/.shipyard/shipyard.db`."""
    return f"sqlite:///{(Path(root) / '.shipyard' / 'shipyard.db').resolve()}"


def normalize_url(url: str, root: Path | None = None) -> str:
    """The URL as its backend wants it: psycopg 3 for PostgreSQL, a relative SQLite path resolved
    against `root`. A URL of no registered backend is returned unchanged (opening it says why).

    Args:
        url: a SQLAlchemy URL; `postgresql://` and `postgres://` become `postgresql+psycopg://`.
        root: folder that a relative SQLite file path is relative to (default: the working dir).
    """
    scheme = scheme_of(url)
    return STORE_BACKENDS.get(scheme).normalize(url, root) if scheme in STORE_BACKENDS else url


def _epoch(t: float | datetime | None) -> float | None:
    return t.timestamp() if isinstance(t, datetime) else t


def _plain(obj: Any) -> Any:
    """A dataclass (or a mapping) as a dict of its fields; other values unchanged."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    return dict(obj) if isinstance(obj, Mapping) else obj


class Store(  # each mixin: one group of tables' methods
    RolloutStore,
    DeadLetterStore,
    IdempotencyStore,
    IncidentStore,
    LedgerStore,
    BudgetStore,
    FlagSetStore,
    ConfigRevisionStore,
):
    """Records in a SQL database.

    Args:
        url: a SQLAlchemy URL (`sqlite:///path.db`, `postgresql://user@host/db`); default
            `$SHIPYARD_DATABASE_URL`, else SQLite at `<root>/.shipyard/shipyard.db`.
        root: the project folder (default: the working directory).
        migrate: apply pending migrations on open (default yes; safe when several processes start).
    """

    def __init__(self, url: str | None = None, root: Path | None = None, *, migrate: bool = True) -> None:
        root = Path(root) if root is not None else Path.cwd()
        raw = url or os.environ.get(ENV_URL) or default_database_url(root)
        self.url = normalize_url(raw, root)
        self.backend = _backend(self.url)
        self.engine = _create_engine(self.url, self.backend)
        self.dialect = self.engine.dialect.name
        self._copy = can_copy(self.engine)  # COPY for the write path (PostgreSQL through psycopg)
        if migrate:
            try:
                self.migrate()
            except SQLAlchemyError as e:
                self.engine.dispose()
                raise _open_error(self.url, e) from None

    @classmethod
    def from_config(cls, cfg: ShipyardConfig, *, migrate: bool = True) -> Store:
        """The store of a project: `$SHIPYARD_DATABASE_URL`, else `store.url` (a relative SQLite
        path is relative to the project), else SQLite under `.shipyard/`."""
        if os.environ.get(ENV_URL) or not cfg.store.url:
            return cls(os.environ.get(ENV_URL) or default_database_url(cfg.root), cfg.root, migrate=migrate)
        try:
            return cls(cfg.store.url, cfg.root, migrate=migrate)
        except StoreError as e:  # the file's store.url: say where it is, as other config errors do
            raise _store_url_error(cfg, e) from None

    @property
    def safe_url(self) -> str:
        """The URL with any password hidden, for messages and logs."""
        return make_url(self.url).render_as_string(hide_password=True)

    def migrate(self) -> bool:
        """Apply pending migrations; True when something was applied."""
        return migrate(self.engine)

    def ping(self) -> bool:
        """True when the database answers."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except SQLAlchemyError:
            return False

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # interactions and spans ----------------------------------------------------------------------
    def write_interactions(self, records: Sequence[InteractionRecord]) -> int:
        """Insert interactions, their spans and their cost ledger rows in one transaction (COPY on
        PostgreSQL, one prepared executemany per table on SQLite: store/_bulk.py). Ids already stored
        are skipped, so writing a batch twice is harmless. Returns the number of records given."""
        if not records:
            return 0
        batch = [
            Rows(_interactions, INTERACTION_COLUMNS, [_interaction_values(r) for r in records], _CONVERT),
            Rows(_spans, SPAN_COLUMNS, [_span_values(s) for r in records for s in r.spans]),
        ]
        self._write_ledger(batch, records)  # the cost ledger's rows of these interactions
        write_rows(self.engine, batch, copy=self._copy)
        return len(records)

    def write_spans(self, spans: Iterable[SpanRecord]) -> int:
        """Insert spans (duplicates of stored ones are skipped). Returns the number given."""
        rows = [_span_values(s) for s in spans]
        write_rows(self.engine, [Rows(_spans, SPAN_COLUMNS, rows)], copy=self._copy)
        return len(rows)

    def get_interaction(self, interaction_id: str, *, spans: bool = False) -> InteractionRecord | None:
        """The interaction with this id, or None. `spans=True` attaches its trace's spans."""
        return self._one(select(_interactions).where(_interactions.c.id == interaction_id), spans)

    def find_interaction(
        self, ref: str, *, spans: bool = False, prefix: bool = False
    ) -> InteractionRecord | None:
        """The interaction whose id or trace id is `ref` (the newest, if a trace has several).

        Args:
            spans: attach its trace's spans.
            prefix: also accept the start of an id or trace id when only one starts so (the CLI);
                several raise AmbiguousPrefixError naming them.
        """
        found = self.get_interaction(ref, spans=spans)
        if found is not None:
            return found
        c = _interactions.c
        query = select(_interactions).where(c.trace_id == ref).order_by(c.created_at.desc()).limit(1)
        found = self._one(query, spans)
        if found is not None or not prefix:
            return found
        with self.engine.connect() as conn:
            matches = ids_with_prefix(conn, [c.id, c.trace_id], ref)
        full = unique_prefix(matches, ref, "trace or interaction id", "give more of the id")
        return None if full is None else self.find_interaction(full, spans=spans)

    def list_interactions(
        self,
        agent: str | None = None,
        version: str | None = None,
        session_id: str | None = None,
        status: str | None = None,
        traffic_source: str | None = None,
        since: float | datetime | None = None,
        until: float | datetime | None = None,
        limit: int | None = 100,
        *,
        user_id: str | None = None,
        spans: bool = False,
        oldest_first: bool = False,
    ) -> list[InteractionRecord]:
        """Interactions matching every filter given, newest first.

        Args:
            since, until: creation time bounds (epoch seconds or datetimes); since inclusive, until exclusive.
            limit: at most this many (None: all).
            spans: attach each interaction's spans.
            oldest_first: order by creation time ascending instead.
        """
        c = _interactions.c
        query = select(_interactions)
        for column, value in (
            (c.agent, agent),
            (c.version, version),
            (c.session_id, session_id),
            (c.status, status),
            (c.traffic_source, traffic_source),
            (c.user_id, user_id),
        ):
            if value is not None:
                query = query.where(column == value)
        if since is not None:
            query = query.where(c.created_at >= _epoch(since))
        if until is not None:
            query = query.where(c.created_at < _epoch(until))
        query = query.order_by(c.created_at.asc() if oldest_first else c.created_at.desc())
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            records = [_interaction_from_row(row) for row in conn.execute(query)]
            if spans and records:
                by_trace = self._spans_of(conn, list({r.trace_id for r in records}))
                for r in records:
                    r.spans = by_trace.get(r.trace_id, [])
        return records

    def count_interactions(self, agent: str | None = None, traffic_source: str | None = None) -> int:
        """How many interactions are stored (optionally of one agent / traffic source)."""
        query = select(func.count()).select_from(_interactions)
        if agent is not None:
            query = query.where(_interactions.c.agent == agent)
        if traffic_source is not None:
            query = query.where(_interactions.c.traffic_source == traffic_source)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    # retention -------------------------------------------------------------------------------------
    def records_bytes(self, sample: int = 1000) -> int:
        """How many bytes the interactions and their spans take on disk, with their indexes: what
        `store.retention.max_size_mb` bounds (store/_retention.py). SQLite: the pages they use;
        PostgreSQL: their relations' size, but never more than their live rows take (a relation keeps
        its size after a DELETE and reuses the space). Free pages are not counted."""
        return self._records_disk(sample)[1]

    def _records_disk(self, sample: int = 1000) -> tuple[int, int]:
        """(interactions stored, bytes they and their spans take on disk; see `records_bytes`)."""
        with self.engine.connect() as conn:
            count = int(conn.execute(select(func.count()).select_from(_interactions)).scalar_one())
            if self.dialect == "sqlite":
                return count, sqlite_bytes(conn, [_interactions, _spans], sample) if count else 0
            disk = postgresql_disk_bytes(conn, [_interactions, _spans])
            if not count:
                return 0, 0
            newest = f'SELECT * FROM "interactions" ORDER BY "created_at" DESC LIMIT {int(sample)}'
            n, rows = postgresql_row_bytes(conn, _interactions, newest)
            _, spans = postgresql_row_bytes(
                conn,
                _spans,
                f'SELECT * FROM "spans" WHERE "trace_id" IN (SELECT "trace_id" FROM ({newest}) AS i)',
            )
        return count, min(disk, round(count * (rows + spans) / max(n, 1)))

    def prune(
        self,
        *,
        max_age_s: float | None = None,
        max_bytes: int | None = None,
        ledger_max_age_s: float | None = None,
        now: float | None = None,
        batch: int = 5000,
    ) -> PruneResult:
        """Delete the oldest interactions and their spans: those older than `max_age_s`, then as many
        more as bring `records_bytes()` (on disk, with their indexes) down to `max_bytes`; and the cost
        ledger rows (with their feature tags) older than `ledger_max_age_s`, by age only. Deletes
        `batch` interactions (or ledger rows) per transaction, so the writers in between wait briefly.
        Eval runs, rollouts and dead letters are kept. Returns what was deleted and the size before
        and after."""
        now = time.time() if now is None else now
        count, size = self._records_disk()
        before = size
        deleted = 0
        if max_age_s is not None:
            gone = self._delete_oldest(now - max_age_s, None, batch)
            if gone:
                deleted += gone
                count, size = self._records_disk()
        if max_bytes is not None:
            # A b-tree frees a page only once it is (nearly) empty, so the bytes per interaction seen
            # before a delete can promise more than it gives: measure again and go on, a few times,
            # each time asking for more than the average promises.
            for attempt in range(1, _SIZE_ROUNDS + 1):
                if size <= max_bytes or not count:
                    break
                want = math.ceil((size - max_bytes) * count / size * (1 + (attempt - 1) / 2))
                gone = self._delete_oldest(None, want, batch)
                if not gone:
                    break
                deleted += gone
                count, size = self._records_disk()
        if deleted and self.dialect == "postgresql":
            self._vacuum(_interactions, _spans)
        ledger = 0 if ledger_max_age_s is None else self._delete_ledger_before(now - ledger_max_age_s, batch)
        return PruneResult(deleted, before, size, ledger)

    def _vacuum(self, *tables: Table) -> None:
        """VACUUM `tables` (PostgreSQL) so the space of deleted rows is reused now, not when
        autovacuum comes by; a role that may not vacuum them leaves it to autovacuum."""
        names = ", ".join(f'"{t.name}"' for t in tables)
        try:
            with self.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(f"VACUUM {names}")
        except SQLAlchemyError:
            pass

    def _delete_oldest(self, cutoff: float | None, limit: int | None, batch: int) -> int:
        """Delete interactions created before `cutoff` (None: any), at most about `limit` of them
        (None: no limit), oldest first, `batch` per transaction, with their traces' spans."""

        def upto(conn: Connection, gone: ColumnElement[bool]) -> int:
            conn.execute(
                delete(_spans).where(_spans.c.trace_id.in_(select(_interactions.c.trace_id).where(gone)))
            )
            return conn.execute(delete(_interactions).where(gone)).rowcount or 0

        return delete_oldest(self.engine, _interactions.c.created_at, cutoff, limit, batch, upto)

    def get_trace(self, trace_id: str) -> list[SpanRecord]:
        """The spans of one trace, in start order."""
        with self.engine.connect() as conn:
            return self._spans_of(conn, [trace_id]).get(trace_id, [])

    def record_feedback(
        self,
        ref: str,
        thumbs: int | None = None,
        score: float | None = None,
        comment: str | None = None,
    ) -> InteractionRecord:
        """Attach a user's feedback to an interaction; fields left None keep their stored value.

        Args:
            ref: the interaction id or its trace id.
            thumbs: +1 (good) or -1 (bad).
            score: a rating such as CSAT (any finite number).
            comment: free text.
        Raises NotFoundError when no interaction has that id or trace id.
        """
        if thumbs is None and score is None and comment is None:
            raise ShipyardError("feedback needs at least one of thumbs, score or comment")
        if thumbs is not None and thumbs not in (1, -1):
            raise ShipyardError(f"thumbs must be 1 (good) or -1 (bad), got {thumbs!r}")
        if score is not None and not math.isfinite(score):
            raise ShipyardError(f"score must be a finite number, got {score!r}")
        found = self.find_interaction(ref)
        if found is None:
            raise NotFoundError(
                f"no interaction with id or trace id {ref!r}",
                hint="the id is in the response (interaction_id / trace_id); records are written "
                "in the background, so retry if the interaction just finished",
            )
        values: dict[str, Any] = {"feedback_at": utcnow()}
        for key, value in (("thumbs", thumbs), ("score", score), ("comment", comment)):
            if value is not None:
                values[key] = value
        with self.engine.begin() as conn:
            conn.execute(update(_interactions).where(_interactions.c.id == found.id).values(**values))
        updated = self.get_interaction(found.id)
        assert updated is not None
        return updated

    def _one(self, query: Select[Any], spans: bool) -> InteractionRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
            if row is None:
                return None
            record = _interaction_from_row(row)
            if spans:
                record.spans = self._spans_of(conn, [record.trace_id]).get(record.trace_id, [])
        return record

    @staticmethod
    def _spans_of(conn: Connection, trace_ids: list[str]) -> dict[str, list[SpanRecord]]:
        out: dict[str, list[SpanRecord]] = {}
        query = select(_spans).where(_spans.c.trace_id.in_(trace_ids)).order_by(_spans.c.start_ns)
        for row in conn.execute(query):
            m = row._mapping
            out.setdefault(m["trace_id"], []).append(
                SpanRecord(
                    trace_id=m["trace_id"],
                    span_id=m["span_id"],
                    parent_id=m["parent_id"],
                    name=m["name"],
                    kind=m["kind"],
                    start_ns=m["start_ns"],
                    end_ns=m["end_ns"],
                    status=m["status"],
                    attributes=m["attributes"] or {},
                )
            )
        return out

    # agent versions ------------------------------------------------------------------------------
    def record_agent_version(
        self, agent: str, version: str, label: str, hash: str, components: Mapping[str, Any]
    ) -> None:
        """Remember that a version ran: first time inserts it, later times update last_seen.

        Args:
            version: the full version id (`support@1.3.0+a1b2c3d`).
            components: the hashes it is made of (code, prompts, model).
        """
        now = utcnow()
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(_versions).where(_versions.c.version == version).values(last_seen=now)
            ).rowcount
            if changed:
                return
        row = dict(agent=agent, version=version, label=label, hash=hash, components=dict(components))
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(_versions).values(**row, first_seen=now, last_seen=now))
        except IntegrityError:  # another process recorded it between our update and insert
            with self.engine.begin() as conn:
                conn.execute(update(_versions).where(_versions.c.version == version).values(last_seen=now))

    def list_agent_versions(self, agent: str | None = None) -> list[dict[str, Any]]:
        """Versions seen so far, newest first: dicts with agent, version, label, hash, components,
        first_seen, last_seen (UTC datetimes)."""
        query = select(_versions).order_by(_versions.c.first_seen.desc())
        if agent is not None:
            query = query.where(_versions.c.agent == agent)
        return self._dicts(query)

    # eval runs -----------------------------------------------------------------------------------
    def create_eval_run(
        self,
        agent: str,
        version: str,
        suites: Sequence[str],
        stage: str | None = None,
        config: Mapping[str, Any] | None = None,
        baseline_run_id: str | None = None,
        run_id: str | None = None,
    ) -> str:
        """Start an eval run (status `running`) and return its id.

        Args:
            suites: names or paths of the suites it runs.
            stage: pre-merge | post-merge | production, or None for an ad-hoc run.
            config: the settings it ran with (repeats, seed, thresholds...).
            baseline_run_id: the run it is compared with.
            run_id: use this id instead of a new one.
        """
        run_id = run_id or new_id()
        row = dict(
            id=run_id,
            agent=agent,
            version=version,
            suites=list(suites),
            stage=stage,
            started_at=utcnow(),
            status=EvalRunStatus.RUNNING,
            config=_plain(config) if config is not None else {},
            baseline_run_id=baseline_run_id,
        )
        with self.engine.begin() as conn:
            conn.execute(insert(_eval_runs).values(**row))
        return run_id

    def finish_eval_run(
        self,
        run_id: str,
        status: EvalRunStatus | str = EvalRunStatus.FINISHED,
        summary: Any = None,
        decision: Any = None,
    ) -> None:
        """Close a run.

        Args:
            status: finished | interrupted | budget_exhausted.
            summary: per-category figures (a dict or a dataclass).
            decision: the gate's verdict, e.g. {"verdict": "PASS", "reasons": [...]}.
        """
        if status not in set(EvalRunStatus):
            raise ValueError(f"eval run status must be one of {', '.join(EvalRunStatus)}, not {status!r}")
        values = dict(status=status, finished_at=utcnow(), summary=_plain(summary), decision=_plain(decision))
        with self.engine.begin() as conn:
            if not conn.execute(
                update(_eval_runs).where(_eval_runs.c.id == run_id).values(**values)
            ).rowcount:
                raise NotFoundError(f"no eval run {run_id!r}", hint=_RUN_HINT)

    def write_eval_results(self, run_id: str, results: Iterable[Any]) -> int:
        """Store per-repeat results of a run; each item is a RepeatResult-like dataclass or dict
        (suite, case_id, category, repeat, outcome, scores, output, status, latency_ms, cost_usd, ...).
        Keys without a column are ignored; missing ones get empty defaults."""
        rows = []
        for item in results:
            d = _plain(item)
            row = {key: d.get(key) for key in _EVAL_RESULT_KEYS}
            row["run_id"] = run_id
            row["scores"] = [_plain(s) for s in d.get("scores") or []]
            row["tool_calls"] = [_plain(t) for t in d.get("tool_calls") or []]
            row["tags"] = list(d.get("tags") or [])
            for key, default in (("suite", ""), ("output", ""), ("status", ""), ("replayed", False)):
                if row[key] is None:
                    row[key] = default
            for key in _EVAL_RESULT_NUMBERS:
                row[key] = row[key] or 0
            rows.append(row)
        if rows:
            try:
                with self.engine.begin() as conn:
                    conn.execute(insert(_eval_results), rows)
            except IntegrityError as e:
                if self.get_eval_run(run_id) is None:
                    raise NotFoundError(f"no eval run {run_id!r}; create it first") from None
                raise StoreError(f"eval results of run {run_id!r} could not be stored: {e.orig}") from None
        return len(rows)

    def get_eval_run(self, run_id: str, *, prefix: bool = False) -> dict[str, Any] | None:
        """The run as a dict (id, agent, version, suites, stage, started_at, finished_at, status,
        config, summary, decision, baseline_run_id), or None. `prefix`: also accept the start of an
        id when only one run's id starts so (the CLI); AmbiguousPrefixError names several."""
        found = self._dicts(select(_eval_runs).where(_eval_runs.c.id == run_id))
        if found or not prefix:
            return found[0] if found else None
        with self.engine.connect() as conn:
            matches = ids_with_prefix(conn, [_eval_runs.c.id], run_id)
        full = unique_prefix(matches, run_id, "eval run id", "give more of the id")
        return self.get_eval_run(full) if full is not None else None

    def list_eval_runs(
        self,
        agent: str | None = None,
        version: str | None = None,
        stage: str | None = None,
        limit: int | None = 50,
        *,
        status: str | None = None,
    ) -> list[dict[str, Any]]:
        """Runs matching the filters given, newest first."""
        c = _eval_runs.c
        query = select(_eval_runs)
        for column, value in ((c.agent, agent), (c.version, version), (c.stage, stage), (c.status, status)):
            if value is not None:
                query = query.where(column == value)
        query = query.order_by(c.started_at.desc(), c.id)
        if limit is not None:
            query = query.limit(limit)
        return self._dicts(query)

    def latest_eval_run(
        self, agent: str, version: str, stage: str | None = None, *, status: str | None = "finished"
    ) -> dict[str, Any] | None:
        """The newest run of a version (at a stage, if given); by default only finished runs."""
        found = self.list_eval_runs(agent, version, stage, limit=1, status=status)
        return found[0] if found else None

    def eval_results(self, run_id: str) -> list[dict[str, Any]]:
        """A run's results in the order they were written, as RepeatResult-shaped dicts."""
        query = select(_eval_results).where(_eval_results.c.run_id == run_id).order_by(_eval_results.c.id)
        return [{k: v for k, v in d.items() if k != "id"} for d in self._dicts(query)]

    def add_approval(self, run_id: str, by: str, reason: str = "") -> dict[str, Any]:
        """Record that `by` approved run `run_id` (e.g. a MARGINAL gate) and why."""
        if self.get_eval_run(run_id) is None:
            raise NotFoundError(f"no eval run {run_id!r} to approve", hint=_RUN_HINT)
        row = dict(run_id=run_id, by=by, reason=reason, created_at=utcnow())
        with self.engine.begin() as conn:
            conn.execute(insert(_approvals).values(**row))
        return row

    def approvals(self, run_id: str) -> list[dict[str, Any]]:
        """Approvals of a run, oldest first: dicts with run_id, by, reason, created_at."""
        query = select(_approvals).where(_approvals.c.run_id == run_id).order_by(_approvals.c.id)
        return [{k: v for k, v in d.items() if k != "id"} for d in self._dicts(query)]

    # API keys -----------------------------------------------------------------------------------
    def add_api_key(
        self, prefix: str, key_hash: str, role: str, *, name: str | None = None, key_id: str | None = None
    ) -> dict[str, Any]:
        """Store a key's public prefix and its hash (never the key itself).

        Args:
            prefix: the key's first characters, used to find it.
            key_hash: a hash of the whole key, compared by the caller.
            role: what the key may do (e.g. admin, gateway, read).
            name: a label people recognise.
        """
        row = dict(
            id=key_id or new_id(),
            prefix=prefix,
            hash=key_hash,
            role=role,
            name=name,
            created_at=utcnow(),
            revoked_at=None,
        )
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(_api_keys).values(**row))
        except IntegrityError:
            raise StoreError(
                f"an API key with prefix {prefix!r} or id {row['id']!r} already exists"
            ) from None
        return row

    def find_api_key_by_prefix(self, prefix: str, *, include_revoked: bool = False) -> dict[str, Any] | None:
        """The key with this prefix (None if absent, or revoked unless include_revoked)."""
        query = select(_api_keys).where(_api_keys.c.prefix == prefix)
        if not include_revoked:
            query = query.where(_api_keys.c.revoked_at.is_(None))
        found = self._dicts(query)
        return found[0] if found else None

    def list_api_keys(self, *, include_revoked: bool = True) -> list[dict[str, Any]]:
        """All keys, oldest first (hashes included; never show them to people)."""
        query = select(_api_keys).order_by(_api_keys.c.created_at, _api_keys.c.id)
        if not include_revoked:
            query = query.where(_api_keys.c.revoked_at.is_(None))
        return self._dicts(query)

    def revoke_api_key(self, ref: str) -> dict[str, Any]:
        """Revoke the key whose id or prefix is `ref`; revoking twice keeps the first time."""
        c = _api_keys.c
        with self.engine.begin() as conn:
            conn.execute(
                update(_api_keys)
                .where((c.id == ref) | (c.prefix == ref), c.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
            row = conn.execute(select(_api_keys).where((c.id == ref) | (c.prefix == ref))).first()
        if row is None:
            raise NotFoundError(
                f"no API key with id or prefix {ref!r}", hint="list the keys to see their prefixes"
            )
        return dict(row._mapping)

    # helpers ------------------------------------------------------------------------------------
    def _dicts(self, query: Select[Any]) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def _insert_ignoring_duplicates(self, table: Table) -> Insert:
        return self.backend.insert(table).on_conflict_do_nothing()


def _store_url_error(cfg: ShipyardConfig, e: StoreError) -> ShipyardError:
    """`e`, raised opening the database that `store.url` of a loaded shipyard.yaml names, as an error
    naming the file and line: a wrong URL is a ConfigError (`line N: store.url: ...`); a database
    that cannot be opened (down, schema too new) keeps its message and hint, which adds where the URL
    is set."""
    from shipyard.config import line_of, load_yaml_with_lines

    path = cfg.path
    if path is None:
        return e
    try:
        line = line_of(("store", "url"), load_yaml_with_lines(path)[1])
    except ConfigError:  # the file changed or went away since it was loaded: name the file alone
        line = None
    where = f"line {line}: " if line else ""
    if isinstance(e, StoreUrlError):
        return ConfigError(
            str(path),
            [f"{where}store.url: {e.message}"],
            hint="store.url is sqlite:///path/to/file.db (relative to the project) or "
            f"postgresql://user@host:5432/db; ${ENV_URL} overrides it",
        )
    at = f"store.url is set in {path}{f' line {line}' if line else ''}"
    return StoreError(e.message, hint=f"{e.hint}; {at}" if e.hint else at)


def _backend(url: str) -> StoreBackend:
    """The registered backend of a URL's scheme; StoreUrlError naming the known ones otherwise."""
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        raise StoreUrlError(
            f"cannot parse the database URL {url!r}",
            hint=f"set ${ENV_URL} or store.url to sqlite:///path/to/file.db or postgresql://user@host:5432/db",
        ) from None
    scheme = scheme_of(url)
    if scheme not in STORE_BACKENDS:
        raise StoreUrlError(
            f"unsupported database URL {shown!r}: {STORE_BACKENDS.unknown_message(scheme)}",
            hint=f"set ${ENV_URL} or store.url to sqlite:///path/to/file.db or postgresql://user@host:5432/db",
        )
    return STORE_BACKENDS.get(scheme)


@dataclasses.dataclass(frozen=True, slots=True)
class PruneResult:
    """What `Store.prune` did: interactions deleted (with their spans), `records_bytes()` (on disk,
    with their indexes) before and after, and cost ledger rows deleted (with their feature tags)."""

    deleted: int
    bytes_before: int
    bytes_after: int
    ledger_deleted: int = 0


def _create_engine(url: str, backend: StoreBackend) -> Engine:
    parsed = make_url(url)  # _backend parsed it already
    try:
        return backend.engine(parsed, _dumps)
    except (NoSuchModuleError, ArgumentError, ImportError) as e:
        raise StoreUrlError(
            f"unsupported database URL {parsed.render_as_string(hide_password=True)!r}: {e}",
            hint=f"known database backends: {', '.join(STORE_BACKENDS.names())}",
        ) from None


def _open_error(url: str, e: SQLAlchemyError) -> StoreError:
    reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
    return StoreError(
        f"cannot open the database {make_url(url).render_as_string(hide_password=True)}: {reason}",
        hint=f"check ${ENV_URL} or store.url in shipyard.yaml, and that the database server is running",
    )


# rows <-> records -----------------------------------------------------------------------------------
INTERACTION_COLUMNS = (
    "id",
    "trace_id",
    "session_id",
    "user_id",
    "agent",
    "version",
    "traffic_source",
    "input",
    "output",
    "status",
    "latency_ms",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cost_usd",
    "tool_calls",
    "llm_calls",
    "guardrails",
    "error",
    "metadata",
    "created_at",
    "thumbs",
    "score",
    "comment",
    "feedback_at",
)
"""The interactions table's columns in the order of `_interaction_values`."""

SPAN_COLUMNS = (
    "trace_id",
    "span_id",
    "parent_id",
    "name",
    "kind",
    "start_ns",
    "end_ns",
    "status",
    "attributes",
)
"""The spans table's columns in the order of `_span_values`."""

_CONVERT = ("feedback_at",)  # a UTC datetime: SQLite keeps it as SQLAlchemy's text form


def _interaction_values(r: InteractionRecord) -> tuple[Any, ...]:
    """A record as a row of `INTERACTION_COLUMNS`, its JSON columns encoded (dataclasses as objects)."""
    fb = r.feedback
    if fb:
        at = fb.get("at")
        feedback = (
            fb.get("thumbs"),
            fb.get("score"),
            fb.get("comment"),
            datetime.fromtimestamp(at, UTC) if at is not None else None,
        )
    else:
        feedback = (None, None, None, None)
    return (
        r.id,
        r.trace_id,
        r.session_id,
        r.user_id,
        r.agent,
        r.version,
        r.traffic_source,
        r.input,
        r.output,
        r.status,
        r.latency_ms,
        r.input_tokens,
        r.output_tokens,
        r.cached_input_tokens,
        r.cost_usd,
        _dumps(r.tool_calls),
        _dumps(r.llm_calls),
        _dumps(r.guardrails),
        r.error,
        _dumps(r.metadata),
        r.created_at,
        *feedback,
    )


def _span_values(s: SpanRecord) -> tuple[Any, ...]:
    """A span as a row of `SPAN_COLUMNS`."""
    return (
        s.trace_id,
        s.span_id,
        s.parent_id,
        s.name,
        s.kind,
        s.start_ns,
        s.end_ns,
        s.status,
        _dumps(s.attributes),
    )


def _interaction_from_row(row: Row[Any]) -> InteractionRecord:
    m = row._mapping
    feedback = None
    if m["thumbs"] is not None or m["score"] is not None or m["comment"] is not None:
        at = m["feedback_at"]
        feedback = {
            "thumbs": m["thumbs"],
            "score": m["score"],
            "comment": m["comment"],
            "at": at.timestamp() if at is not None else None,
        }
    return InteractionRecord(
        id=m["id"],
        trace_id=m["trace_id"],
        session_id=m["session_id"],
        user_id=m["user_id"],
        agent=m["agent"],
        version=m["version"],
        traffic_source=m["traffic_source"],
        input=m["input"],
        output=m["output"],
        status=m["status"],
        latency_ms=m["latency_ms"],
        input_tokens=m["input_tokens"],
        output_tokens=m["output_tokens"],
        cached_input_tokens=m["cached_input_tokens"],
        cost_usd=m["cost_usd"],
        tool_calls=[ToolCallRecord(**_known(d, _TOOL_FIELDS)) for d in m["tool_calls"]],
        llm_calls=[LLMCallRecord(**_known(d, _LLM_FIELDS)) for d in m["llm_calls"]],
        guardrails=m["guardrails"],
        error=m["error"],
        metadata=m["metadata"],
        created_at=m["created_at"],
        feedback=feedback,
    )


def _known(d: Mapping[str, Any], names: frozenset[str]) -> dict[str, Any]:
    """Only the keys a record class has, so rows written by a newer Shipyard still load."""
    return {k: v for k, v in d.items() if k in names}
