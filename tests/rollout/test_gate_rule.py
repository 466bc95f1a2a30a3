"""Only versions that passed their production gate take non-admin traffic: a canary, a green and each
arm of an experiment need a PASS (or an approved MARGINAL) to start, the gate is read again before
each step up and before a promotion, and an admin may override it only with a reason, which is
recorded and shown."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from rollout_helpers import Clock, cli, fill, gate_run
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.config import ShipyardConfig
from shipyard.errors import GateFailed, ShipyardError
from shipyard.rollout import RolloutController, start_experiment
from shipyard.store import Store

Start = Callable[[RolloutController], Any]
STARTS: dict[str, Start] = {
    "canary": lambda ctl: ctl.start_canary("support", "1.2"),
    "blue-green": lambda ctl: ctl.start_blue_green("support", "1.2"),
    "experiment arm B": lambda ctl: start_experiment(ctl, "support", "1.0", "1.2"),
}


@pytest.mark.parametrize("how", list(STARTS))
def test_an_ungated_version_is_refused_with_the_command_that_gates_it(
    ctl: RolloutController, store: Store, ids: dict[str, str], how: str
) -> None:
    gate_run(store, ids["1.0"], "PASS")  # the experiment's arm A may; 1.2 has never been gated
    with pytest.raises(GateFailed) as err:
        STARTS[how](ctl)
    assert err.value.exit_code == 1 and f"{ids['1.2']} has no production gate run" in err.value.message
    assert "shipyard gate production --agent support --version 1.2.0" in str(err.value.hint)
    assert ctl.get("support").candidate_version is None and ctl.decisions("support") == []


@pytest.mark.parametrize("how", list(STARTS))
def test_a_failed_gate_is_refused_naming_the_run(
    ctl: RolloutController, store: Store, ids: dict[str, str], how: str
) -> None:
    gate_run(store, ids["1.0"], "PASS")
    run = gate_run(store, ids["1.2"], "FAIL", reasons=["safety: 0.900, needs >= 1.000 (hard) failed"])
    with pytest.raises(GateFailed, match=f"run {run}.* is FAIL: safety: 0.900"):
        STARTS[how](ctl)
    assert ctl.get("support").candidate_version is None


def test_an_experiment_needs_both_arms_gated(
    ctl: RolloutController, store: Store, ids: dict[str, str]
) -> None:
    gate_run(store, ids["1.2"], "PASS")
    with pytest.raises(
        GateFailed, match=re.escape(f"{ids['1.0']} has no production gate run, so it cannot be an")
    ):
        start_experiment(ctl, "support", "1.0", "1.2")  # arm A is the control, and takes traffic too
    gate_run(store, ids["1.0"], "PASS")
    assert start_experiment(ctl, "support", "1.0", "1.2")["arms"] == {"a": ids["1.0"], "b": ids["1.2"]}


def test_a_marginal_gate_needs_an_approval(ctl: RolloutController, store: Store, ids: dict[str, str]) -> None:
    run = gate_run(store, ids["1.2"], "MARGINAL")
    with pytest.raises(GateFailed, match=f"run {run}.* was MARGINAL and nobody approved it"):
        ctl.start_canary("support", "1.2")
    store.add_approval(run, "carol", "p95 2% over")
    dep = ctl.start_canary("support", "1.2", actor="bob")
    assert dep.state == "running" and dep.config["gate"] == {"runs": {ids["1.2"]: run}, "override": None}
    [start] = ctl.decisions("support")
    assert start["numbers"]["gate"]["runs"] == {ids["1.2"]: run} and dep.gate_override is None


@pytest.mark.parametrize("reason", ["", "   \n\t"])
def test_an_override_without_a_reason_is_refused(
    ctl: RolloutController, store: Store, ids: dict[str, str], reason: str
) -> None:
    gate_run(store, ids["1.0"], "PASS")
    for start in (
        lambda: ctl.start_canary("support", "1.1", override_gate=reason),
        lambda: ctl.start_blue_green("support", "1.1", override_gate=reason),
        lambda: start_experiment(ctl, "support", "1.0", "1.1", override_gate=reason),
    ):
        with pytest.raises(ShipyardError, match="overriding the production gate needs a reason") as err:
            start()
        assert err.value.exit_code == 2
    with pytest.raises(ShipyardError, match="at most 500"):
        ctl.start_canary("support", "1.1", override_gate="x" * 501)
    assert ctl.get("support").candidate_version is None


def test_an_override_with_a_reason_starts_it_and_is_recorded(
    ctl: RolloutController, store: Store, clock: Clock, ids: dict[str, str]
) -> None:
    run = gate_run(store, ids["1.1"], "FAIL", reasons=["safety: 0.900"])
    dep = ctl.start_canary("support", "1.1", actor="alice", override_gate="  reproduce\nincident 42 ")
    assert dep.state == "running" and dep.weight == 5
    override = dep.gate_override
    assert override is not None
    assert (override["by"], override["reason"], override["at"]) == ("alice", "reproduce incident 42", clock.t)
    assert run in override["refused"][ids["1.1"]] and "FAIL" in override["refused"][ids["1.1"]]
    [start] = ctl.decisions("support")
    assert start["actor"] == "alice"
    assert start["reasons"][:2] == [
        "production gate overridden by alice: reproduce incident 42",
        f"the gate said: {override['refused'][ids['1.1']]}",
    ]


def test_an_experiment_override_covers_both_arms(
    ctl: RolloutController, store: Store, ids: dict[str, str]
) -> None:
    gate_run(store, ids["1.1"], "FAIL")
    start_experiment(ctl, "support", "1.0", "1.1", actor="dan", override_gate="compare refund wording")
    dep = ctl.get("support")
    assert dep.strategy == "experiment" and dep.gate_override is not None
    assert set(dep.gate_override["refused"]) == {ids["1.0"], ids["1.1"]}  # 1.0 ungated, 1.1 failed


def _to_last_step(ctl: RolloutController, store: Store, clock: Clock, ids: dict[str, str], cand: str) -> None:
    """Drive a 10,50,100 canary of `cand` with healthy traffic through its first step up."""
    fill(store, ids, clock, 10, total=1500, candidate=cand)
    clock.advance(61)
    d = ctl.tick("support")
    assert d is not None and d.action == "step_up", d.reasons
    fill(store, ids, clock, 50, total=600, candidate=cand)
    clock.advance(61)


CANARY = {"steps": "10,50,100", "min_interactions": 100, "min_duration_s": 60}


@pytest.mark.parametrize("verdict", ["FAIL", "MARGINAL"])
def test_a_gate_rerun_that_fails_before_a_step_up_rolls_back(
    ctl: RolloutController, store: Store, clock: Clock, ids: dict[str, str], verdict: str
) -> None:
    gate_run(store, ids["1.2"], "PASS")
    ctl.start_canary("support", "1.2", **CANARY)  # type: ignore[arg-type]
    rerun = gate_run(store, ids["1.2"], verdict)  # re-gated while the canary runs: no pass now
    fill(store, ids, clock, 10, total=1500)
    clock.advance(61)
    d = ctl.tick("support")
    assert d is not None and (d.action, d.verdict) == ("rollback", "FAIL")
    assert d.reasons[0].startswith(f"production gate run {rerun} since the start refuses {ids['1.2']}")
    assert d.numbers["gate_check"] == {"passed": False, "run": rerun}
    dep = ctl.get("support")
    assert (dep.state, dep.weight) == ("rolled_back", 0)


def test_a_gate_rerun_that_fails_before_the_promotion_rolls_back(
    ctl: RolloutController, store: Store, clock: Clock, ids: dict[str, str]
) -> None:
    first = gate_run(store, ids["1.2"], "PASS")
    ctl.start_canary("support", "1.2", **CANARY)  # type: ignore[arg-type]
    _to_last_step(ctl, store, clock, ids, "1.2")
    assert ctl.decisions("support")[0]["numbers"]["gate_check"] == {"passed": True, "run": first}
    rerun = gate_run(store, ids["1.2"], "FAIL")
    d = ctl.tick("support")
    assert d is not None and d.action == "rollback" and rerun in d.reasons[0]
    dep = ctl.get("support")
    assert (dep.state, dep.stable_version, dep.weight) == ("rolled_back", ids["1.0"], 0)
    with pytest.raises(ShipyardError, match="cannot be promoted"):
        ctl.promote("support")


def test_an_overridden_canary_steps_up_but_holds_for_its_gate_before_promotion(
    ctl: RolloutController, store: Store, clock: Clock, ids: dict[str, str]
) -> None:
    ctl.start_canary("support", "1.2", actor="alice", override_gate="gate suite broken, #123", **CANARY)  # type: ignore[arg-type]
    _to_last_step(ctl, store, clock, ids, "1.2")  # the override lets its traffic rise
    assert ctl.decisions("support")[0]["numbers"]["gate_check"]["overridden"] is True
    d = ctl.tick("support")
    assert d is not None and (d.action, d.verdict) == ("hold", "GATE")
    assert d.reasons[0] == (f"before 100%: {ids['1.2']} has no production gate run, so it cannot be promoted")
    assert "production gate overridden by alice: gate suite broken, #123" in d.reasons
    assert "shipyard gate production --agent support --version 1.2.0" in d.reasons[-1]
    assert ctl.get("support").state == "running"
    with pytest.raises(GateFailed, match="cannot be promoted"):  # nor by hand: an override never ships
        ctl.promote("support")
    gate_run(store, ids["1.2"], "PASS")  # the gate passes now: the next tick promotes
    clock.advance(1)
    d = ctl.tick("support")
    assert d is not None and d.action == "promote"
    assert ctl.get("support").stable_version == ids["1.2"]


def test_an_overridden_canary_whose_gate_then_fails_rolls_back(
    ctl: RolloutController, store: Store, clock: Clock, ids: dict[str, str]
) -> None:
    ctl.start_canary("support", "1.2", override_gate="gate suite broken, #123", **CANARY)  # type: ignore[arg-type]
    rerun = gate_run(store, ids["1.2"], "FAIL")  # the first gate run since the start: it refuses 1.2
    fill(store, ids, clock, 10, total=1500)
    clock.advance(61)
    d = ctl.tick("support")
    assert d is not None and d.action == "rollback" and rerun in d.reasons[0]


def test_blue_green_rechecks_the_gate_at_the_switch_and_the_promotion(
    ctl: RolloutController, store: Store, clock: Clock, ids: dict[str, str]
) -> None:
    from rollout_helpers import write_arm

    ctl.start_blue_green("support", "1.2", promote_after_s=600, min_interactions=50, override_gate="preview")
    rerun = gate_run(store, ids["1.2"], "FAIL")
    with pytest.raises(GateFailed, match=f"run {rerun}"):  # the override no longer covers the switch
        ctl.switch("support")
    gate_run(store, ids["1.2"], "PASS")
    dep = ctl.switch("support", actor="dan")
    assert dep.state == "switched"
    write_arm(store, ids["1.0"], "production", 300, clock.t - 300, seed=1)
    write_arm(store, ids["1.2"], "production", 300, clock.t + 1, seed=2)
    late = gate_run(store, ids["1.2"], "FAIL")  # re-gated after the switch: back to blue
    clock.advance(601)
    d = ctl.tick("support")
    assert d is not None and d.action == "rollback" and late in d.reasons[0]
    dep = ctl.get("support")
    assert (dep.state, dep.weight, dep.arms()) == ("rolled_back", 0, [])


def test_an_overridden_green_switches_and_the_switch_records_the_override(
    ctl: RolloutController, ids: dict[str, str]
) -> None:
    ctl.start_blue_green("support", "1.2", override_gate="hotfix, gate tomorrow", actor="erin")
    dep = ctl.switch("support", actor="erin")
    assert dep.state == "switched" and dep.weight == 100
    switch = ctl.decisions("support")[0]
    assert switch["reasons"][0] == "production gate overridden by erin: hotfix, gate tomorrow"
    assert "no production gate run" in switch["numbers"]["gate_overridden"]


# the CLI ------------------------------------------------------------------------------------------
runner = CliRunner()


def test_cli_override_gate_is_refused_without_a_reason_and_shown_by_status(
    cfg: ShipyardConfig, store: Store, ids: dict[str, str]
) -> None:
    sy = cli(str(cfg.path))

    run = gate_run(store, ids["1.1"], "FAIL")
    code, out = sy("rollout", "canary", "support", "1.1")
    assert code == 1 and run in out and "is FAIL" in out
    code, out = sy("rollout", "canary", "support", "1.1", "--override-gate", " ")
    assert code == 2 and "overriding the production gate needs a reason" in out
    bare = runner.invoke(
        app, ["rollout", "canary", "support", "1.1", "--config", str(cfg.path), "--override-gate"]
    )
    assert bare.exit_code == 2 and "requires an argument" in bare.output
    code, out = sy(
        "rollout", "canary", "support", "1.1", "--override-gate", "show the regression", "--by", "amy"
    )
    assert code == 0 and "canary running: 5% to" in out
    assert "production gate overridden by amy: show the regression" in out
    code, out = sy("rollout", "status", "support")
    assert code == 0 and "production gate overridden by amy: show the regression" in out
    assert f"the gate said: the latest production gate of {ids['1.1']} (run {run}) is FAIL" in out
