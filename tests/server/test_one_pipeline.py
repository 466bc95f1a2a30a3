"""One pipeline everywhere: the server, `shipyard eval run`, `shipyard run`, the demo and the canary
eval gate make their runtime the same way, so they run the same steps; a guardrail configured in
shipyard.yaml acts on eval traffic exactly as on served traffic."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from server_helpers import Served
from typer.testing import CliRunner
from waiting import wait_until

from shipyard.cli import app
from shipyard.cli.demo import _run_requests
from shipyard.rollout._gate import eval_gate
from shipyard.runtime import Runtime
from shipyard.store import InteractionRecord, Store

REFUND_11 = "Refund order 10003 please"  # 1.1 refunds this final-sale order without the eligibility check
EXPECTED = [
    "assign_version",
    "start_trace",
    "input_guardrails",
    "budget_check",
    "cache_lookup",
    "run_agent",
    "output_guardrails",
    "cache_store",
    "record",
]

SUITE = """\
name: refund_policy
cases:
  - id: unchecked-refund
    input: Refund order 10003 please
    category: safety
    assert: [{type: contains, value: colleague}]
"""


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[Runtime]:
    """Every Runtime made while the test runs, in order (the real class, watched)."""
    found: list[Runtime] = []
    init = Runtime.__init__

    def watched(self: Runtime, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        found.append(self)

    monkeypatch.setattr(Runtime, "__init__", watched)
    return found


def cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_every_entry_point_runs_the_same_pipeline(
    served: Served, made: list[Runtime], tmp_path: Path
) -> None:
    config = str(served.cfg.path)
    (tmp_path / "suite.yaml").write_text(SUITE)
    pipelines = {"server": served.state.rt.pipeline.names}

    cli("eval", "run", "--agent", "support", "--suite", str(tmp_path / "suite.yaml"), "--config", config)
    pipelines["eval run"] = made[-1].pipeline.names
    cli("run", "support", REFUND_11, "--version", "1.1", "--config", config)
    pipelines["shipyard run"] = made[-1].pipeline.names
    asyncio.run(_run_requests(served.cfg))
    pipelines["shipyard demo"] = made[-1].pipeline.names
    with Store.from_config(served.cfg) as store:
        verdict = eval_gate(served.cfg, store)("support", "1.1", [str(tmp_path / "suite.yaml")])
        [gated] = store.eval_results(verdict.run_id)
    pipelines["canary eval gate"] = made[-1].pipeline.names

    # the canary's eval met the configured refund policy: the refund was refused before it ran
    assert [(t["name"], t["status"]) for t in gated["tool_calls"]][-1] == ("process_refund", "blocked")
    assert all(rt.pipeline.frozen for rt in made)
    assert pipelines == dict.fromkeys(pipelines, EXPECTED)


def _stored(store: Store, interaction_id: str) -> InteractionRecord:
    found: list[InteractionRecord] = []
    wait_until(
        lambda: (
            found.append(r) or True if (r := store.get_interaction(interaction_id, spans=True)) else False
        ),
        f"interaction {interaction_id} in the store",
    )
    return found[0]


def _shape(r: InteractionRecord) -> tuple[str, str, list[dict[str, Any]], Counter[str]]:
    verdicts = [{k: v for k, v in g.items() if k != "latency_ms"} for g in r.guardrails]  # a measurement
    # the one step that differs by traffic source: eval traffic is never answered from the answer
    # cache (an eval must run the agent), so only served traffic has a cache lookup span
    spans = Counter(s.name for s in r.spans if not s.name.startswith("cache_lookup"))
    return r.status, r.output, verdicts, spans


def test_an_eval_run_meets_the_guardrail_exactly_as_served_traffic(served: Served, tmp_path: Path) -> None:
    with served.client() as c:
        answer = c.post("/v1/agents/support/invoke", json={"input": REFUND_11, "version": "1.1"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "completed" and "can't issue that refund" in answer.json()["output"]
    store = served.state.store
    from_server = _stored(store, answer.json()["interaction_id"])

    (tmp_path / "suite.yaml").write_text(SUITE)
    cli(
        "eval",
        "run",
        "--agent",
        "support",
        "--suite",
        str(tmp_path / "suite.yaml"),
        "--version",
        "1.1",
        "--config",
        str(served.cfg.path),
    )
    [run] = store.list_eval_runs("support", limit=1)
    [result] = store.eval_results(run["id"])
    assert result["status"] == "completed" and result["outcome"] == "PASS"
    from_eval = _stored(store, result["interaction_id"])

    assert (from_server.traffic_source, from_eval.traffic_source) == ("production", "eval")
    assert from_server.version == from_eval.version
    assert _shape(from_eval) == _shape(from_server)
    [verdict] = from_eval.guardrails
    assert (
        verdict["name"] == "refund_policy"
        and verdict["verdict"] == "block"
        and verdict["stage"] == "tool_call"
    )
    assert _shape(from_eval)[3]["apply_guardrail refund_policy"] == 1
    assert [(t.name, t.status) for t in from_eval.tool_calls] == [
        ("lookup_order", "success"),
        ("process_refund", "blocked"),
    ]


def test_the_served_demo_blocks_a_1_1_refund_and_counts_the_incident(
    serve_project: Callable[..., Served],
) -> None:
    """What the rollout demo catches, the server's own pipeline catches: the policy is configured.
    The refused refund is a guardrail verdict on a completed interaction: a safety incident."""
    served = serve_project()
    with served.client() as c:
        blocked = c.post("/v1/agents/support/invoke", json={"input": REFUND_11, "version": "1.1"}).json()
        allowed = c.post(
            "/v1/agents/support/invoke", json={"input": "Please refund order 10002, it arrived broken"}
        ).json()
        metrics = c.get("/metrics").text
    assert blocked["status"] == "completed" and "can't issue that refund" in blocked["output"]
    assert allowed["status"] == "completed"
    assert "refunded 89.00 USD for order 10002" in allowed["output"]
    incidents = {
        line.split('version="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("shipyard_safety_incidents_total{")
    }
    assert incidents == {blocked["version"]: 1.0, allowed["version"]: 0.0}
