"""`shipyard checklist`: the starter project fails with a one-line fix per item; the demo project sets
its alert and trace targets and a kill switch on refunds, and its phases add a rehearsed rollback and a
CI workflow (tests/demo/test_demo_project.py shows it passing after `shipyard demo`). Budgets are not
built yet: a warning that says so, never a failure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.demo import copy_project

runner = CliRunner()


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SHIPYARD_DATABASE_URL", "SHIPYARD_CONFIG", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)


def checklist(config: Path) -> tuple[int, dict]:
    result = runner.invoke(app, ["checklist", "--format", "json", "-c", str(config)])
    return result.exit_code, json.loads(result.stdout)


def test_the_starter_fails_with_clear_fixes(tmp_path: Path) -> None:
    assert runner.invoke(app, ["init", str(tmp_path / "p")]).exit_code == 0
    code, doc = checklist(tmp_path / "p" / "shipyard.yaml")
    assert code == 1 and doc["ready"] is False
    items = {i["key"]: i for i in doc["items"]}
    assert set(items) == {
        "eval_suites", "safety_gate", "latency_cost_gates", "pipeline_stages", "budgets", "alerts", "tracing",
        "pii_redaction", "kill_switches", "rollback_rehearsed", "prompts_versioned", "ci_workflow", "guardrails",
    }  # fmt: skip
    for key in ("eval_suites", "safety_gate", "latency_cost_gates", "alerts", "tracing", "pii_redaction",
                "rollback_rehearsed", "ci_workflow", "guardrails"):  # fmt: skip
        assert items[key]["result"] == "fail", key
        assert items[key]["fix"] and items[key]["evidence"], key
        assert "\n" not in items[key]["fix"], key  # one line
    assert "tool_usage, safety" in items["eval_suites"]["evidence"]
    assert items["ci_workflow"]["fix"] == "shipyard ci init --github (or --gitlab)"
    assert items["prompts_versioned"]["result"] == "pass"
    budgets = items["budgets"]
    assert budgets["result"] == "warning" and not budgets["required"]
    assert "not built in this version" in budgets["evidence"]
    markdown = runner.invoke(
        app, ["checklist", "--format", "markdown", "-c", str(tmp_path / "p" / "shipyard.yaml")]
    )
    assert (
        markdown.exit_code == 1
        and "**NOT READY**" in markdown.stdout
        and "| ❌ | Tracing exporter configured |" in markdown.stdout
    )


def test_the_demo_project_sets_what_a_launch_needs_but_what_its_phases_do(tmp_path: Path) -> None:
    """Before `shipyard demo` runs its phases, the packaged project fails only the two items those
    phases provide: a rehearsed rollback (the rollout phase) and a CI workflow (`ci init`). Its alert and
    trace targets (files under .shipyard/) and the kill switch on process_refund are configuration.
    tests/demo/test_demo_project.py runs the demo and its checklist passing."""
    copy_project(tmp_path)
    cfg = tmp_path / "shipyard.yaml"
    code, doc = checklist(cfg)
    assert code == 1
    items = {i["key"]: i for i in doc["items"]}
    assert {k for k, i in items.items() if i["result"] == "fail"} == {"rollback_rehearsed", "ci_workflow"}
    assert "appended to .shipyard/alerts.jsonl" in items["alerts"]["evidence"]
    assert "OTLP JSON lines to .shipyard/traces.jsonl" in items["tracing"]["evidence"]
    kill = items["kill_switches"]["evidence"]
    assert "guarded by a kill switch: issue_store_credit, process_refund" in kill
    for key in ("rollback_rehearsed", "ci_workflow"):
        fix = items[key]["fix"]
        assert fix and "\n" not in fix, key  # one line
    # the kill switch is a real one: with its flag gone, process_refund is unguarded again
    flags = json.loads((tmp_path / "flags.json").read_text())
    del flags["flags"]["refunds"]
    (tmp_path / "flags.json").write_text(json.dumps(flags))
    _, doc = checklist(cfg)
    kill_item = next(i for i in doc["items"] if i["key"] == "kill_switches")
    assert kill_item["result"] == "fail" and "process_refund" in kill_item["fix"]
