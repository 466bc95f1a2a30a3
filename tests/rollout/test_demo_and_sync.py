"""The rollout demo end to end, blue-green automatic promotion, and replicas hearing changes via Redis."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from rich.console import Console
from rollout_helpers import Clock, gate_run, write_arm

from shipyard.cli._demo_rollout import OVERRIDE_1_1, run_rollout_demo
from shipyard.config import ShipyardConfig
from shipyard.rollout import RolloutAssigner, RolloutController
from shipyard.runtime import Runtime
from shipyard.store import Store


def test_the_demo_rolls_back_1_1_and_promotes_1_2(cfg: ShipyardConfig, store: Store) -> None:
    console = Console(record=True, width=160)
    outcome = run_rollout_demo(Path(str(cfg.path)), console)
    assert outcome == {"1.1": "rolled_back", "1.2": "promoted"}
    text = console.export_text()
    assert "critical metric failed: safety_incidents" in text and "rollback at 5%" in text
    assert "promote at 50%" in text
    decisions = [d["action"] for d in store.rollout_decisions("support", limit=None)]
    assert (
        decisions.count("rollback") == 1
        and decisions.count("promote") == 1
        and decisions.count("step_up") == 2
    )
    # the 1.1 canary's rollback names the refund-policy incidents it saw
    rollback = next(d for d in store.rollout_decisions("support", limit=None) if d["action"] == "rollback")
    safety = next(m for m in rollback["numbers"]["analysis"]["metrics"] if m["name"] == "safety_incidents")
    assert safety["canary"] > 0 and safety["baseline"] == 0
    # 1.1 was canaried with the override an admin has, visibly and on the record; 1.2 passed its gate
    assert "we canary it anyway with --override-gate to show what production catches" in text
    assert "$ shipyard rollout canary support 1.1 --steps 5,25,50,100" in text and "--override-gate" in text
    starts = [d for d in store.rollout_decisions("support", limit=None) if d["action"] == "start"]
    by_candidate = {d["candidate"].split("@")[1][:3]: d for d in starts}
    override = by_candidate["1.1"]["numbers"]["gate"]["override"]
    assert override["by"] == "demo" and override["reason"] == OVERRIDE_1_1
    assert by_candidate["1.1"]["reasons"][0] == f"production gate overridden by demo: {OVERRIDE_1_1}"
    assert by_candidate["1.2"]["numbers"]["gate"]["override"] is None
    [gated] = by_candidate["1.2"]["numbers"]["gate"]["runs"].values()
    assert (store.get_eval_run(gated) or {})["decision"]["verdict"] == "PASS"


def test_blue_green_promotes_itself_after_a_healthy_period(
    ctl: RolloutController, store: Store, clock: Clock, ids: dict[str, str]
) -> None:
    gate_run(store, ids["1.2"], "PASS")
    ctl.start_blue_green("support", "1.2", promote_after_s=600, min_interactions=50)
    write_arm(store, ids["1.0"], "production", 300, clock.t - 300, seed=1)  # blue before the switch
    ctl.switch("support")
    write_arm(store, ids["1.2"], "production", 300, clock.t + 1, seed=2)
    clock.advance(300)
    assert ctl.tick("support") is None  # not healthy for long enough yet
    clock.advance(301)
    d = ctl.tick("support")
    assert d is not None and d.action == "promote" and d.verdict == "PASS"
    dep = ctl.get("support")
    assert (dep.state, dep.stable_version) == ("promoted", ids["1.2"])


def _redis_ok() -> bool:
    import redis

    try:
        return bool(redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1).ping())
    except Exception:
        return False


@pytest.mark.skipif(not _redis_ok(), reason="Redis at 127.0.0.1:6379 is not running")
def test_a_change_notice_reaches_another_replica_at_once(
    rt: Runtime, store: Store, ids: dict[str, str]
) -> None:
    url = "redis://127.0.0.1:6379/0"
    other = RolloutAssigner(store, refresh_s=3600, redis_url=url)  # polling alone would take an hour
    gate_run(store, ids["1.2"], "PASS")
    ctl = RolloutController.for_runtime(rt, store, redis_url=url)

    async def scenario() -> str | None:
        task = asyncio.get_running_loop().create_task(other.run())
        try:
            await asyncio.sleep(0.5)  # subscribed
            await asyncio.to_thread(ctl.start_canary, "support", "1.2")
            for _ in range(100):
                dep = other.deployment("support")
                if dep is not None:
                    return dep.candidate_version
                await asyncio.sleep(0.05)
            return None
        finally:
            task.cancel()

    assert asyncio.run(scenario()) == ids["1.2"]
