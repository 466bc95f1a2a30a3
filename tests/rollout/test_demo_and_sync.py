"""Blue-green automatic promotion, and replicas hearing changes via Redis (the rollout demo end to end is
checked on the one full demo run in tests/demo/test_demo_project.py)."""

from __future__ import annotations

import asyncio

import pytest
from rollout_helpers import Clock, gate_run, write_arm

from shipyard.rollout import RolloutAssigner, RolloutController
from shipyard.runtime import Runtime
from shipyard.store import Store


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
