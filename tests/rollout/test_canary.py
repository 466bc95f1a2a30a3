"""The canary state machine on real records in a real store: holds, step-ups, promotion, rollback,
pause on a broken split, dry run, restarts, and replicas ticking at once."""

from __future__ import annotations

import threading

from rollout_helpers import Clock, fill, gate_run

from shipyard.rollout import RolloutController
from shipyard.runtime import Runtime
from shipyard.store import Store


def start(ctl: RolloutController, **kw: object) -> None:
    """A canary of 1.2, which passed its production gate."""
    gate_run(ctl.store, ctl.resolve("support", "1.2"), "PASS")
    options: dict = {"steps": "10,50,100", "min_interactions": 100, "min_duration_s": 60, **kw}
    ctl.start_canary("support", "1.2", actor="alice", **options)


def test_too_little_data_holds_and_is_not_logged_twice(
    ctl: RolloutController, store: Store, clock: Clock, ids: dict[str, str]
) -> None:
    start(ctl)
    fill(store, ids, clock, 10, total=200)  # 20 canary interactions, 100 needed
    clock.advance(120)
    d = ctl.tick("support")
    assert d is not None and d.action == "hold" and d.verdict == "INSUFFICIENT_DATA" and d.recorded
    assert (
        d.numbers["canary"]["interactions"] == 20 and d.numbers["analysis"]["verdict"] == "INSUFFICIENT_DATA"
    )
    clock.advance(5)
    again = ctl.tick("support")
    assert again is not None and again.action == "hold" and not again.recorded
    assert [x["action"] for x in ctl.decisions("support")] == ["hold", "start"]
    dep = ctl.get("support")
    assert (dep.state, dep.weight, dep.step) == ("running", 10, 0)


def test_steps_up_after_the_minimum_duration_then_promotes(
    ctl: RolloutController, store: Store, clock: Clock, ids: dict[str, str]
) -> None:
    start(ctl)
    fill(store, ids, clock, 10, total=1500)
    clock.advance(30)
    d = ctl.tick("support")
    assert d is not None and (d.action, d.verdict) == ("hold", "PASS")
    assert "the step has run 30s of its minimum 60s" in d.reasons
    clock.advance(40)
    d = ctl.tick("support")
    assert d is not None and d.action == "step_up" and d.numbers["next_weight"] == 50
    dep = ctl.get("support")
    assert (dep.weight, dep.step, dep.config["step_started_at"]) == (50, 1, clock.t)
    # the new step analyses only its own window: nothing yet
    d = ctl.tick("support")
    assert d is not None and d.verdict == "INSUFFICIENT_DATA"
    fill(store, ids, clock, 50, total=600)
    clock.advance(61)
    d = ctl.tick("support")
    assert d is not None and d.action == "promote" and d.verdict == "PASS"
    dep = ctl.get("support")
    assert (dep.state, dep.stable_version, dep.candidate_version) == ("promoted", ids["1.2"], None)
    assert [x["action"] for x in ctl.decisions("support")][:3] == ["promote", "hold", "step_up"]
    assert ctl.tick("support") is None  # nothing left to decide


def test_a_safety_regression_rolls_back_at_once(
    ctl: RolloutController, store: Store, clock: Clock, ids: dict[str, str]
) -> None:
    start(ctl)
    fill(store, ids, clock, 10, total=400, blocked=8)  # 40 canary, 8 of them blocked: not enough data yet
    clock.advance(5)  # well before the minimum duration
    d = ctl.tick("support")
    assert d is not None and d.action == "rollback" and d.verdict == "FAIL"
    assert any("critical metric failed: safety_incidents" in r for r in d.reasons)
    safety = next(m for m in d.numbers["analysis"]["metrics"] if m["name"] == "safety_incidents")
    assert safety["classification"] == "HIGH" and safety["critical"] and safety["canary"] > 0
    dep = ctl.get("support")
    assert (dep.state, dep.weight) == ("rolled_back", 0)
    stored = ctl.decisions("support")[0]
    assert (
        stored["action"] == "rollback"
        and stored["numbers"]["analysis"]["metrics"] == d.numbers["analysis"]["metrics"]
    )


def test_a_broken_split_pauses_for_a_human(
    ctl: RolloutController, store: Store, clock: Clock, ids: dict[str, str]
) -> None:
    start(ctl)
    fill(store, ids, clock, 40, total=1000)  # configured 10%, observed 40%
    clock.advance(120)
    d = ctl.tick("support")
    assert d is not None and d.action == "pause" and d.verdict == "SRM"
    assert d.reasons[0].startswith("sample ratio mismatch")
    assert ctl.get("support").state == "paused"
    assert ctl.tick("support") is None  # paused: nothing automatic happens


def test_dry_run_records_what_it_would_do_and_changes_nothing(
    ctl: RolloutController, store: Store, clock: Clock, ids: dict[str, str]
) -> None:
    start(ctl, dry_run=True)
    fill(store, ids, clock, 10, total=400, blocked=8)
    clock.advance(5)
    d = ctl.tick("support")
    assert (
        d is not None and d.action == "dry_run" and d.verdict == "FAIL" and d.numbers["would"] == "rollback"
    )
    assert d.reasons[0] == "dry run: would rollback"
    dep = ctl.get("support")
    assert (dep.state, dep.weight) == ("running", 10)
    assert ctl.decisions("support")[0]["numbers"]["would"] == "rollback"


def test_a_restart_resumes_at_the_same_step(
    ctl: RolloutController, rt: Runtime, store: Store, clock: Clock, ids: dict[str, str]
) -> None:
    start(ctl)
    fill(store, ids, clock, 10, total=1500)
    clock.advance(61)
    assert ctl.tick("support").action == "step_up"  # type: ignore[union-attr]
    restarted = RolloutController.for_runtime(rt, store, clock=clock)
    fill(store, ids, clock, 50, total=600)
    clock.advance(61)
    d = restarted.tick("support")
    assert d is not None and d.step == 1 and d.action == "promote"


def test_replicas_ticking_at_once_act_once(
    rt: Runtime, store: Store, clock: Clock, ids: dict[str, str]
) -> None:
    replicas = [RolloutController.for_runtime(rt, store, clock=clock) for _ in range(4)]
    start(replicas[0])
    fill(store, ids, clock, 10, total=1500)
    clock.advance(61)
    barrier = threading.Barrier(4)
    results: list[object] = []

    def tick(c: RolloutController) -> None:
        barrier.wait()
        results.append(c.tick("support"))

    threads = [threading.Thread(target=tick, args=(c,)) for c in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    acted = [r for r in results if r is not None]
    assert len(acted) >= 1
    assert [x["action"] for x in store.rollout_decisions("support")].count("step_up") == 1
    assert replicas[0].get("support").weight == 50
