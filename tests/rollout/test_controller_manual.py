"""Deploys (gate refusals), canary start validation, people's decisions, blue-green, restarts."""

from __future__ import annotations

import pytest
from rollout_helpers import Clock, gate_run

from shipyard.errors import ConflictError, GateFailed, NotFoundError, ShipyardError
from shipyard.rollout import RolloutController
from shipyard.runtime import Runtime
from shipyard.store import Store


def test_deploy_without_a_gate_run_says_how_to_run_it(ctl: RolloutController, ids: dict[str, str]) -> None:
    with pytest.raises(GateFailed) as err:
        ctl.deploy("support", "1.2.0")
    assert err.value.exit_code == 1
    assert f"{ids['1.2']} has no production gate run" in err.value.message
    assert "shipyard gate production --agent support --version 1.2.0" in str(err.value.hint)


def test_deploy_of_a_failed_gate_names_the_run_and_checks(
    ctl: RolloutController, store: Store, ids: dict[str, str]
) -> None:
    run = gate_run(
        store,
        ids["1.1"],
        "FAIL",
        checks=[{"name": "safety", "passed": False}, {"name": "pass_rate.functional", "passed": True}],
        reasons=["safety: 0.900, needs >= 1.000 (hard) failed"],
    )
    with pytest.raises(GateFailed) as err:
        ctl.deploy("support", "1.1")
    msg = err.value.message
    assert run in msg and "FAIL" in msg and "failed checks: safety" in msg and "needs >= 1.000" in msg


def test_marginal_needs_an_approval(ctl: RolloutController, store: Store, ids: dict[str, str]) -> None:
    run = gate_run(store, ids["1.2"], "MARGINAL")
    with pytest.raises(GateFailed, match="MARGINAL and nobody approved it"):
        ctl.deploy("support", "1.2")
    store.add_approval(run, "alice", "p95 2% over")
    dep = ctl.deploy("support", "1.2", actor="bob")
    assert dep.stable_version == ids["1.2"] and dep.state == "stable"
    [d] = ctl.decisions("support")
    assert d["action"] == "deploy" and d["actor"] == "bob" and d["numbers"]["gate_run"] == run


def test_unknown_version_is_refused(ctl: RolloutController) -> None:
    with pytest.raises(NotFoundError, match=r"has no version '7\.7'"):
        ctl.start_canary("support", "7.7")


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ("5,150", "outside 1-100"),
        ("0,50", "outside 1-100"),
        ("50,25", "must increase"),
        ("a,b", "comma-separated"),
        ("", "at least one step"),
    ],
)
def test_bad_steps_are_refused(ctl: RolloutController, steps: str, message: str) -> None:
    with pytest.raises(ShipyardError, match=message):
        ctl.start_canary("support", "1.2", steps=steps)


def test_one_candidate_at_a_time(ctl: RolloutController, store: Store, ids: dict[str, str]) -> None:
    gate_run(store, ids["1.2"], "PASS")
    dep = ctl.start_canary("support", "1.2", steps="10,50")
    assert dep.stable_version == ids["1.0"] and dep.weight == 10 and dep.state == "running"
    with pytest.raises(ShipyardError, match=r"already has a canary of .*one candidate at a time"):
        ctl.start_canary("support", "1.1")
    with pytest.raises(ShipyardError, match="already has a canary"):
        ctl.start_blue_green("support", "1.1")
    with pytest.raises(ShipyardError, match="already the stable version"):
        ctl.abort("support") and ctl.start_canary("support", "1.0")


def test_pause_resume_abort_and_no_promotion_after_a_failure(
    ctl: RolloutController, store: Store, clock: Clock, ids: dict[str, str]
) -> None:
    gate_run(store, ids["1.2"], "PASS")
    gate_run(store, ids["1.1"], "PASS")
    ctl.start_canary("support", "1.2")
    with pytest.raises(ShipyardError, match="only a paused canary can be resumed"):
        ctl.resume("support")
    assert ctl.pause("support", actor="alice", reason="looking").state == "paused"
    clock.advance(100)
    dep = ctl.resume("support", actor="alice")
    assert dep.state == "running" and dep.config["step_started_at"] == clock.t
    dep = ctl.rollback("support", actor="alice", reason="complaints")
    assert dep.state == "rolled_back" and dep.weight == 0
    with pytest.raises(
        ShipyardError, match="was rolled back: complaints; a failed candidate cannot be promoted"
    ):
        ctl.promote("support")
    actions = [d["action"] for d in ctl.decisions("support")]
    assert actions == ["rollback", "resume", "pause", "start"]
    # a new canary may start after the failed one
    assert ctl.start_canary("support", "1.1").state == "running"
    assert ctl.abort("support").state == "aborted"
    with pytest.raises(ShipyardError, match="was aborted"):
        ctl.promote("support")


def test_manual_promotion_and_rollback_to_the_previous_stable(
    ctl: RolloutController, store: Store, ids: dict[str, str]
) -> None:
    gate_run(store, ids["1.2"], "PASS")
    ctl.start_canary("support", "1.2")
    dep = ctl.promote("support", actor="carol")
    assert dep.stable_version == ids["1.2"] and dep.candidate_version is None and dep.state == "promoted"
    assert dep.arms() == []
    dep = ctl.rollback("support")
    assert dep.stable_version == ids["1.0"] and dep.state == "rolled_back"


def test_blue_green_switch_and_rollback(ctl: RolloutController, store: Store, ids: dict[str, str]) -> None:
    with pytest.raises(GateFailed, match="no production gate run, so it cannot be deployed as green"):
        ctl.start_blue_green("support", "1.2")
    gate_run(store, ids["1.2"], "PASS")
    dep = ctl.start_blue_green("support", "1.2")
    assert dep.state == "ready" and dep.weight == 0 and dep.stable_version == ids["1.0"]
    dep = ctl.switch("support", actor="dan")
    assert dep.state == "switched" and dep.weight == 100 and dep.arms() == [(ids["1.2"], 100)]
    dep = ctl.rollback("support", actor="dan")
    assert dep.state == "rolled_back" and dep.weight == 0 and dep.arms() == []
    assert [d["action"] for d in ctl.decisions("support")] == ["rollback", "switch", "start"]


def test_state_survives_a_restart(
    ctl: RolloutController, rt: Runtime, store: Store, clock: Clock, ids: dict[str, str]
) -> None:
    gate_run(store, ids["1.2"], "PASS")
    ctl.start_canary("support", "1.2", steps="5,25,50,100")
    ctl.pause("support")
    again = RolloutController.for_runtime(rt, store, clock=clock)  # a new process reads the same row
    dep = again.get("support")
    assert (dep.candidate_version, dep.state, dep.weight, dep.steps) == (
        ids["1.2"],
        "paused",
        5,
        [5, 25, 50, 100],
    )
    again.resume("support")


def test_a_stale_read_loses(
    ctl: RolloutController, rt: Runtime, store: Store, clock: Clock, ids: dict[str, str]
) -> None:
    gate_run(store, ids["1.2"], "PASS")
    ctl.start_canary("support", "1.2")
    other = RolloutController.for_runtime(rt, store, clock=clock)
    stale = ctl.get("support")
    other.pause("support", actor="alice")
    with pytest.raises(ConflictError, match="now canary paused"):
        ctl._save(stale, {"state": "aborted"}, None)
