"""A canary step that needs an eval suite first: the real runner and gate decide before the weight rises."""

from __future__ import annotations

from rollout_helpers import Clock, gate_run, write_arm

from shipyard.config import ShipyardConfig
from shipyard.rollout import RolloutController
from shipyard.rollout._gate import eval_gate
from shipyard.runtime import Runtime
from shipyard.store import Store

SMOKE = "evals/support/smoke.yaml"


def fill_step(store: Store, ids: dict[str, str], clock: Clock, candidate: str, weight: int) -> None:
    """1,500 healthy interactions at the step's split, a second after now."""
    n_canary = 1500 * weight // 100
    write_arm(store, ids["1.0"], "production", 1500 - n_canary, clock.t + 1, seed=1)
    write_arm(store, ids[candidate], "canary", n_canary, clock.t + 1, seed=2)


def controller(rt: Runtime, store: Store, clock: Clock, cfg: ShipyardConfig) -> RolloutController:
    return RolloutController.for_runtime(
        rt, store, clock=clock, hold_every_s=30, eval_gate=eval_gate(cfg, store)
    )


def test_the_candidate_must_pass_its_suite_before_stepping_up(
    rt: Runtime, store: Store, clock: Clock, cfg: ShipyardConfig, ids: dict[str, str]
) -> None:
    ctl = controller(rt, store, clock, cfg)
    gate_run(store, ids["1.2"], "PASS")
    ctl.start_canary(
        "support",
        "1.2",
        steps="10,50,100",
        min_interactions=100,
        min_duration_s=60,
        gate_suites=[SMOKE],
        actor="alice",
    )
    fill_step(store, ids, clock, "1.2", 10)
    clock.advance(120)
    d = ctl.tick("support")
    assert d is not None and d.action == "step_up", d.reasons
    gate = d.numbers["eval_gate"]
    assert gate["verdict"] == "PASS" and store.get_eval_run(gate["run_id"])["stage"] == "canary"
    assert gate["policy"] == "pre-merge"  # the smoke suite is judged by the stage that runs it


def test_a_candidate_failing_its_suite_is_rolled_back_even_with_good_metrics(
    rt: Runtime, store: Store, clock: Clock, cfg: ShipyardConfig, ids: dict[str, str]
) -> None:
    ctl = controller(rt, store, clock, cfg)
    ctl.start_canary(
        "support",
        "1.1",
        steps="10,50,100",
        min_interactions=100,
        min_duration_s=60,
        gate_suites=[SMOKE],
        actor="alice",
        override_gate="testing the step gate",  # 1.1 has no production gate run
    )
    fill_step(store, ids, clock, "1.1", 10)  # production metrics look fine for 1.1
    clock.advance(120)
    d = ctl.tick("support")
    assert d is not None and d.action == "rollback" and d.verdict == "FAIL"
    assert d.reasons[0].startswith("eval gate before 50%: FAIL (run ")
    dep = ctl.get("support")
    assert dep.state == "rolled_back" and dep.weight == 0
