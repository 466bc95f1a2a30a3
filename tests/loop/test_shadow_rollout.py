"""A rollout that requires a shadow step: the canary of a candidate starts only after a shadow run of it
against the stable version that passed, recent enough (`shadow.require_before_canary`)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from shadow_project import desk_project, llm_url, production_inputs
from test_shadow import _production, _shadow

from shipyard.config import load_config
from shipyard.errors import GateFailed
from shipyard.evals import GATE_RULES
from shipyard.rollout import RolloutController
from shipyard.runtime import Runtime
from shipyard.store import Store

__all__ = ["llm_url"]  # the fixture, imported for pytest


def _gate_pass(store: Store, version: str) -> None:
    run_id = store.create_eval_run("desk", version, ["suite.yaml"], stage="production")
    store.finish_eval_run(
        run_id, "finished", {"counts": {}}, {"verdict": "PASS", "reasons": [], "rules": GATE_RULES}
    )


async def test_a_canary_needs_a_recent_passing_shadow_run(tmp_path: Path, llm_url: str) -> None:
    with desk_project(tmp_path, llm_url, extra="shadow: {require_before_canary: 24h}\n") as config:
        cfg = load_config(config)
        store = Store.from_config(cfg)
        rt = Runtime(cfg, store=store)
        stable, candidate = (v.id for v in rt.versions("desk"))
        for v in (stable, candidate):
            _gate_pass(store, v)
        ctl = RolloutController.for_runtime(rt, store)
        ctl.deploy("desk", stable)

        with pytest.raises(GateFailed) as missing:
            ctl.start_canary("desk", candidate)
        assert "needs a shadow run against the stable version" in missing.value.message
        assert "shipyard shadow --agent desk --candidate 2.0.0" in (missing.value.hint or "")

        await _production(config, production_inputs(3))
        report, shadow_store = await _shadow(config, "2.0.0")
        shadow_store.close()
        assert report.verdict == "PASS"

        # two days later the run is too old to count
        later = RolloutController.for_runtime(rt, store, clock=lambda: time.time() + 2 * 86400)
        with pytest.raises(GateFailed):
            later.start_canary("desk", candidate)

        dep = ctl.start_canary("desk", candidate)
        [start] = [d for d in ctl.decisions("desk") if d["action"] == "start"]
        await rt.aclose()
        store.close()
    assert dep.config["shadow_run"] == report.run_id
    assert any(f"shadow step: run {report.run_id}" in r for r in start["reasons"])
