"""Warm-up hooks: run once per version, with a context, before the server says ready and before an
eval run starts; a failing one is reported (the agent is not ready), never a crash."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from framework_helpers import drop_modules, scripted_project, serve

from shipyard.config import ShipyardConfig
from shipyard.errors import ShipyardError
from shipyard.evals import EvalRunner, load_suite
from shipyard.runtime import Runtime

AGENTS = """\
from shipyard import agent
from shipyard.agents import current_context

EVENTS = []
FAIL = {"cold": True}


async def _warm_ready() -> None:
    ctx = current_context()
    EVENTS.append(("warm", ctx is not None and ctx.session_id.startswith("warmup-")))


async def _warm_cold() -> None:
    EVENTS.append(("warm-cold", None))
    if FAIL["cold"]:
        raise RuntimeError("the framework could not start")


@agent("ready", warmup=_warm_ready)
async def ready(user_input, ctx):
    EVENTS.append(("run", user_input))
    return "ok"


@agent("cold", warmup=_warm_cold)
async def cold(user_input, ctx):
    return "ok"
"""


@pytest.fixture
def project(tmp_path: Path) -> Iterator[tuple[ShipyardConfig, Any]]:
    cfg, module = scripted_project(tmp_path, AGENTS, ["ready", "cold"], "warmagents")
    (tmp_path / "evals").mkdir()
    (tmp_path / "evals" / "smoke.yaml").write_text(
        "name: smoke\ncases:\n  - {id: a, input: one, expected: ok}\n  - {id: b, input: two, expected: ok}\n"
    )
    Runtime(cfg).versions("ready")  # imports the module
    yield cfg, sys.modules[module]
    drop_modules(tmp_path, module)


async def test_warm_up_runs_once_per_version_with_a_context(project: tuple[ShipyardConfig, Any]) -> None:
    cfg, mod = project
    rt = Runtime(cfg)
    assert await rt.warm_up("ready") == {}
    assert await rt.warm_up("ready") == {}
    assert mod.EVENTS == [("warm", True)]  # once, and current_context() worked inside it
    rec = await rt.invoke("ready", "hello")
    assert rec.status == "completed" and mod.EVENTS[-1] == ("run", "hello")


async def test_a_failing_warm_up_is_reported_and_tried_again(project: tuple[ShipyardConfig, Any]) -> None:
    cfg, mod = project
    rt = Runtime(cfg)
    [(version, error)] = (await rt.warm_up("cold")).items()
    assert (
        version.startswith("cold@")
        and error == "the warm-up raised RuntimeError: the framework could not start"
    )
    mod.FAIL["cold"] = False
    assert await rt.warm_up("cold") == {}
    assert [e for e in mod.EVENTS if e[0] == "warm-cold"] == [("warm-cold", None)] * 2


async def test_an_eval_run_warms_up_before_the_first_case(project: tuple[ShipyardConfig, Any]) -> None:
    cfg, mod = project
    suite = load_suite(cfg.root / "evals" / "smoke.yaml")
    result = await EvalRunner(Runtime(cfg), cfg, concurrency=1).run("ready", [suite], progress=False)
    assert result.counts()["PASS"] == 2
    assert [e[0] for e in mod.EVENTS] == ["warm", "run", "run"]
    with pytest.raises(ShipyardError, match="agent 'cold' is not ready: the warm-up raised RuntimeError"):
        await EvalRunner(Runtime(cfg), cfg).run("cold", [suite], progress=False)


def test_the_server_warms_up_before_ready_and_a_failed_warm_up_is_not_ready(
    project: tuple[ShipyardConfig, Any],
) -> None:
    cfg, mod = project
    with serve(cfg) as served:
        assert ("warm", True) in mod.EVENTS  # done before the server accepted a connection
        with httpx.Client(base_url=served.url, timeout=60) as h:
            r = h.get("/readyz")
            assert r.status_code == 503
            agents = r.json()["agents"]
            assert agents["ready"] == "ok"
            assert "the warm-up raised RuntimeError: the framework could not start" in agents["cold"]
            assert h.post("/v1/agents/ready/invoke", json={"input": "hi"}).status_code == 200
            r = h.post("/v1/agents/cold/invoke", json={"input": "hi"})
            assert r.status_code == 503 and "warm-up" in r.json()["error"]["message"]
