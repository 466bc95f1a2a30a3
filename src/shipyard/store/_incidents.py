"""Incidents (DESIGN.md §5): the store's methods over the `incidents` and `incident_occurrences` tables.

An incident groups what production showed: occurrences of the same agent with the same failure and a
similar input land on one incident, whose `count` grows, so one bad day is not a thousand incidents.
Every occurrence keeps its provenance (interaction, trace, spans). An interaction counts once per
source (a unique index), so applying a rule to the past twice adds nothing.

The lifecycle is enforced here, for every caller (CLI, admin API, dashboard, promotion, eval runs), in
one conditional UPDATE per change (`WHERE state = :from`), so two reviewers acting at once cannot both
move an incident:

    open → triaged → candidate → golden → in_suite → fixed      (any but fixed → wont_fix)

An incident only moves forward (it may skip steps: promotion takes an open incident with an
expectation to golden); fixed and wont_fix are final. A failure that comes back after a fix opens a
new incident (grouping never joins a fixed one).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, and_, case, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from shipyard.errors import ConflictError, NotFoundError, ShipyardError
from shipyard.store._models import eval_results as _results
from shipyard.store._models import eval_runs as _runs
from shipyard.store._models import incident_occurrences as _occurrences
from shipyard.store._models import incidents as _incidents
from shipyard.store._prefix import ids_with_prefix, unique_prefix
from shipyard.store._records import new_id

INCIDENT_STATES: tuple[str, ...] = ("open", "triaged", "candidate", "golden", "in_suite", "fixed", "wont_fix")
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "open": ("triaged", "candidate", "golden", "wont_fix"),
    "triaged": ("candidate", "golden", "wont_fix"),
    "candidate": ("golden", "wont_fix"),
    "golden": ("in_suite", "wont_fix"),
    "in_suite": ("fixed", "wont_fix"),
    "fixed": (),  # final: if the failure comes back, it is a new incident
    "wont_fix": (),  # final
}
"""The lifecycle: from each state, the states it may move to (forward only; README "Incidents")."""

MAX_OCCURRENCES_SHOWN = 50

_HINT = "list incidents with `shipyard incidents list`; an id prefix works when it is unique"


@dataclass(slots=True)
class IncidentSignal:
    """One thing production showed that may be an incident.

    Args:
        agent: the agent it happened to.
        failure: what went wrong, as a signature grouped on (`status:failed`, `guardrail:pii:block`).
        source: where it came from (alert, guardrail, tool_policy, error, feedback, escalation,
            complaint, rule:<name>).
        title: one line people read.
        input: the user's input (empty for an alert).
        tokens: the input's normalised words; inputs sharing enough of them are "similar".
        version, interaction_id, trace_id, span_ids: provenance.
        detail: what the source said (a reason, a comment).
        rule: the rule that matched, if any.
        state: the state a new incident starts in (open, or candidate for a rule's candidates).
        review: put a new incident in the review queue.
        expectation: a human correction that came with it (a complaint's expected answer).
        at: when it happened (epoch seconds).
    """

    agent: str
    failure: str
    source: str
    title: str
    input: str = ""
    tokens: Sequence[str] = ()
    version: str | None = None
    interaction_id: str | None = None
    trace_id: str | None = None
    span_ids: Sequence[str] = ()
    detail: str = ""
    rule: str | None = None
    state: str = "open"
    review: bool = False
    expectation: Mapping[str, Any] | None = None
    at: float = field(default_factory=time.time)


@dataclass(slots=True, frozen=True)
class IncidentHit:
    """Where a signal went: its incident, whether that incident is new, and whether the signal was
    already recorded (the same interaction and source: nothing changed)."""

    incident_id: str
    created: bool
    duplicate: bool = False


def similarity(a: Iterable[str], b: Iterable[str]) -> float:
    """Jaccard similarity of two word sets (1.0 for two empty inputs, e.g. two alert firings)."""
    sa, sb = set(a), set(b)
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)


def _entry(s: IncidentSignal, frm: str | None, to: str) -> dict[str, Any]:
    return {"at": s.at, "from": frm, "to": to, "by": s.source, "note": s.title[:200]}


def _new_row(incident_id: str, s: IncidentSignal) -> dict[str, Any]:
    return {
        "id": incident_id,
        "agent": s.agent,
        "version": s.version,
        "source": s.source,
        "failure": s.failure,
        "title": s.title[:500],
        "input": s.input,
        "tokens": list(s.tokens),
        "state": s.state,
        "review": s.review,
        "count": 1,
        "interaction_id": s.interaction_id,
        "trace_id": s.trace_id,
        "expectation": dict(s.expectation) if s.expectation else None,
        "suite": None,
        "case_id": None,
        "fixed_version": None,
        "history": [_entry(s, None, s.state)],
        "first_seen": s.at,
        "last_seen": s.at,
    }


def _fold(row: dict[str, Any], s: IncidentSignal, again: bool) -> None:
    """Another signal onto an incident made earlier in the same batch."""
    row["count"] += 0 if again else 1
    row["first_seen"] = min(row["first_seen"], s.at)
    row["last_seen"] = max(row["last_seen"], s.at)
    row["review"] = row["review"] or s.review
    if s.state == "candidate" and row["state"] == "open":
        row["state"], row["review"] = "candidate", True
        row["history"].append(_entry(s, "open", "candidate"))
    if s.expectation and not row["expectation"]:
        row["expectation"] = dict(s.expectation)


class IncidentStore:
    """The store's incident methods; `Store` inherits them (it provides `engine`)."""

    engine: Engine

    def record_incident(self, signal: IncidentSignal, *, min_similarity: float = 0.5) -> IncidentHit:
        """Group a signal onto an incident: the most similar one of the same agent and failure that is
        not fixed (similarity of inputs at least `min_similarity`), else a new incident. An
        interaction already recorded for the same source changes nothing (`duplicate`)."""
        if signal.state not in INCIDENT_STATES:
            raise ShipyardError(f"an incident cannot start as {signal.state!r}; use one of {INCIDENT_STATES}")
        for _ in range(3):  # two writers may race for the same new interaction: the loser re-reads
            try:
                return self._record_once(signal, min_similarity)
            except IntegrityError:
                if signal.interaction_id is None:
                    raise
                found = self._occurrence_of(signal.interaction_id, signal.source)
                if found is not None:
                    return IncidentHit(found, False, True)
        raise ConflictError("the incident could not be recorded after 3 tries (concurrent writers)")

    def _occurrence_of(self, interaction_id: str, source: str) -> str | None:
        c = _occurrences.c
        query = select(c.incident_id).where(c.interaction_id == interaction_id, c.source == source)
        with self.engine.connect() as conn:
            return conn.execute(query).scalar_one_or_none()

    def record_incidents(
        self, signals: Sequence[IncidentSignal], *, min_similarity: float = 0.5
    ) -> list[IncidentHit]:
        """`record_incident` for many signals in one transaction (one commit: what a busy watcher or a
        backfill needs); when a concurrent writer gets in the way, they are recorded one by one."""
        if not signals:
            return []
        for s in signals:
            if s.state not in INCIDENT_STATES:
                raise ShipyardError(f"an incident cannot start as {s.state!r}; use one of {INCIDENT_STATES}")
        try:
            with self.engine.begin() as conn:
                return self._record_batch(conn, signals, min_similarity)
        except IntegrityError:
            return [self.record_incident(s, min_similarity=min_similarity) for s in signals]

    def _record_once(self, s: IncidentSignal, min_similarity: float) -> IncidentHit:
        with self.engine.begin() as conn:
            return self._record_batch(conn, [s], min_similarity)[0]

    def _record_batch(
        self, conn: Connection, signals: Sequence[IncidentSignal], min_similarity: float
    ) -> list[IncidentHit]:
        """Group `signals` in the caller's transaction: one read of the occurrences of their
        interactions, one read of the incidents per (agent, failure), then one write per incident
        touched and one insert of all occurrences."""
        c, oc = _incidents.c, _occurrences.c
        known: dict[tuple[str, str], str] = {}  # (interaction, source) -> incident
        on_incident: set[tuple[str, str]] = set()  # (incident, interaction)
        ids = sorted({s.interaction_id for s in signals if s.interaction_id is not None})
        for k in range(0, len(ids), 500):
            query = select(oc.incident_id, oc.interaction_id, oc.source).where(
                oc.interaction_id.in_(ids[k : k + 500])
            )
            for row in conn.execute(query):
                known[(row.interaction_id, row.source)] = row.incident_id
                on_incident.add((row.incident_id, row.interaction_id))
        pools: dict[tuple[str, str], list[tuple[str, list[str]]]] = {}
        created_rows: dict[str, dict[str, Any]] = {}
        changes: dict[str, dict[str, Any]] = {}
        occurrences: list[dict[str, Any]] = []
        hits: list[IncidentHit] = []
        for s in signals:
            if s.interaction_id is not None and (s.interaction_id, s.source) in known:
                hits.append(IncidentHit(known[(s.interaction_id, s.source)], False, True))
                continue
            key = (s.agent, s.failure)
            if key not in pools:
                rows = conn.execute(
                    select(c.id, c.tokens)
                    .where(c.agent == s.agent, c.failure == s.failure, c.state != "fixed")
                    .order_by(c.last_seen.desc())
                    .limit(200)
                ).all()
                pools[key] = [(r.id, list(r.tokens or [])) for r in rows]
            best, score = None, -1.0
            for incident_id, tokens in pools[key]:
                sim = similarity(s.tokens, tokens)
                if sim > score:
                    best, score = incident_id, sim
            created = best is None or score < min_similarity
            again = False
            if created:
                incident_id = "inc-" + new_id()[:12]
                created_rows[incident_id] = _new_row(incident_id, s)
                pools[key].insert(0, (incident_id, list(s.tokens)))
            else:
                assert best is not None
                incident_id = best
                again = s.interaction_id is not None and (incident_id, s.interaction_id) in on_incident
                if incident_id in created_rows:
                    _fold(created_rows[incident_id], s, again)
                else:
                    ch = changes.setdefault(incident_id, {"count": 0, "last_seen": s.at, "review": False})
                    ch["count"] += 0 if again else 1
                    ch["last_seen"] = max(ch["last_seen"], s.at)
                    ch["review"] |= s.review
                    if s.state == "candidate" and "candidate" not in ch:
                        ch["candidate"] = _entry(s, "open", "candidate")
                    if s.expectation and "expectation" not in ch:
                        ch["expectation"] = dict(s.expectation)
            if s.interaction_id is not None:
                known[(s.interaction_id, s.source)] = incident_id
                on_incident.add((incident_id, s.interaction_id))
            occurrences.append(
                {
                    "incident_id": incident_id,
                    "interaction_id": s.interaction_id,
                    "trace_id": s.trace_id,
                    "span_ids": list(s.span_ids),
                    "source": s.source,
                    "rule": s.rule,
                    "detail": s.detail[:2000],
                    "at": s.at,
                }
            )
            hits.append(IncidentHit(incident_id, created))
        if created_rows:
            conn.execute(insert(_incidents), list(created_rows.values()))
        latest = func.greatest if conn.dialect.name == "postgresql" else func.max
        for incident_id, ch in changes.items():
            values: dict[str, Any] = {"last_seen": latest(c.last_seen, ch["last_seen"])}
            if ch["count"]:
                values["count"] = c.count + ch["count"]
            if ch["review"]:
                values["review"] = True
            conn.execute(update(_incidents).where(c.id == incident_id).values(**values))
            if "candidate" in ch:  # a rule's candidate lifts an open incident into the review queue
                hist = conn.execute(select(c.history).where(c.id == incident_id, c.state == "open")).first()
                if hist is not None:
                    conn.execute(
                        update(_incidents)
                        .where(c.id == incident_id, c.state == "open")
                        .values(
                            state="candidate", review=True, history=[*(hist.history or []), ch["candidate"]]
                        )
                    )
            if "expectation" in ch:  # a correction that came later fills an incident that has none
                conn.execute(
                    update(_incidents)
                    .where(c.id == incident_id, c.expectation.is_(None))
                    .values(expectation=ch["expectation"])
                )
        if occurrences:
            conn.execute(insert(_occurrences), occurrences)
        return hits

    def get_incident(self, ref: str, *, occurrences: int = MAX_OCCURRENCES_SHOWN) -> dict[str, Any]:
        """The incident whose id is `ref` (or starts with it, when only one does), with its newest
        `occurrences` (provenance) under `occurrences`. Raises NotFoundError."""
        c = _incidents.c
        with self.engine.connect() as conn:
            row: Any = conn.execute(select(_incidents).where(c.id == ref)).first()
            if row is None:
                full = unique_prefix(
                    ids_with_prefix(conn, [c.id], ref), ref, "incident id", "give more of the id"
                )
                if full is not None:
                    row = conn.execute(select(_incidents).where(c.id == full)).first()
            if row is None:
                raise NotFoundError(f"no incident {ref!r}", hint=_HINT)
            out = dict(row._mapping)
            oc = _occurrences.c
            occ = conn.execute(
                select(_occurrences)
                .where(oc.incident_id == out["id"])
                .order_by(oc.at.desc(), oc.id.desc())
                .limit(occurrences)
            )
            out["occurrences"] = [{k: v for k, v in r._mapping.items() if k != "incident_id"} for r in occ]
        return out

    def list_incidents(
        self,
        agent: str | None = None,
        state: str | Sequence[str] | None = None,
        *,
        review: bool | None = None,
        limit: int | None = 100,
    ) -> list[dict[str, Any]]:
        """Incidents matching the filters, most recently seen first."""
        c = _incidents.c
        query = select(_incidents)
        if agent is not None:
            query = query.where(c.agent == agent)
        if isinstance(state, str):
            query = query.where(c.state == state)
        elif state is not None:
            query = query.where(c.state.in_(list(state)))
        if review is not None:
            query = query.where(c.review.is_(review))
        query = query.order_by(c.last_seen.desc(), c.id)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def count_incidents(self, agent: str | None = None) -> int:
        query = select(func.count()).select_from(_incidents)
        if agent is not None:
            query = query.where(_incidents.c.agent == agent)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def transition_incident(
        self, ref: str, to: str, *, by: str, note: str = "", **values: Any
    ) -> dict[str, Any]:
        """Move an incident to state `to` (see TRANSITIONS), recording who and why, and set `values`
        (expectation, suite, case_id, fixed_version, review) in the same UPDATE. A move the lifecycle
        does not allow is a ShipyardError naming the allowed ones; a concurrent move, a ConflictError."""
        if to not in INCIDENT_STATES:
            raise ShipyardError(f"unknown incident state {to!r}; states are {', '.join(INCIDENT_STATES)}")
        bad = set(values) - {"expectation", "suite", "case_id", "fixed_version", "review"}
        if bad:
            raise ValueError(f"cannot set {sorted(bad)} on an incident")
        current = self.get_incident(ref, occurrences=0)
        frm = current["state"]
        if to not in TRANSITIONS[frm]:
            allowed = ", ".join(TRANSITIONS[frm]) or f"none, {frm} is final"
            raise ShipyardError(
                f"incident {current['id']} is {frm}; it cannot move to {to} (from {frm}: {allowed})",
                hint="an incident only moves forward, open -> triaged -> candidate -> golden -> in_suite -> "
                "fixed, or to wont_fix; fixed and wont_fix are final (`shipyard incidents show ID`: its history)",
            )
        if to == "in_suite" and not (values.get("suite") and values.get("case_id")):
            raise ShipyardError(
                f"incident {current['id']} can be in_suite only once its case is written to a suite",
                hint=f"shipyard incidents promote {current['id']} --suite FILE (it writes the case)",
            )
        if to == "fixed" and not values.get("fixed_version"):
            raise ShipyardError(
                f"incident {current['id']} becomes fixed only when a version passes its case in an eval run",
                hint="run the suite with its case (the production gate runs it) on the version with the fix",
            )
        if to == "golden" and not (values.get("expectation") or current.get("expectation")):
            raise ShipyardError(
                f"incident {current['id']} has no expectation, so it cannot be a golden case (a complaint "
                "or a thumbs-down without a correction is a candidate at most)",
                hint="give one: shipyard incidents promote ID --expect/--contains/--must-not-call/"
                "--must-refuse/--trajectory, or edit it in the review queue",
            )
        entry = {"at": time.time(), "from": frm, "to": to, "by": by, "note": note}
        c = _incidents.c
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(_incidents)
                .where(c.id == current["id"], c.state == frm)
                .values(state=to, history=[*(current["history"] or []), entry], **values)
            ).rowcount
        if not changed:
            raise ConflictError(
                f"incident {current['id']} changed while moving it from {frm} to {to}",
                hint="show it again and retry",
            )
        return self.get_incident(current["id"])

    def update_incident(self, ref: str, *, by: str, note: str = "", **values: Any) -> dict[str, Any]:
        """Set fields of an incident without moving it (expectation, review), noting who did it."""
        bad = set(values) - {"expectation", "review"}
        if bad:
            raise ValueError(f"cannot set {sorted(bad)} on an incident without a transition")
        current = self.get_incident(ref, occurrences=0)
        entry = {"at": time.time(), "from": current["state"], "to": current["state"], "by": by, "note": note}
        c = _incidents.c
        with self.engine.begin() as conn:
            conn.execute(
                update(_incidents)
                .where(c.id == current["id"])
                .values(history=[*(current["history"] or []), entry], **values)
            )
        return self.get_incident(current["id"])

    def case_outcomes(self, suite: str, case_id: str, since: float | None = None) -> list[dict[str, Any]]:
        """How each finished eval run that ran one case did, oldest run first: dicts with run_id,
        version, started_at, passed (every repeat PASS) and repeats."""
        r, e = _runs.c, _results.c
        query = (
            select(
                r.id,
                r.version,
                r.started_at,
                func.count().label("repeats"),
                func.sum(case((e.outcome == "PASS", 1), else_=0)).label("passes"),
            )
            .select_from(_results.join(_runs, e.run_id == r.id))
            .where(
                and_(e.suite == suite, e.case_id == case_id), or_(r.status == "finished", r.status.is_(None))
            )
            .group_by(r.id, r.version, r.started_at)
            .order_by(r.started_at)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        out = []
        for row in rows:
            if since is not None and row.started_at.timestamp() < since:
                continue
            out.append(
                {
                    "run_id": row.id,
                    "version": row.version,
                    "started_at": row.started_at,
                    "repeats": int(row.repeats),
                    "passed": int(row.passes or 0) == int(row.repeats),
                }
            )
        return out
