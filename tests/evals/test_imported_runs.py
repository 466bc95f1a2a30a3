"""Imported suites through the real runner: an ADK eval set scored per invocation (each tool call
knows its turn) and a promptfoo config with JavaScript and a transform, on the order-desk agent."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from test_runner import project  # noqa: F401  (the order-desk project fixture)

from shipyard.config import ShipyardConfig
from shipyard.evals import EvalRunner, load_suite
from shipyard.runtime import Runtime


def invocation(user: str, reply: str, tools: list[dict]) -> dict:
    return {
        "user_content": {"parts": [{"text": user}], "role": "user"},
        "final_response": {"parts": [{"text": reply}], "role": "model"},
        "intermediate_data": {"tool_uses": tools},
    }


async def test_adk_eval_set_scored_per_invocation_by_the_runner(
    project: Callable[..., ShipyardConfig],  # noqa: F811
    tmp_path: Path,
) -> None:
    lookup = {"name": "lookup", "args": {"order_id": "9"}}
    right = [
        invocation("hello", "Hello! Ask me about an order.", []),
        invocation("order 9?", "Order 9 is shipped.", [lookup]),
    ]
    late = [
        invocation("hello", "Hello! Ask me about an order.", [lookup]),
        invocation("order 9?", "Order 9 is shipped.", []),
    ]
    (tmp_path / "desk.test.json").write_text(
        json.dumps(
            {
                "eval_set_id": "desk",
                "eval_cases": [
                    {"eval_id": "right", "conversation": right},
                    {"eval_id": "late", "conversation": late},
                ],
            }
        )
    )
    (tmp_path / "test_config.json").write_text(
        '{"criteria": {"tool_trajectory_avg_score": 1.0, "response_match_score": 0.9}}'
    )
    cfg = project()
    rt = Runtime(cfg)
    result = await EvalRunner(rt, cfg, concurrency=2).run(
        "shop", [load_suite(tmp_path / "desk.test.json")], progress=False
    )
    await rt.aclose()
    by_id = {r.case_id: r for r in result.results}
    assert by_id["right"].outcome == "PASS", by_id["right"].reasons
    assert [c["turn"] for c in by_id["right"].tool_calls] == [1]
    late_result = by_id["late"]  # the same calls, expected one turn earlier: ADK scores each turn
    assert late_result.outcome == "FAIL"
    trajectory = next(s for s in late_result.scores if s.scorer == "adk_trajectory")
    assert trajectory.score == 0.0 and trajectory.details["per_turn"] == [0.0, 0.0]


async def test_promptfoo_config_with_javascript_and_transform_through_the_runner(
    project: Callable[..., ShipyardConfig],  # noqa: F811
    tmp_path: Path,
) -> None:
    if shutil.which("node") is None:
        pytest.skip("node not on PATH: javascript needs Node.js or the quickjs package")
    (tmp_path / "promptfooconfig.yaml").write_text(
        "prompts: ['{{question}}']\n"
        "tests:\n"
        "  - vars: {question: 'where is order 42?', id: '42'}\n"
        "    assert:\n"
        "      - {type: javascript, value: 'output.includes(context.vars.id)'}\n"
        "      - {type: equals, value: 'ORDER 42 IS SHIPPED.', transform: output.toUpperCase()}\n"
        "      - {type: not-javascript, value: 'output.length > 3'}\n"
    )
    cfg = project()
    rt = Runtime(cfg)
    result = await EvalRunner(rt, cfg).run(
        "shop", [load_suite(tmp_path / "promptfooconfig.yaml")], progress=False
    )
    await rt.aclose()
    [res] = result.results
    assert [s.passed for s in res.scores] == [True, True, False]
    assert res.outcome == "FAIL"
