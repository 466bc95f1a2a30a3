"""A/B experiments: start (a deployment with strategy `experiment`), look at any time, stop.

Both arms are production traffic; the assigner tags each interaction with `metadata.experiment`
and `metadata.arm`, so a report reads exactly the experiment's interactions, and with
`metadata.assignment_unit`, what it bucketed the request by, which the report's clusters follow. Each look carries the
sequential test forward from the previous one (stored with the experiment), so it stays valid
however often people look.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shipyard.errors import NotFoundError, ShipyardError
from shipyard.rollout._controller import RECORD_LIMIT, Decision, override_lines
from shipyard.rollout._deployment import RolloutAction, RolloutState, Strategy
from shipyard.rollout._experiment import (
    DEFAULT_EXPERIMENT_METRICS,
    ExperimentReport,
    analyze_experiment,
    experiment_arm,
)
from shipyard.types import TrafficSource

if TYPE_CHECKING:
    from shipyard.rollout._controller import RolloutController
    from shipyard.store import InteractionRecord

METRIC_NAMES = tuple(m.name for m in DEFAULT_EXPERIMENT_METRICS)


def _metrics(names: list[str] | None) -> list[str]:
    if not names:
        return list(METRIC_NAMES)
    unknown = [n for n in names if n not in METRIC_NAMES]
    if unknown:
        raise ShipyardError(f"unknown experiment metric {unknown[0]!r}; metrics: {', '.join(METRIC_NAMES)}")
    return list(dict.fromkeys(names))


def start_experiment(
    ctl: RolloutController,
    agent: str,
    a: str,
    b: str,
    *,
    split: int = 50,
    metrics: list[str] | None = None,
    actor: str = "cli",
    override_gate: str | None = None,
) -> dict[str, Any]:
    """Start splitting `agent`'s traffic between versions `a` and `b`. Both arms take non-admin
    traffic, so each needs a passing (or approved) production gate, unless an admin overrides the
    gate with a reason (see `RolloutController.gate_for_traffic`).

    Args:
        a, b: version refs (label, hash or id); A is the control.
        split: the percent of traffic (sessions) to B, 1-99.
        metrics: metric names to report (default: all; the first is the primary).
        override_gate: an admin's reason to start it with an arm that has not passed its gate;
            recorded with `actor` in the start decision and the deployment.
    """
    if isinstance(split, bool) or not 1 <= split <= 99:
        raise ShipyardError(f"split must be a percent from 1 to 99 (the share of traffic to B), got {split}")
    names = _metrics(metrics)
    va, vb = ctl.resolve(agent, a), ctl.resolve(agent, b)
    if va == vb:
        raise ShipyardError(f"arms A and B are the same version ({va}); an experiment needs two")
    dep = ctl.get(agent)
    ctl._refuse_overlap(dep, "start an experiment")
    gate = ctl.gate_for_traffic(
        agent, [va, vb], doing="be an experiment's arm", override_gate=override_gate, actor=actor
    )
    exp = ctl.store.create_experiment(agent, {"a": va, "b": vb}, split, names)
    config = {"experiment_id": exp["id"], "arms": {"a": va, "b": vb}, "split": split,
              "previous_stable": dep.stable_version, "gate": gate}  # fmt: skip
    why = [*override_lines(gate), f"experiment {exp['id']}: A {va} vs B {vb}, {split}% to B"]
    decision = Decision(agent, RolloutAction.START, None, why, {"split": split, "metrics": names, "gate": gate},
                        0, vb, actor)  # fmt: skip
    values = dict(stable_version=dep.stable_version or ctl.resolve(agent, None), candidate_version=vb,
                  strategy=Strategy.EXPERIMENT, weight=split, state=RolloutState.RUNNING, step=0, config=config)  # fmt: skip
    ctl._save(dep, values, decision)
    return exp


def find_experiment(store: Any, agent: str, experiment_id: str | None = None) -> dict[str, Any]:
    """The named experiment of `agent`, else its newest (running first)."""
    if experiment_id:
        exp = store.get_experiment(experiment_id)
        if exp is None or exp["agent"] != agent:
            raise NotFoundError(f"{agent!r} has no experiment {experiment_id!r}")
        return dict(exp)
    exps = store.list_experiments(agent)
    if not exps:
        raise NotFoundError(
            f"{agent!r} has no experiments",
            hint=f"start one: `shipyard experiment start {agent} --a V1 --b V2`",
        )
    running = [e for e in exps if e["state"] == "running"]
    return dict((running or exps)[0])


def _arm_records(store: Any, exp: dict[str, Any]) -> dict[str, list[InteractionRecord]]:
    out: dict[str, list[InteractionRecord]] = {"a": [], "b": []}
    for arm in ("a", "b"):
        records = store.list_interactions(
            exp["agent"], version=exp["arms"][arm], traffic_source=TrafficSource.PRODUCTION,
            since=exp["started_at"], until=exp.get("stopped_at"), limit=RECORD_LIMIT,
        )  # fmt: skip
        out[arm] = [r for r in records if r.metadata.get("experiment") == exp["id"]]
    return out


def arm_counts(store: Any, exp: dict[str, Any]) -> dict[str, int]:
    return {arm: len(rs) for arm, rs in _arm_records(store, exp).items()}


def report(store: Any, exp: dict[str, Any]) -> ExperimentReport:
    """The experiment's report at this look (a stopped experiment: over its whole run)."""
    arms = _arm_records(store, exp)
    chosen = [m for m in DEFAULT_EXPERIMENT_METRICS if m.name in (exp.get("metrics") or METRIC_NAMES)]
    order = {n: i for i, n in enumerate(exp.get("metrics") or METRIC_NAMES)}
    chosen.sort(key=lambda m: order.get(m.name, 99))
    rep = analyze_experiment(
        experiment_arm(arms["a"], name=exp["arms"]["a"]),
        experiment_arm(arms["b"], name=exp["arms"]["b"]),
        chosen,
        expected_split=exp["split"] / 100,
        previous=exp.get("report") if exp["state"] == "running" else None,
    )
    if exp["state"] == "running":
        store.save_experiment_report(exp["id"], rep.to_dict())
    return rep


def stop_experiment(
    ctl: RolloutController, agent: str, *, actor: str = "cli", why: list[str] | None = None
) -> dict[str, Any]:
    """Stop the running experiment: its final report is stored and traffic returns to the stable version.

    Args:
        why: reasons recorded with the stop decision after `experiment ID stopped` (e.g. the gate
            run that refused an arm, when the controller stops it).
    """
    exp = find_experiment(ctl.store, agent)
    if exp["state"] != "running":
        raise ShipyardError(
            f"{agent!r} has no running experiment (the newest, {exp['id']}, is {exp['state']})"
        )
    rep = report(ctl.store, exp).to_dict()
    stopped: dict[str, Any] = ctl.store.stop_experiment(exp["id"], rep)
    dep = ctl.get(agent)
    if dep.strategy is Strategy.EXPERIMENT and dep.config.get("experiment_id") == exp["id"]:
        decision = Decision(agent, RolloutAction.ABORT, rep.get("verdict"),
                            [f"experiment {exp['id']} stopped", *(why or [])], {"report": rep}, 0,
                            dep.candidate_version, actor)  # fmt: skip
        ctl._save(dep, dict(state=RolloutState.STOPPED, weight=0), decision)
    return stopped
