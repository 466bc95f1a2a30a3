"""The pipeline's own checks: static analysis of tools and config, the project's unit tests, change
review (prompt lines, safety rules, tools) with approvals, cross-model consistency."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from shipyard.config import ProductionStage, load_config
from shipyard.demo import copy_project
from shipyard.evals import Outcome, RepeatResult, RunSummary
from shipyard.evals import summarize as summarize_repeats
from shipyard.pipeline import RED_TEAM_PREFIX, consistency, review_change
from shipyard.pipeline._review import consistency_check, review_checks
from shipyard.pipeline._static import analyse_config, check_tool_definitions, unit_tests
from shipyard.runtime import Runtime


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("SHIPYARD_DATABASE_URL", raising=False)
    copy_project(tmp_path)
    return tmp_path


def _version(root: Path, ref: str | None = None):  # type: ignore[no-untyped-def]
    cfg = load_config(root / "shipyard.yaml")
    rt = Runtime(cfg)
    return cfg, rt, rt.resolve_version("support", ref)


def test_config_analysis_finds_unpriced_models(demo: Path) -> None:
    text = (demo / "shipyard.yaml").read_text()
    text = text.replace(
        "    prices: {input: 0.15, cached_input: 0.075, output: 0.60}   # USD per million tokens\n", "", 1
    )
    (demo / "shipyard.yaml").write_text(text)
    cfg, rt, v = _version(demo)
    findings = analyse_config(cfg, v)
    errors = [f for f in findings if f.severity == "error"]
    assert [f.where for f in errors] == ["models.scripted-small.prices"]
    assert "set models.scripted-small.prices" in errors[0].fix
    assert any(f.severity == "warning" and "fallback" in f.message for f in findings)
    asyncio.run(rt.aclose())


def test_an_unknown_tool_stops_ci_before_anything_runs(demo: Path) -> None:
    from typer.testing import CliRunner

    from shipyard.cli import app

    text = (demo / "shipyard.yaml").read_text()
    (demo / "shipyard.yaml").write_text(
        text.replace(
            "tools: [process_refund, issue_store_credit]", "tools: [process_refund, issue_refund]", 1
        )
    )
    result = CliRunner().invoke(app, ["ci", "run", "pre-merge", "-c", str(demo / "shipyard.yaml")])
    assert result.exit_code == 2 and "'issue_refund'" in result.output
    assert not (demo / ".shipyard" / "ci" / "reports" / "pre-merge.xml").exists()


def test_the_demo_config_and_tools_are_sound(demo: Path) -> None:
    cfg, rt, v = _version(demo)
    assert [f for f in analyse_config(cfg, v) if f.severity == "error"] == []
    assert [f for f in check_tool_definitions(rt, v) if f.severity == "error"] == []
    asyncio.run(rt.aclose())


def test_a_bad_tool_schema_is_an_error(demo: Path) -> None:
    _cfg, rt, v = _version(demo)
    defs = rt.tool_definitions(v)
    defs[0]["function"]["parameters"] = {"type": "object", "properties": {"x": {"type": "no-such-type"}}}
    defs[1]["function"]["description"] = ""
    findings = check_tool_definitions(rt, v)
    names = [d["function"]["name"] for d in defs]
    assert any(names[0] in f.where and "not a valid JSON schema" in f.message for f in findings)
    assert any(names[1] in f.where and "no description" in f.message for f in findings)
    asyncio.run(rt.aclose())


def test_unit_tests_run_and_fail_the_check(demo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # the child pytest: no plugins to load
    cfg = load_config(demo / "shipyard.yaml")
    assert unit_tests(cfg).skipped  # no tests/ folder
    (demo / "tests").mkdir()
    (demo / "tests" / "test_x.py").write_text("def test_ok():\n    assert True\n")
    ok = unit_tests(cfg)
    assert ok.passed and not ok.skipped and "exited 0" in ok.detail
    (demo / "tests" / "test_y.py").write_text("def test_bad():\n    assert 1 == 2\n")
    bad = unit_tests(cfg)
    assert not bad.passed and "exited 1" in bad.detail and "1 failed" in bad.detail


def test_review_of_prompt_and_tool_changes(demo: Path) -> None:
    _cfg, rt, v10 = _version(demo, "1.0.0")
    _, _, v11 = _version(demo, "1.1.0")
    _, _, v12 = _version(demo, "1.2.0")
    r11 = review_change(v10.bundle, v11.bundle, rt.tool_definitions(v10), rt.tool_definitions(v11), v10.id)
    assert r11.safety_rules_changed and r11.prompt_lines == 6
    assert r11.tools_changed == ["process_refund"]  # its description as the model sees it changed
    policy = ProductionStage()
    checks = {c.name: c for c in review_checks(r11, policy, [])}
    assert not checks["review.prompt_change"].passed and checks["review.prompt_change"].within_margin
    assert not checks["review.red_team"].passed and checks["review.red_team"].within_margin
    approvals = [{"by": "alice", "reason": "read it"}]
    checks = {c.name: c for c in review_checks(r11, policy, approvals)}
    assert checks["review.prompt_change"].passed and not checks["review.red_team"].passed
    approvals.append({"by": "mallory", "reason": RED_TEAM_PREFIX + "probed refunds"})
    assert all(c.passed for c in review_checks(r11, policy, approvals))
    r12 = review_change(v10.bundle, v12.bundle, rt.tool_definitions(v10), rt.tool_definitions(v12), v10.id)
    assert not r12.safety_rules_changed and not r12.tools_touched and 0 < r12.prompt_lines <= 20
    assert [c.name for c in review_checks(r12, policy, [])] == ["review.prompt_change"]
    assert review_checks(r12, policy, [])[0].passed
    assert not review_checks(r12, ProductionStage(review_prompt_lines=r12.prompt_lines - 1), [])[0].passed
    asyncio.run(rt.aclose())


def _run(outcomes: dict[str, Outcome], model: str) -> RunSummary:
    repeats = [
        RepeatResult(case_id=c, category="functional", repeat=0, outcome=o, suite="s")
        for c, o in outcomes.items()
    ]
    return summarize_repeats(repeats, run_id=model, agent="a", version=model)


def test_cross_model_consistency() -> None:
    a = _run({"c1": Outcome.PASS, "c2": Outcome.PASS, "c3": Outcome.FAIL, "c4": Outcome.PASS}, "small")
    b = _run({"c1": Outcome.PASS, "c2": Outcome.ERROR, "c3": Outcome.FAIL, "c4": Outcome.PASS}, "large")
    c = consistency({"small": a, "large": b})
    assert c.cases == 4 and c.agreeing == 3 and c.rate == 0.75
    assert c.disagreeing == {"s/c2": {"small": "PASS", "large": "ERROR"}}
    check = consistency_check(c, 0.9)
    assert not check.passed and check.within_margin and "s/c2" in check.detail
    assert consistency_check(c, 0.75).passed
