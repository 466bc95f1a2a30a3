"""Two replicas' controllers, each with a Store of its own on one PostgreSQL schema: canary ticks run
at once act once per step (the deployment's revision is a compare-and-set), and admin changes made at
once through both are each applied or refused with a conflict, never silently lost."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from rollout_helpers import Clock, fill, gate_run
from testdb import fresh_database

from shipyard.config import ShipyardConfig, load_config
from shipyard.errors import ConflictError, ShipyardError
from shipyard.rollout import RolloutController
from shipyard.runtime import Runtime
from shipyard.store import Store

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_cfg(
    project_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ShipyardConfig]:
    with fresh_database("postgresql", tmp_path) as url:
        monkeypatch.setenv("SHIPYARD_DATABASE_URL", url)
        yield load_config(project_template / "shipyard.yaml")


@pytest.fixture
def replicas(pg_cfg: ShipyardConfig) -> Iterator[list[tuple[Store, Runtime]]]:
    out = []
    for _ in range(2):
        store = Store.from_config(pg_cfg)
        out.append((store, Runtime(pg_cfg, store=store)))
    yield out
    for store, rt in out:
        asyncio.run(rt.aclose())
        store.close()


def test_ticks_of_two_replicas_act_once_per_step(replicas: list[tuple[Store, Runtime]]) -> None:
    clock = Clock()
    ctls = [RolloutController.for_runtime(rt, store, clock=clock) for store, rt in replicas]
    ids = {v.label.rsplit(".", 1)[0]: v.id for v in replicas[0][1].versions("support")}
    gate_run(ctls[0].store, ids["1.2"], "PASS")
    ctls[0].start_canary(
        "support", "1.2", actor="alice", steps="10,50,100", min_interactions=100, min_duration_s=60
    )
    for step, weight in enumerate((10, 50)):
        fill(replicas[0][0], ids, clock, weight, total=1500)
        clock.advance(61)
        barrier = threading.Barrier(4)
        results: list[object] = []

        def tick(
            c: RolloutController, barrier: threading.Barrier = barrier, results: list[object] = results
        ) -> None:
            barrier.wait()
            results.append(c.tick("support"))

        threads = [threading.Thread(target=tick, args=(c,)) for c in ctls * 2]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(1 for r in results if r is not None) == 1  # the others lost the compare-and-set
        actions = [d["action"] for d in ctls[1].decisions("support", limit=50)]
        assert actions.count("step_up") + actions.count("promote") == step + 1
    dep = ctls[1].get("support")
    assert (dep.state, dep.stable_version) == ("promoted", ids["1.2"])


def test_admin_changes_through_two_replicas_lose_none(replicas: list[tuple[Store, Runtime]]) -> None:
    clock = Clock()
    ctls = [RolloutController.for_runtime(rt, store, clock=clock) for store, rt in replicas]
    ids = {v.label.rsplit(".", 1)[0]: v.id for v in replicas[0][1].versions("support")}
    gate_run(ctls[0].store, ids["1.2"], "PASS")
    ctls[0].start_canary(
        "support", "1.2", actor="alice", steps="10,50,100", min_interactions=100, min_duration_s=60
    )
    before = ctls[0].get("support").revision
    applied: list[str] = []
    refused: list[str] = []
    lock = threading.Lock()

    def toggle(c: RolloutController, who: str) -> None:
        for i in range(10):
            op = c.pause if c.get("support").state == "running" else c.resume
            try:
                op("support", actor=f"{who}-{i}", reason="test")
            except ConflictError:
                with lock:
                    refused.append(who)
            except ShipyardError:  # the other replica toggled first: nothing to pause / resume
                with lock:
                    refused.append(who)
            else:
                with lock:
                    applied.append(f"{who}-{i}")

    threads = [threading.Thread(target=toggle, args=(c, f"r{n}")) for n, c in enumerate(ctls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = ctls[1].get("support")
    assert after.revision - before == len(applied)  # every applied change is a revision of its own
    logged = [
        d["actor"] for d in ctls[0].decisions("support", limit=100) if d["action"] in ("pause", "resume")
    ]
    assert sorted(logged) == sorted(applied)  # and a decision: none lost, none doubled
    assert len(applied) + len(refused) == 20
