"""`shipyard deploy`, `shipyard rollout ...` and `shipyard experiment ...` as a user meets them:
exit codes (0 done, 1 gate / analysis failed, 2 refused input) and messages that say what to do."""

from __future__ import annotations

import asyncio
import json
import random

import pytest
from rollout_helpers import Sy, gate_run, write_arm
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.cli._demo_rollout import simulate_traffic
from shipyard.config import ShipyardConfig
from shipyard.rollout import RolloutAssigner
from shipyard.runtime import Runtime
from shipyard.store import Store

runner = CliRunner()


def test_deploy_refusals_and_success(sy: Sy, store: Store, ids: dict[str, str]) -> None:
    code, out = sy("deploy", "support", "1.2.0")
    assert code == 1 and "has no production gate run" in out
    assert "shipyard gate production --agent support --version 1.2.0" in out
    run = gate_run(store, ids["1.1"], "FAIL", checks=[{"name": "safety", "passed": False}])
    code, out = sy("deploy", "support", "1.1")
    assert code == 1 and run in out and "failed checks: safety" in out
    code, out = sy("deploy", "support", "9.9")
    assert code == 2 and "has no version '9.9'" in out
    gate_run(store, ids["1.2"], "PASS")
    code, out = sy("deploy", "support", "1.2", "--by", "alice")
    assert code == 0 and f"stable {ids['1.2']}" in out


def test_canary_commands(sy: Sy, cfg: ShipyardConfig, store: Store, ids: dict[str, str]) -> None:
    gate_run(store, ids["1.2"], "PASS")
    code, out = sy("rollout", "canary", "support", "1.2", "--steps", "5,150")
    assert code == 2 and "step weight 150 is outside 1-100" in out
    code, out = sy("rollout", "canary", "support", "1.2", "--min-duration", "soon")
    assert code == 2 and "--min-duration" in out
    code, out = sy("rollout", "canary", "support", "1.2", "--steps", "10,50,100", "--min-interactions", "20")
    assert code == 0 and "canary running: 10% to" in out and ids["1.2"] in out
    code, out = sy("rollout", "canary", "support", "1.1")
    assert code == 2 and "one candidate at a time" in out
    code, out = sy("rollout", "tick", "support")
    assert code == 0 and "hold" in out and "INSUFFICIENT_DATA" in out
    # a regression in the canary's traffic: the tick rolls it back and says so with exit code 1
    import time

    write_arm(store, ids["1.0"], "production", 300, time.time(), seed=1)
    write_arm(store, ids["1.2"], "canary", 40, time.time(), seed=2, blocked=8)
    code, out = sy("rollout", "tick", "support")
    assert code == 1 and "rollback" in out and "safety_incidents" in out and "critical" in out
    code, out = sy("rollout", "promote", "support")
    assert code == 2 and "was rolled back" in out and "cannot be promoted" in out
    code, out = sy("rollout", "status", "support")
    assert code == 0 and "canary rolled_back" in out and "rollback" in out and "safety_incidents" in out
    result = runner.invoke(app, ["rollout", "status", "support", "--json", "--config", str(cfg.path)])
    data = json.loads(result.output)
    assert data["support"]["deployment"]["state"] == "rolled_back"
    assert data["support"]["decisions"][0]["numbers"]["analysis"]["verdict"] == "FAIL"


@pytest.mark.parametrize("zero", ["0", "0s", "0m", "0.0"])
def test_a_canary_step_may_have_no_minimum_duration(
    sy: Sy, store: Store, ids: dict[str, str], zero: str
) -> None:
    """`--min-duration 0` in any unit: steps wait for interactions only (a negative one is refused)."""
    gate_run(store, ids["1.2"], "PASS")
    code, out = sy("rollout", "canary", "support", "1.2", "--min-duration", "-1s")
    assert code == 2 and "--min-duration" in out
    code, out = sy("rollout", "canary", "support", "1.2", "--min-duration", zero)
    assert code == 0, out
    assert (store.get_deployment("support") or {})["config"]["min_duration_s"] == 0


def test_pause_resume_abort_and_blue_green(sy: Sy, store: Store, ids: dict[str, str]) -> None:
    code, out = sy("rollout", "pause", "support")
    assert code == 2 and "has no rollout to pause" in out
    code, out = sy("rollout", "canary", "support", "1.2")
    assert code == 1 and "has no production gate run, so it cannot take canary traffic" in out
    assert "shipyard gate production --agent support --version 1.2.0" in out
    code, out = sy("rollout", "blue-green", "support", "1.2")
    assert code == 1 and "has no production gate run, so it cannot be deployed as green" in out
    gate_run(store, ids["1.2"], "PASS")
    assert sy("rollout", "canary", "support", "1.2")[0] == 0
    code, out = sy("rollout", "pause", "support", "--reason", "look", "--by", "alice")
    assert code == 0 and "paused" in out
    assert sy("rollout", "resume", "support")[0] == 0
    code, out = sy("rollout", "abort", "support")
    assert code == 0 and "aborted" in out
    code, out = sy("rollout", "blue-green", "support", "1.2")
    assert code == 0 and "blue-green ready: 0% to" in out
    code, out = sy("rollout", "switch", "support")
    assert code == 0 and "switched: 100% to" in out
    code, out = sy("rollout", "rollback", "support")
    assert code == 0 and "rolled_back: 0%" in out


def test_experiment_lifecycle(
    sy, cfg: ShipyardConfig, rt: Runtime, store: Store, ids: dict[str, str]
) -> None:
    code, out = sy("experiment", "start", "support", "--a", "1.0", "--b", "1.2", "--split", "0")
    assert code == 2 and "split must be a percent from 1 to 99" in out
    code, out = sy("experiment", "start", "support", "--a", "1.0", "--b", "1.0")
    assert code == 2 and "same version" in out
    code, out = sy("experiment", "start", "support", "--a", "1.0", "--b", "1.2", "--metric", "nope")
    assert code == 2 and "unknown experiment metric 'nope'" in out
    code, out = sy("experiment", "start", "support", "--a", "1.0", "--b", "1.2", "--split", "50")
    assert code == 1 and "no production gate run, so it cannot be an experiment's arm" in out
    gate_run(store, ids["1.0"], "PASS")
    gate_run(store, ids["1.2"], "PASS")
    code, out = sy("experiment", "start", "support", "--a", "1.0", "--b", "1.2", "--split", "50")
    assert code == 0 and "experiment" in out
    code, out = sy("rollout", "canary", "support", "1.1")
    assert code == 2 and "one candidate at a time" in out
    # real traffic through the runtime, assigned by the experiment
    RolloutAssigner.for_runtime(rt, store)
    records = asyncio.run(simulate_traffic(rt, store, 300, rng=random.Random(3), feedback_rate=0.5))
    arms = {r.metadata.get("arm") for r in records}
    assert arms == {"a", "b"}
    assert all(r.version == (ids["1.2"] if r.metadata["arm"] == "b" else ids["1.0"]) for r in records)
    code, out = sy("experiment", "status", "support")
    assert code == 0 and "running" in out and "n=" in out
    result = runner.invoke(app, ["experiment", "report", "support", "--json", "--config", str(cfg.path)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["verdict"] and {m["name"] for m in report["metrics"]} >= {"task_completion", "latency_ms"}
    assert report["srm"] is not None
    code, out = sy("experiment", "report", "support")
    assert code == 0 and "Verdict" in out
    code, out = sy("experiment", "stop", "support")
    assert code == 0 and "stopped; verdict:" in out
    code, out = sy("experiment", "stop", "support")
    assert code == 2 and "no running experiment" in out
    assert store.get_deployment("support")["state"] == "stopped"  # type: ignore[index]
