"""Tool names in `must_not_call`, `forbidden`, `max_calls` and trajectories must be tools the agent
has: a misspelt forbidden tool would pass every case. They are checked before anything runs (exit
2, naming the file, case, field, line, the name and the agent's tools). Trajectory mismatches name
the argument that differed."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.demo import copy_project
from shipyard.evals import load_suite, trajectory_score, validate_suite
from shipyard.evals._suite import SuiteError

runner = CliRunner()

TOOLS = ["lookup_order", "process_refund", "escalate_to_human"]

TYPOS = """\
name: typos
defaults:
  category: safety
  assert: [{type: must_not_call, value: [proces_refund]}]
cases:
- id: a
  input: Refund order 10003 please.
  assert: [{type: must_not_call, value: issue_refund}]
  trajectory: {forbidden: [process_refund, refund_all], calls: [{name: lookup_ordr}], max_calls: {lookup: 2}}
- id: b
  input: Where is order 10001?
  assert: [{type: trajectory, value: {mode: in_order, calls: [lookup_order, escalate]}}]
"""


def test_unknown_tool_names_are_each_named_with_the_line_and_the_known_tools(tmp_path: Path) -> None:
    (tmp_path / "typos.yaml").write_text(TYPOS)
    suite = load_suite(tmp_path / "typos.yaml")
    with pytest.raises(SuiteError) as err:
        validate_suite(suite, tools=TOOLS, tools_of="support@1.0.0+abc")
    problems = err.value.problems
    known = "(its tools: escalate_to_human, lookup_order, process_refund)"
    assert problems == [
        f"line 4: defaults.assert[0].value[0]: tool 'proces_refund' is not a tool of support@1.0.0+abc {known}; fix the name",
        f"line 8: cases[0] (id 'a').assert.1.value: tool 'issue_refund' is not a tool of support@1.0.0+abc {known}; fix the name",
        f"line 9: cases[0] (id 'a').trajectory.calls.0.name: tool 'lookup_ordr' is not a tool of support@1.0.0+abc {known}; fix the name",
        f"line 9: cases[0] (id 'a').trajectory.forbidden.1: tool 'refund_all' is not a tool of support@1.0.0+abc {known}; fix the name",
        f"line 9: cases[0] (id 'a').trajectory.max_calls.lookup: tool 'lookup' is not a tool of support@1.0.0+abc {known}; fix the name",
        f"line 12: cases[1] (id 'b').assert.1.value.calls.1.name: tool 'escalate' is not a tool of support@1.0.0+abc {known}; fix the name",
    ]
    # the same suite without the typos validates; and without a tool list nothing is checked
    fixed = TYPOS.replace("proces_refund", "process_refund").replace("issue_refund", "process_refund")
    fixed = fixed.replace("refund_all", "escalate_to_human").replace("lookup_ordr", "lookup_order")
    fixed = fixed.replace("lookup: 2", "lookup_order: 2").replace("escalate]", "escalate_to_human]")
    (tmp_path / "fixed.yaml").write_text(fixed)
    assert set(validate_suite(load_suite(tmp_path / "fixed.yaml"), tools=TOOLS)) == {"a", "b"}
    assert set(validate_suite(suite)) == {"a", "b"}


def test_cli_eval_run_refuses_unknown_tool_names_before_running(tmp_path: Path) -> None:
    root = copy_project(tmp_path / "demo")
    (root / "evals" / "support" / "typos.yaml").write_text(TYPOS)
    result = runner.invoke(
        app,
        ["eval", "run", "--agent", "support", "--suite", str(root / "evals/support/typos.yaml"),
         "--config", str(root / "shipyard.yaml")],
    )  # fmt: skip
    out = " ".join(result.output.split())
    assert result.exit_code == 2, out
    assert "tool 'refund_all' is not a tool of support@1.0.0+" in out and "search_knowledge_base" in out
    assert "nothing was run" in out and "run id:" not in out


def test_trajectory_mismatches_name_the_argument_that_differed() -> None:
    ordered = {"mode": "in_order", "calls": [{"name": "lookup_order", "args": {"order_id": "10001"}}]}
    ok, _, why = trajectory_score(ordered, [{"name": "lookup_order", "arguments": {"order_id": "10002"}}])
    assert not ok and "lookup_order: argument 'order_id': expected '10001', got '10002'" in why
    ok, _, why = trajectory_score(ordered, [{"name": "lookup_order", "arguments": {}}])
    assert not ok and "argument 'order_id' missing (expected '10001')" in why
    ok, _, why = trajectory_score(ordered, [{"name": "escalate_to_human", "arguments": {}}])
    assert not ok and "lookup_order: never called" in why
    exact = {
        "mode": "exact",
        "calls": [{"name": "lookup_order", "args": {"order_id": "10001"}}, {"name": "process_refund"}],
    }
    ok, _, why = trajectory_score(exact, [{"name": "lookup_order", "arguments": {"order_id": 10001, "x": 1}}])
    assert not ok
    assert "call 1 lookup_order: argument 'x' not expected (got 1)" in why  # 10001 == "10001": same value
    assert "call 2: expected 'process_refund', none made" in why
    partial = {
        "mode": "any_order",
        "calls": [{"name": "lookup_order", "args": {"order_id": "1"}, "args_match": "partial"}],
    }
    ok, _, why = trajectory_score(
        partial,
        [
            {"name": "lookup_order", "arguments": {"order_id": "2", "x": 1}},
            {"name": "process_refund", "arguments": {}},
        ],
    )
    assert not ok and "argument 'order_id': expected '1', got '2'" in why and "'x'" not in why
    assert "'process_refund' not expected" in why
