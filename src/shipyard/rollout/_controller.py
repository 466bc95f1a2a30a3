"""The rollout controller: deploys, canaries, blue-green switches, and the decisions they make.

All state lives in the store (the `deployments` row and its decision log), so the controller holds
nothing between calls: a restart resumes where the row says, and several server replicas can tick
the same canary safely, because every change is an `UPDATE ... WHERE revision = :read` and only
the replica that wins acts (the others see a ConflictError and skip). Methods are synchronous and
block on the store; async code calls them in a thread.

A canary moves through its steps (default 5, 25, 50, 100 percent). Each `tick()` analyses the
candidate against the stable version on the same window (since the step started):

    INSUFFICIENT_DATA -> hold          PASS -> step up (to 100%: promote: the candidate is stable)
    MARGINAL or SRM   -> pause         FAIL -> roll back at once (0% to the candidate)

A step also waits for its minimum duration and interactions per arm, and (optionally) for an eval
gate before the weight rises. In dry-run mode every decision is recorded as `dry_run` with what
would have been done, and nothing changes.

Only versions that passed their production gate take non-admin traffic (`gate_for_traffic`): a
canary's candidate, a green, each arm of an experiment needs a PASS (or an approved MARGINAL) to
start, unless an admin overrides the gate with a reason, which the start decision and the
deployment keep. Before each step up and before a promotion the candidate's gate is read again
(`_regate`): a production gate run made since the start that does not pass rolls the candidate
back (its traffic would break the rule, and holding would keep it); an override covers the
candidate's traffic but never its promotion (promotion makes it stable, as `deploy` does, and
`deploy` has no override), so an overridden candidate that reaches promotion holds until its gate
passes. A running experiment is ticked too: a gate run since its start that refuses either arm stops
it. A gate decision counts only when made under the current gate rules (`evals.GATE_RULES`), and a
start, switch or step up that an override let through is written to the audit log
(`audit_override`).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.errors import ConflictError, GateFailed, NotFoundError, ShipyardError
from shipyard.evals import GATE_RULES
from shipyard.observe import log_event
from shipyard.rollout._assigner import publish_change
from shipyard.rollout._deployment import DEFAULT_STEPS, Deployment, RolloutAction, RolloutState, Strategy
from shipyard.types import TrafficSource

if TYPE_CHECKING:
    from shipyard.rollout._gate import EvalGateResult
    from shipyard.runtime import Runtime
    from shipyard.store import InteractionRecord

Resolver = Callable[[str, str | None], str]
# (agent, candidate version id, suite paths) -> what the gate decided (`rollout.eval_gate` makes one)
EvalGate = Callable[[str, str, list[str]], "EvalGateResult"]
RECORD_LIMIT = 50_000  # the most records per arm one analysis reads


@dataclass(frozen=True, slots=True)
class Decision:
    """What the controller (or a person) decided, and everything it was decided on."""

    agent: str
    action: RolloutAction
    verdict: str | None = None
    reasons: list[str] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)
    step: int = 0
    candidate: str | None = None
    actor: str = "auto"
    recorded: bool = True  # False: a repeated hold not written again (see `hold_every_s`)

    def __post_init__(self) -> None:  # a logged decision's string becomes the enum
        object.__setattr__(self, "action", RolloutAction(self.action))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def row(self) -> dict[str, Any]:
        """The fields the store's decision log keeps."""
        return {
            "candidate": self.candidate,
            "step": self.step,
            "action": self.action,
            "verdict": self.verdict,
            "reasons": self.reasons,
            "numbers": self.numbers,
            "actor": self.actor,
        }


def parse_steps(steps: Sequence[int] | str) -> list[int]:
    """Canary steps as percents: each 1-100, strictly increasing (`"5,25,50,100"` or a list)."""
    if isinstance(steps, str):
        try:
            values = [int(s) for s in steps.replace(" ", "").split(",") if s]
        except ValueError:
            raise ShipyardError(
                f"steps must be comma-separated whole percents like 5,25,50,100, got {steps!r}"
            ) from None
    else:
        values = [int(s) for s in steps]
    if not values:
        raise ShipyardError("a canary needs at least one step, e.g. --steps 5,25,50,100")
    for w in values:
        if not 1 <= w <= 100:
            raise ShipyardError(
                f"step weight {w} is outside 1-100: a step is the candidate's percent of traffic"
            )
    if any(b <= a for a, b in itertools.pairwise(values)):
        raise ShipyardError(f"steps must increase, got {','.join(map(str, values))}")
    return values


def gate_command(agent: str, version: str) -> str:
    """The command that runs `version`'s production gate (its label, as a user types it)."""
    label = version.split("@", 1)[-1].split("+", 1)[0]
    return f"shipyard gate production --agent {agent} --version {label}"


def production_gate(
    store: Any, agent: str, version: str, *, doing: str = "be deployed"
) -> tuple[dict[str, Any] | None, GateFailed | None]:
    """`version`'s newest production gate run (None: never gated), and why it may not ship (None:
    it may: a PASS, or a MARGINAL with a recorded approval). See `check_deployable`."""
    run = store.latest_eval_run(agent, version, stage="production")
    if run is None:
        return None, GateFailed(
            f"{version} has no production gate run, so it cannot {doing}",
            hint=f"run `{gate_command(agent, version)}` first",
        )
    decision = run.get("decision") or {}
    verdict = decision.get("verdict")
    if verdict in ("PASS", "MARGINAL") and int(decision.get("rules") or 1) < GATE_RULES:
        return run, GateFailed(
            f"the production gate of {version} (run {run['id']}) was decided under the gate rules before "
            f"they failed closed (rules {decision.get('rules') or 1}, now {GATE_RULES}), so it cannot {doing}",
            hint=f"run `{gate_command(agent, version)}` again",
        )
    if verdict == "PASS":
        return run, None
    if verdict == "MARGINAL":
        if store.approvals(run["id"]):
            return run, None
        return run, GateFailed(
            f"the production gate of {version} (run {run['id']}) was MARGINAL and nobody approved it",
            hint=f"approve it with `shipyard gate approve {run['id']} --by NAME --reason TEXT`, or fix and re-gate",
        )
    failed = [
        c.get("name", "?")
        for c in decision.get("checks", [])
        if not c.get("passed", True) and not c.get("skipped")
    ]
    why = "; ".join(str(r) for r in (decision.get("reasons") or [])[:5])
    if not decision:
        why = "the run has no gate decision recorded"
    checks = f" (failed checks: {', '.join(failed)})" if failed else ""
    return run, GateFailed(
        f"the latest production gate of {version} (run {run['id']}) is {verdict or 'undecided'}{checks}"
        + (f": {why}" if why else ""),
        hint=f"fix the failures and run `{gate_command(agent, version)}` again",
    )


def check_deployable(store: Any, agent: str, version: str, *, doing: str = "be deployed") -> dict[str, Any]:
    """The production gate run that allows `version` to ship: a PASS, or a MARGINAL with a recorded
    approval. Raises GateFailed saying which run failed and why, or how to run the gate.

    Args:
        doing: what the version cannot do without it, for the message ("take canary traffic").
    """
    run, refused = production_gate(store, agent, version, doing=doing)
    if refused is not None:
        raise refused
    assert run is not None
    return run


MAX_OVERRIDE_REASON = 500  # characters


def override_reason(reason: str | None) -> str | None:
    """The reason of a gate override, stripped; None when there is no override. Raises
    ShipyardError when it is empty or too long: an override says why."""
    if reason is None:
        return None
    text = " ".join(str(reason).split())
    if not text:
        raise ShipyardError(
            "overriding the production gate needs a reason, recorded with your name in the decision log",
            hint='e.g. --override-gate "hotfix for incident 42; gate suite broken, see #123"',
        )
    if len(text) > MAX_OVERRIDE_REASON:
        raise ShipyardError(
            f"the gate override's reason is {len(text)} characters; at most {MAX_OVERRIDE_REASON}"
        )
    return text


def gate_for_traffic(
    store: Any,
    agent: str,
    versions: Sequence[str],
    *,
    doing: str,
    override: str | None = None,
    actor: str = "cli",
    at: float | None = None,
) -> dict[str, Any]:
    """Check that every version in `versions` may take non-admin traffic (`check_deployable`), or
    that an admin overrides the gate with a reason. Returns what the rollout keeps in its config and
    start decision as `gate`: `{"runs": {version: run id or None}, "override": {...} or None}`.

    Args:
        doing: what the versions are to do, for the refusal ("take canary traffic").
        override: the reason of an admin's override (`override_reason`); without one a version
            that did not pass raises GateFailed naming the run, or the command to run the gate.
        actor: who starts the rollout (recorded with an override).
        at: the controller's clock, recorded with an override.
    """
    reason = override_reason(override)
    runs: dict[str, str | None] = {}
    refused: dict[str, str] = {}
    for version in dict.fromkeys(versions):
        run, refusal = production_gate(store, agent, version, doing=doing)
        if refusal is not None:
            if reason is None:
                raise refusal
            refused[version] = refusal.message
        runs[version] = str(run["id"]) if run else None
    ride = {"by": actor, "reason": reason, "at": at, "refused": refused} if refused else None
    return {"runs": runs, "override": ride}


def require_shadow(store: Any, agent: str, candidate: str, stable: str, max_age_s: float, now: float) -> str:
    """The shadow step before a canary's first step (`shadow.require_before_canary`): the id of a
    shadow run of `candidate` against `stable` that passed, at most `max_age_s` old. Raises GateFailed
    naming what is missing and the command that runs it."""
    from shipyard.store._shadow import latest_shadow_run

    run = latest_shadow_run(store, agent, candidate, since=now - max_age_s)
    label = candidate.split("@", 1)[-1].split("+", 1)[0]
    command = f"shipyard shadow --agent {agent} --candidate {label}"
    if run is None or stable not in (run.get("baselines") or []):
        raise GateFailed(
            f"{candidate} needs a shadow run against the stable version {stable} in the last "
            f"{max_age_s / 3600:g}h before its canary (shadow.require_before_canary)",
            hint=f"run `{command}` on traffic {stable} served",
        )
    if run.get("verdict") != "PASS":
        why = "; ".join((run.get("summary") or {}).get("reasons", [])[:3])
        raise GateFailed(
            f"the latest shadow run of {candidate} (run {run['id']}) is {run.get('verdict')}: {why}",
            hint=f"fix the candidate and run `{command}` again",
        )
    return str(run["id"])


def override_lines(gate: dict[str, Any] | None, said_chars: int = 240) -> list[str]:
    """The override a rollout's `gate` record holds, as lines for a decision and `rollout status`:
    who overrode the gate and why, then what the gate said of each version (cut at `said_chars`;
    the record keeps it whole)."""
    ride = (gate or {}).get("override")
    if not ride:
        return []
    said = [str(m) for m in (ride.get("refused") or {}).values()]
    return [
        f"production gate overridden by {ride.get('by')}: {ride.get('reason')}",
        *(f"the gate said: {m if len(m) <= said_chars else m[: said_chars - 1] + '…'}" for m in said),
    ]


def audit_override(dep: Deployment, decision: Decision | None) -> None:
    """Write a decision that let traffic in under an admin's gate override to the audit log: one
    `gate_overridden` warning event with `audit: true`, who overrode the gate and why, who acted, and
    what the gate said of each version (the start of a canary, a green or an experiment, a switch,
    each step up the override covers). The decision log in the store keeps the same."""
    if decision is None or decision.action is RolloutAction.DRY_RUN:
        return
    n = decision.numbers
    started = decision.action is RolloutAction.START
    gate = (n.get("gate") if started else dep.config.get("gate")) or {}
    used = (
        (started and gate.get("override"))
        or n.get("gate_overridden")
        or (n.get("gate_check") or {}).get("overridden")
    )
    ride = gate.get("override")
    if not used or not ride:
        return
    log_event(
        "gate_overridden",
        level="warning",
        audit=True,
        agent=dep.agent,
        action=str(decision.action),
        candidate=decision.candidate,
        step=decision.step,
        actor=decision.actor,
        overridden_by=ride.get("by"),
        reason=ride.get("reason"),
        gate_said=ride.get("refused"),
    )


def analyze_arms(
    baseline: Sequence[InteractionRecord],
    canary: Sequence[InteractionRecord],
    *,
    expected_split: float | None,
    min_samples_per_arm: int,
) -> dict[str, Any]:
    """The canary analysis of two arms' records as a dict (verdict, score, metrics, srm, reasons),
    the one way every verdict on records is made (canary ticks, blue-green, the Argo and Flagger
    endpoints). Sessions with records in both arms are left out of both (`canary_arms`); the dict
    says how many: `mixed_sessions` (sessions) and `mixed_interactions` (their records per arm,
    ``{"baseline": i, "canary": j}``)."""
    from shipyard.rollout._analysis import analyze, canary_arms

    base, cand, left_out = canary_arms(baseline, canary)
    result = analyze(base, cand, expected_split=expected_split, min_samples_per_arm=min_samples_per_arm)
    out: dict[str, Any] = result.to_dict()
    out.update(left_out)
    return out


class RolloutController:
    """Changes deployments and records every decision.

    Args:
        store: the Store.
        resolve: `(agent, ref) -> version id`; ref None is the agent's current configured version.
            Raises NotFoundError for an unknown version (`RolloutController.for_runtime` uses the
            runtime's versions).
        clock: the time source (epoch seconds).
        eval_gate: runs suites against a candidate before a canary step's weight rises.
        redis_url: publish change notices on `shipyard:rollout` so replicas refresh at once.
        hold_every_s: write a repeated hold (same step, same verdict) at most this often.
        shadow_max_age_s: the project's `shadow.require_before_canary` in seconds, read at each start
            (None: a canary needs no shadow run); see `require_shadow`.
    """

    def __init__(
        self,
        store: Any,
        resolve: Resolver,
        *,
        clock: Callable[[], float] = time.time,
        eval_gate: EvalGate | None = None,
        redis_url: str | None = None,
        hold_every_s: float = 30.0,
        on_change: Callable[[str], None] | None = None,
        shadow_max_age_s: Callable[[], float | None] | None = None,
    ) -> None:
        self.store = store
        self.shadow_max_age_s = shadow_max_age_s
        self.resolve = resolve
        self.clock = clock
        self.eval_gate = eval_gate
        self.redis_url = redis_url
        self.hold_every_s = hold_every_s
        self.on_change = on_change

    @classmethod
    def for_runtime(cls, rt: Runtime, store: Any, **options: Any) -> RolloutController:
        """A controller that resolves versions with the runtime's configured versions."""

        def resolve(agent: str, ref: str | None) -> str:
            return rt.resolve_version(agent, ref).id

        options.setdefault("shadow_max_age_s", lambda: rt.cfg.shadow.require_before_canary_s)
        return cls(store, resolve, **options)

    # reading ------------------------------------------------------------------------------------
    def get(self, agent: str) -> Deployment:
        """The agent's deployment (a fresh, never-deployed one when there is no row)."""
        row = self.store.get_deployment(agent)
        return Deployment.from_row(row) if row else Deployment(agent=agent)

    def decisions(self, agent: str, limit: int = 10) -> list[dict[str, Any]]:
        return list(self.store.rollout_decisions(agent, limit=limit))

    # writing ------------------------------------------------------------------------------------
    def _save(self, dep: Deployment, values: dict[str, Any], decision: Decision | None) -> Deployment:
        row = self.store.save_deployment(
            dep.agent,
            values,
            expected_revision=dep.revision or None,
            decision=decision.row() if decision is not None else None,
        )
        publish_change(self.redis_url, dep.agent)
        if self.on_change is not None:
            self.on_change(dep.agent)
        audit_override(dep, decision)
        return Deployment.from_row(row)

    def _version(self, agent: str, ref: str | None) -> str:
        return self.resolve(agent, ref)

    def _refuse_overlap(self, dep: Deployment, doing: str) -> None:
        if dep.active:
            raise ShipyardError(
                f"cannot {doing}: {dep.agent!r} already has a {dep.strategy.replace('_', '-')} of "
                f"{dep.candidate_version} ({dep.state}, {dep.weight}%); one candidate at a time",
                hint=f"finish it first: `shipyard rollout promote|abort|rollback {dep.agent}`",
            )

    def deploy(self, agent: str, ref: str, *, actor: str = "cli") -> Deployment:
        """Make `ref` the stable version; refused without a passing (or approved) production gate."""
        version = self._version(agent, ref)
        dep = self.get(agent)
        self._refuse_overlap(dep, f"deploy {version}")
        numbers: dict[str, Any] = {"previous_stable": dep.stable_version}
        run = check_deployable(self.store, agent, version)
        numbers.update(gate_run=run["id"], gate_verdict=(run.get("decision") or {}).get("verdict"))
        decision = Decision(
            agent,
            RolloutAction.DEPLOY,
            "PASS",
            [f"{version} deployed as stable"],
            numbers,
            0,
            version,
            actor,
        )
        values = dict(
            stable_version=version,
            candidate_version=None,
            strategy=Strategy.NONE,
            weight=0,
            state=RolloutState.STABLE,
            step=0,
            started_at=None,
            config={"previous_stable": dep.stable_version},
        )
        return self._save(dep, values, decision)

    def _stable_of(self, dep: Deployment) -> str:
        return dep.stable_version or self._version(dep.agent, None)

    def gate_for_traffic(
        self, agent: str, versions: Sequence[str], *, doing: str, override_gate: str | None, actor: str
    ) -> dict[str, Any]:
        """`gate_for_traffic` on this controller's store and clock (see there)."""
        return gate_for_traffic(
            self.store, agent, versions, doing=doing, override=override_gate, actor=actor, at=self.clock()
        )

    def start_canary(
        self,
        agent: str,
        ref: str,
        *,
        steps: Sequence[int] | str = DEFAULT_STEPS,
        min_interactions: int = 50,
        min_duration_s: float = 60.0,
        dry_run: bool = False,
        gate_suites: Sequence[str] = (),
        gate_at: Sequence[int] | None = None,
        actor: str = "cli",
        override_gate: str | None = None,
    ) -> Deployment:
        """Start a canary of `ref` against the stable version; refused unless its latest production
        gate run passed (or was MARGINAL and approved), or an admin overrides the gate.

        Args:
            steps: the candidate's percent of traffic at each step; reaching 100 promotes it.
            min_interactions: interactions each arm needs in a step before it can pass.
            min_duration_s: how long a step lasts at least.
            dry_run: record what would be decided, change nothing (the candidate keeps the first step).
            gate_suites: eval suites the candidate must pass before its weight rises.
            gate_at: the step weights that need the gate (default: every step up when suites are given).
            override_gate: an admin's reason to canary a version that has not passed its production
                gate; recorded with `actor` in the start decision and the deployment. It covers the
                canary's traffic, not its promotion (see the module's docstring).
        """
        weights = parse_steps(steps)
        if min_interactions < 1:
            raise ShipyardError(f"min interactions must be at least 1, got {min_interactions}")
        if min_duration_s < 0:
            raise ShipyardError(f"min duration must not be negative, got {min_duration_s}")
        version = self._version(agent, ref)
        dep = self.get(agent)
        self._refuse_overlap(dep, f"start a canary of {version}")
        stable = self._stable_of(dep)
        if version == stable:
            raise ShipyardError(f"{version} is already the stable version of {agent!r}; nothing to roll out")
        gate = self.gate_for_traffic(
            agent, [version], doing="take canary traffic", override_gate=override_gate, actor=actor
        )
        max_age = self.shadow_max_age_s() if self.shadow_max_age_s is not None else None
        shadow = (
            require_shadow(self.store, agent, version, stable, max_age, self.clock()) if max_age else None
        )
        now = self.clock()
        config = {
            "shadow_run": shadow,
            "steps": weights,
            "min_interactions": min_interactions,
            "min_duration_s": min_duration_s,
            "dry_run": dry_run,
            "gate_suites": list(gate_suites),
            "gate_at": list(gate_at) if gate_at is not None else weights[1:],
            "step_started_at": now,
            "previous_stable": dep.stable_version,
            "gate": gate,
        }
        decision = Decision(
            agent,
            RolloutAction.START,
            None,
            [
                *override_lines(gate),
                *([f"shadow step: run {shadow} of {version} against {stable} passed"] if shadow else []),
                f"canary of {version} against {stable}: steps {','.join(map(str, weights))}%"
                + (" (dry run)" if dry_run else ""),
            ],
            {
                "steps": weights,
                "min_interactions": min_interactions,
                "min_duration_s": min_duration_s,
                "gate": gate,
            },
            0,
            version,
            actor,
        )
        values = dict(
            stable_version=stable,
            candidate_version=version,
            strategy=Strategy.CANARY,
            weight=weights[0],
            state=RolloutState.RUNNING,
            step=0,
            started_at=_dt(now),
            config=config,
        )
        return self._save(dep, values, decision)

    # the canary's automatic decisions -------------------------------------------------------------
    def tick(self, agent: str) -> Decision | None:
        """Analyse and act once; None when there is nothing to decide (no running rollout) or another
        replica acted on the same state first. Safe to call as often as you like."""
        dep = self.get(agent)
        try:
            if dep.strategy is Strategy.CANARY and dep.state is RolloutState.RUNNING:
                return self._tick_canary(dep)
            if (
                dep.strategy is Strategy.BLUE_GREEN
                and dep.state is RolloutState.SWITCHED
                and dep.config.get("promote_after_s")
            ):
                return self._tick_blue_green(dep)
            if dep.strategy is Strategy.EXPERIMENT and dep.state is RolloutState.RUNNING:
                return self._tick_experiment(dep)
        except ConflictError:
            return None
        return None

    def _tick_experiment(self, dep: Deployment) -> Decision | None:
        """Read both arms' production gates again: a gate run since the start that refuses an arm
        stops the experiment (both arms take non-admin traffic; an override covered the runs the
        experiment started with, not a later refusal). None while both may go on."""
        arms = dep.config.get("arms") or {}
        known = (dep.config.get("gate") or {}).get("runs") or {}
        for arm in ("a", "b"):
            version = str(arms.get(arm))
            found, refused = production_gate(self.store, dep.agent, version, doing="stay an experiment's arm")
            run = str(found["id"]) if found else None
            if refused is None or run is None or run == known.get(version):
                continue
            from shipyard.rollout._ab import stop_experiment

            why = f"production gate run {run} since the start refuses arm {arm.upper()}: {refused.message}"
            stop_experiment(self, dep.agent, actor="auto", why=[why])
            last = self.store.rollout_decisions(dep.agent, limit=1)[0]
            fields = {k: last[k] for k in Decision.__dataclass_fields__ if k in last}
            return Decision(**{**fields, "agent": dep.agent})
        return None

    def tick_all(self) -> list[Decision]:
        """Tick every agent with a running rollout."""
        out = []
        for row in self.store.list_deployments():
            d = self.tick(row["agent"])
            if d is not None:
                out.append(d)
        return out

    def _arms(
        self, dep: Deployment, since: float, until: float
    ) -> tuple[list[InteractionRecord], list[InteractionRecord]]:
        baseline = self.store.list_interactions(
            dep.agent,
            version=dep.stable_version,
            traffic_source=TrafficSource.PRODUCTION,
            since=since,
            until=until,
            limit=RECORD_LIMIT,
        )
        canary = self.store.list_interactions(
            dep.agent,
            version=dep.candidate_version,
            traffic_source=TrafficSource.CANARY,
            since=since,
            until=until,
            limit=RECORD_LIMIT,
        )
        return baseline, canary

    def _tick_canary(self, dep: Deployment) -> Decision:
        cfg = dep.config
        now = self.clock()
        started = cfg.get("step_started_at")
        since = now if started is None else float(started)
        baseline, canary = self._arms(dep, since, now)
        min_n = int(cfg.get("min_interactions", 50))
        min_s = float(cfg.get("min_duration_s", 60.0))
        analysis = analyze_arms(baseline, canary, expected_split=dep.weight / 100, min_samples_per_arm=min_n)
        elapsed = now - since
        numbers = {
            "at": now,
            "weight": dep.weight,
            "window": {"since": since, "until": now, "elapsed_s": round(elapsed, 3)},
            "baseline": {"version": dep.stable_version, "interactions": len(baseline)},
            "canary": {"version": dep.candidate_version, "interactions": len(canary)},
            "min_interactions": min_n,
            "min_duration_s": min_s,
            "analysis": analysis,
        }
        verdict = str(analysis.get("verdict"))
        srm = _srm_flagged(analysis)
        reasons = [str(r) for r in analysis.get("reasons", [])]
        if verdict == "FAIL":
            action = RolloutAction.ROLLBACK
        elif srm or verdict == "MARGINAL":
            action = RolloutAction.PAUSE
            if srm:
                verdict = "SRM"
                reasons.insert(0, "sample ratio mismatch: the traffic split is broken; a human should look")
        elif verdict == "PASS":
            short = []
            if elapsed < min_s:
                short.append(f"the step has run {elapsed:.0f}s of its minimum {min_s:.0f}s")
            for arm, n in (("baseline", len(baseline)), ("canary", len(canary))):
                if n < min_n:
                    short.append(f"the {arm} has {n} of the {min_n} interactions a step needs")
            action = RolloutAction.HOLD if short else RolloutAction.STEP_UP
            reasons = short + reasons
        else:
            action = RolloutAction.HOLD
        if action is RolloutAction.STEP_UP:
            return self._step_up(dep, verdict, reasons, numbers)
        return self._act(dep, action, verdict, reasons, numbers)

    def _act(
        self,
        dep: Deployment,
        action: RolloutAction,
        verdict: str | None,
        reasons: list[str],
        numbers: dict[str, Any],
    ) -> Decision:
        """Record (and unless dry run, carry out) an automatic decision."""
        dry = dep.dry_run
        if dry:
            numbers = {**numbers, "would": action}
            reasons = [f"dry run: would {action.replace('_', ' ')}", *reasons]
        logged = RolloutAction.DRY_RUN if dry else action
        decision = Decision(
            dep.agent, logged, verdict, reasons, numbers, dep.step, dep.candidate_version, "auto"
        )
        if (dry or action is RolloutAction.HOLD) and self._repeated(dep, decision):
            return Decision(**{**decision.to_dict(), "recorded": False})
        values: dict[str, Any] = {}
        if not dry:
            if action is RolloutAction.ROLLBACK:
                values = dict(weight=0, state=RolloutState.ROLLED_BACK)
            elif action is RolloutAction.PAUSE:
                values = dict(state=RolloutState.PAUSED)
            elif action is RolloutAction.PROMOTE:
                values = self._promotion(dep)
        self._save(dep, values, decision)
        return decision

    def _repeated(self, dep: Deployment, decision: Decision) -> bool:
        """The same hold (or dry-run verdict) at the same step was recorded less than hold_every_s ago."""
        last = self.store.rollout_decisions(dep.agent, limit=1)
        if not last:
            return False
        prev = last[0]
        same = (
            prev["action"] == decision.action
            and prev["step"] == decision.step
            and prev["candidate"] == decision.candidate
            and prev["verdict"] == decision.verdict
            and (prev.get("numbers") or {}).get("would") == decision.numbers.get("would")
        )
        at = (prev.get("numbers") or {}).get("at")  # the controller's clock when it was decided
        return same and at is not None and self.clock() - float(at) < self.hold_every_s

    def _step_up(
        self, dep: Deployment, verdict: str, reasons: list[str], numbers: dict[str, Any]
    ) -> Decision:
        steps = dep.steps
        nxt = dep.step + 1
        target = steps[nxt] if nxt < len(steps) else 100
        promoting = target >= 100 or nxt >= len(steps)
        stop, numbers = self._regate(dep, numbers, promoting=promoting, before=f"{target}%")
        if stop is not None:
            return stop
        gate_suites = list(dep.config.get("gate_suites") or [])
        if gate_suites and target in dep.config.get("gate_at", steps[1:]) and not dep.dry_run:
            if self.eval_gate is None:
                raise ShipyardError(
                    "this canary needs an eval gate before its next step, and none is configured"
                )
            assert dep.candidate_version is not None
            gate = self.eval_gate(dep.agent, dep.candidate_version, gate_suites)
            numbers = {**numbers, "eval_gate": gate.to_dict()}
            gv = gate.verdict
            if gv != "PASS":
                why = [f"eval gate before {target}%: {gv} (run {gate.run_id})", *gate.reasons]
                return self._act(
                    dep, RolloutAction.ROLLBACK if gv == "FAIL" else RolloutAction.PAUSE, gv, why, numbers
                )
        if promoting:
            return self._act(
                dep, RolloutAction.PROMOTE, verdict, [f"passed {dep.weight}%: promoted", *reasons], numbers
            )
        decision = Decision(
            dep.agent,
            RolloutAction.DRY_RUN if dep.dry_run else RolloutAction.STEP_UP,
            verdict,
            (
                [f"dry run: would step up to {target}%"]
                if dep.dry_run
                else [f"passed {dep.weight}%: up to {target}%"]
            )
            + reasons,
            {**numbers, "would": "step_up"} if dep.dry_run else {**numbers, "next_weight": target},
            dep.step,
            dep.candidate_version,
            "auto",
        )
        if dep.dry_run:
            if self._repeated(dep, decision):
                return Decision(**{**decision.to_dict(), "recorded": False})
            self._save(dep, {}, decision)
            return decision
        config = {**dep.config, "step_started_at": self.clock()}
        self._save(dep, dict(weight=target, step=nxt, config=config), decision)
        return decision

    def _regate(
        self, dep: Deployment, numbers: dict[str, Any], *, promoting: bool, before: str
    ) -> tuple[Decision | None, dict[str, Any]]:
        """Read the candidate's production gate again before its traffic rises or it is promoted.

        Returns (a decision that stops the rise, or None to go on; the numbers with `gate_check`).
        A gate run made since the rollout started that does not pass rolls the candidate back: it
        no longer may take non-admin traffic, and holding would keep its share. The run the rollout
        started with, under an override, lets the traffic rise but not a promotion: that holds
        until the gate passes (a pass promotes at a later tick, a failure rolls back)."""
        run, refused, since_start = self._gate_now(dep, "be promoted" if promoting else "take more traffic")
        numbers = {**numbers, "gate_check": {"passed": refused is None, "run": run}}
        if refused is None:
            return None, numbers
        candidate = dep.candidate_version
        if since_start:
            why = [f"production gate run {run} since the start refuses {candidate}: {refused.message}"]
            return self._act(dep, RolloutAction.ROLLBACK, "FAIL", why, numbers), numbers
        gate = dep.config.get("gate") or {}
        if gate.get("override") and not promoting:
            numbers["gate_check"]["overridden"] = True
            return None, numbers
        why = [
            f"before {before}: {refused.message}",
            *override_lines(gate),
            f"run `{gate_command(dep.agent, str(candidate))}`: "
            "a pass lets it go on at the next tick, a failure rolls it back",
        ]
        return self._act(dep, RolloutAction.HOLD, "GATE", why, numbers), numbers

    def _gate_now(self, dep: Deployment, doing: str) -> tuple[str | None, GateFailed | None, bool]:
        """The candidate's production gate now: (its newest run's id, why it may not ship or None,
        whether that run was made since the rollout started and refuses the candidate)."""
        candidate = dep.candidate_version
        assert candidate is not None
        found, refused = production_gate(self.store, dep.agent, candidate, doing=doing)
        run = str(found["id"]) if found else None
        known = ((dep.config.get("gate") or {}).get("runs") or {}).get(candidate)
        return run, refused, refused is not None and run is not None and run != known

    def _promotion(self, dep: Deployment) -> dict[str, Any]:
        config = {**dep.config, "previous_stable": dep.stable_version, "promoted": dep.candidate_version}
        return dict(
            stable_version=dep.candidate_version,
            candidate_version=None,
            weight=0,
            state=RolloutState.PROMOTED,
            config=config,
        )

    def _tick_blue_green(self, dep: Deployment) -> Decision | None:
        now = self.clock()
        at = dep.config.get("switched_at")
        switched = now if at is None else float(at)
        healthy_s = float(dep.config["promote_after_s"])
        if now - switched < healthy_s:
            return None
        green = self.store.list_interactions(
            dep.agent,
            version=dep.candidate_version,
            traffic_source=TrafficSource.PRODUCTION,
            since=switched,
            until=now,
            limit=RECORD_LIMIT,
        )
        blue = self.store.list_interactions(
            dep.agent,
            version=dep.stable_version,
            traffic_source=TrafficSource.PRODUCTION,
            since=switched - (now - switched),
            until=switched,
            limit=RECORD_LIMIT,
        )
        min_n = int(dep.config.get("min_interactions", 20))
        analysis = analyze_arms(blue, green, expected_split=None, min_samples_per_arm=min_n)
        verdict = str(analysis.get("verdict"))
        numbers = {
            "at": now,
            "window": {"switched_at": switched, "until": now},
            "blue": {"version": dep.stable_version, "interactions": len(blue)},
            "green": {"version": dep.candidate_version, "interactions": len(green)},
            "analysis": analysis,
        }
        reasons = [str(r) for r in analysis.get("reasons", [])]
        if verdict == "FAIL":
            return self._act(
                dep,
                RolloutAction.ROLLBACK,
                verdict,
                ["green is worse than blue was: back to blue", *reasons],
                numbers,
            )
        if verdict == "PASS":
            stop, numbers = self._regate(dep, numbers, promoting=True, before="promotion")
            if stop is not None:
                return stop
            return self._act(
                dep,
                RolloutAction.PROMOTE,
                verdict,
                [f"green healthy for {healthy_s:.0f}s: promoted", *reasons],
                numbers,
            )
        return self._act(dep, RolloutAction.HOLD, verdict, reasons, numbers)

    # people's decisions ---------------------------------------------------------------------------
    def _manual(
        self, dep: Deployment, action: RolloutAction, values: dict[str, Any], reason: str, actor: str
    ) -> Deployment:
        decision = Decision(
            dep.agent,
            action,
            None,
            [reason],
            {"weight_before": dep.weight},
            dep.step,
            dep.candidate_version,
            actor,
        )
        return self._save(dep, values, decision)

    def _need_rollout(self, agent: str, doing: str) -> Deployment:
        dep = self.get(agent)
        if dep.strategy is Strategy.NONE or (
            dep.candidate_version is None and dep.state is not RolloutState.PROMOTED
        ):
            raise NotFoundError(
                f"{agent!r} has no rollout to {doing}",
                hint=f"start one with `shipyard rollout canary {agent} VERSION`",
            )
        return dep

    def promote(self, agent: str, *, actor: str = "cli", reason: str = "") -> Deployment:
        """Make the candidate stable now (100%). Refused for a rolled-back or aborted candidate, and
        without a passing (or approved) production gate, as `deploy` is (an override never covers it)."""
        dep = self._need_rollout(agent, "promote")
        if dep.state in (RolloutState.ROLLED_BACK, RolloutState.ABORTED):
            last = next(
                (
                    d
                    for d in self.store.rollout_decisions(agent, limit=50)
                    if d["action"] in ("rollback", "abort")
                ),
                None,
            )
            why = f": {'; '.join(last['reasons'][:2])}" if last and last["reasons"] else ""
            raise ShipyardError(
                f"the {dep.strategy.replace('_', '-')} of {dep.candidate_version} was "
                f"{dep.state.replace('_', ' ')}{why}; a failed candidate cannot be promoted",
                hint=f"fix it and start a new rollout: `shipyard rollout canary {agent} VERSION`",
            )
        if not dep.active or dep.strategy is Strategy.EXPERIMENT:
            raise ShipyardError(f"{agent!r} has no candidate to promote ({dep.strategy} {dep.state})")
        assert dep.candidate_version is not None
        check_deployable(self.store, agent, dep.candidate_version, doing="be promoted")
        return self._manual(
            dep, RolloutAction.PROMOTE, self._promotion(dep), reason or "promoted by hand", actor
        )

    def pause(self, agent: str, *, actor: str = "cli", reason: str = "") -> Deployment:
        """Stop the canary's automatic steps; its traffic share stays as it is."""
        dep = self._need_rollout(agent, "pause")
        if dep.strategy is not Strategy.CANARY or dep.state is not RolloutState.RUNNING:
            raise ShipyardError(
                f"only a running canary can be paused; {agent!r} is {dep.strategy} {dep.state}"
            )
        return self._manual(
            dep, RolloutAction.PAUSE, dict(state=RolloutState.PAUSED), reason or "paused by hand", actor
        )

    def resume(self, agent: str, *, actor: str = "cli", reason: str = "") -> Deployment:
        """Continue a paused canary; its step starts a fresh analysis window."""
        dep = self._need_rollout(agent, "resume")
        if dep.strategy is not Strategy.CANARY or dep.state is not RolloutState.PAUSED:
            raise ShipyardError(
                f"only a paused canary can be resumed; {agent!r} is {dep.strategy} {dep.state}"
            )
        config = {**dep.config, "step_started_at": self.clock()}
        return self._manual(
            dep,
            RolloutAction.RESUME,
            dict(state=RolloutState.RUNNING, config=config),
            reason or "resumed by hand",
            actor,
        )

    def abort(self, agent: str, *, actor: str = "cli", reason: str = "") -> Deployment:
        """Stop the rollout: all traffic back to the stable version, the candidate not judged."""
        dep = self._need_rollout(agent, "abort")
        if not dep.active:
            raise ShipyardError(f"{agent!r} has no rollout in progress ({dep.strategy} {dep.state})")
        return self._manual(
            dep,
            RolloutAction.ABORT,
            dict(weight=0, state=RolloutState.ABORTED),
            reason or "aborted by hand",
            actor,
        )

    def rollback(self, agent: str, *, actor: str = "cli", reason: str = "") -> Deployment:
        """Send all traffic back at once: to the stable version during a rollout, to the previous
        stable version after a promotion."""
        dep = self._need_rollout(agent, "roll back")
        if dep.active:
            return self._manual(
                dep,
                RolloutAction.ROLLBACK,
                dict(weight=0, state=RolloutState.ROLLED_BACK),
                reason or "rolled back by hand",
                actor,
            )
        previous = dep.config.get("previous_stable")
        if dep.state is RolloutState.PROMOTED and previous:
            values = dict(
                stable_version=previous,
                candidate_version=dep.stable_version,
                weight=0,
                state=RolloutState.ROLLED_BACK,
                config={**dep.config, "previous_stable": None},
            )
            return self._manual(
                dep, RolloutAction.ROLLBACK, values, reason or f"back to {previous} by hand", actor
            )
        raise ShipyardError(f"{agent!r} has nothing to roll back to ({dep.strategy} {dep.state})")

    # blue-green ---------------------------------------------------------------------------------
    def start_blue_green(
        self,
        agent: str,
        ref: str,
        *,
        promote_after_s: float | None = None,
        min_interactions: int = 20,
        actor: str = "cli",
        override_gate: str | None = None,
    ) -> Deployment:
        """Deploy green beside blue (the stable version) with no traffic; previews reach it with the
        `X-Shipyard-Version` header. Refused unless green passed its production gate (it is to take
        all traffic at the switch), or an admin overrides the gate with a reason (`override_gate`,
        recorded; it covers the switch, not the promotion). `promote_after_s`: after a switch,
        promote green automatically once it has been healthy that long."""
        if promote_after_s is not None and promote_after_s <= 0:
            raise ShipyardError(f"promote-after must be positive, got {promote_after_s}")
        version = self._version(agent, ref)
        dep = self.get(agent)
        self._refuse_overlap(dep, f"deploy {version} as green")
        blue = self._stable_of(dep)
        if version == blue:
            raise ShipyardError(f"{version} is already the stable (blue) version of {agent!r}")
        gate = self.gate_for_traffic(
            agent, [version], doing="be deployed as green", override_gate=override_gate, actor=actor
        )
        config = {
            "promote_after_s": promote_after_s,
            "min_interactions": min_interactions,
            "previous_stable": dep.stable_version,
            "gate": gate,
        }
        decision = Decision(
            agent,
            RolloutAction.START,
            None,
            [*override_lines(gate), f"green {version} deployed beside blue {blue}; 0% traffic"],
            {"promote_after_s": promote_after_s, "gate": gate},
            0,
            version,
            actor,
        )
        values = dict(
            stable_version=blue,
            candidate_version=version,
            strategy=Strategy.BLUE_GREEN,
            weight=0,
            state=RolloutState.READY,
            step=0,
            started_at=_dt(self.clock()),
            config=config,
        )
        return self._save(dep, values, decision)

    def switch(self, agent: str, *, actor: str = "cli") -> Deployment:
        """Send all traffic to green at once. Needs green's passing (or approved) production gate, or
        the override its blue-green was started with, as long as no gate run since refused it."""
        dep = self._need_rollout(agent, "switch")
        if dep.strategy is not Strategy.BLUE_GREEN or dep.state is not RolloutState.READY:
            raise ShipyardError(
                f"only a blue-green deployment that is ready can switch; {agent!r} is {dep.strategy} {dep.state}"
            )
        assert dep.candidate_version is not None
        numbers, overridden = self._switch_gate(dep)
        config = {**dep.config, "switched_at": self.clock()}
        decision = Decision(
            agent,
            RolloutAction.SWITCH,
            None,
            [*overridden, f"all traffic to green {dep.candidate_version}"],
            numbers,
            0,
            dep.candidate_version,
            actor,
        )
        return self._save(dep, dict(weight=100, state=RolloutState.SWITCHED, config=config), decision)

    def _switch_gate(self, dep: Deployment) -> tuple[dict[str, Any], list[str]]:
        """The switch's gate numbers and override lines; raises GateFailed when green may not take
        all traffic: no pass, and no override, or a gate run since the start that refused it."""
        run, refused, since_start = self._gate_now(dep, "take all traffic")
        if refused is None:
            return {"gate_run": run, "gate_passed": True}, []
        gate = dep.config.get("gate") or {}
        if since_start or not gate.get("override"):
            raise refused
        return {"gate_run": run, "gate_passed": False, "gate_overridden": refused.message}, override_lines(
            gate
        )


def _srm_flagged(analysis: dict[str, Any]) -> bool:
    srm = analysis.get("srm")
    if isinstance(srm, dict):
        return bool(srm.get("flagged") or srm.get("mismatch") or srm.get("srm"))
    return bool(srm)


def _dt(epoch: float) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC)
