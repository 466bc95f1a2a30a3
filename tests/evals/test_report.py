"""Reports: terminal, JSON, JUnit XML, HTML and Markdown from a real summary and decision."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from _gate_data import case, cases

from shipyard.config import StagePolicy
from shipyard.evals import (
    EvalRunResult,
    GateDecision,
    ReportError,
    RunSummary,
    decide_gate,
    parse_report_spec,
    summarize_run,
    write_report,
)

Gated = tuple[EvalRunResult, RunSummary, GateDecision]


@pytest.fixture
def gated() -> Gated:
    results = (
        cases("f", 8, latency_ms=120.0)
        + case("f-refund", "PPF", reason="expected 'refund issued' <b>&amp;</b>")
        + case("f-judge", "EEE")
        + cases("s", 5, category="safety", latency_ms=80.0)
        + case(
            "s-leak", "F", category="safety", reason="must_refuse: the agent revealed an order | of another"
        )
    )
    run = EvalRunResult(
        run_id="run1",
        agent="support",
        version="support@1.1.0+bbb",
        stage="production",
        suites=["smoke"],
        results=results,
    )
    summary = summarize_run(run)
    policy = StagePolicy.model_validate(
        {
            "min_pass_rate": {"functional": 0.9},
            "safety": {"min_pass_rate": 1.0},
            "max_p95_latency_ms": 5000,
            "regression": {},
        }
    )
    return run, summary, decide_gate(summary, policy, stage="production")


def test_junit_parses_with_the_right_counts(gated: Gated, tmp_path: Path) -> None:
    run, summary, decision = gated
    write_report("junit", tmp_path / "out/junit.xml", run, summary, decision)
    root = ET.parse(tmp_path / "out/junit.xml").getroot()
    assert root.tag == "testsuites"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {"support functional", "support safety", "gate production"}
    fn = suites["support functional"]
    assert (fn.get("tests"), fn.get("failures"), fn.get("errors")) == ("10", "1", "1")
    gate = suites["gate production"]
    assert len(gate.findall("testcase")) == len(decision.checks)
    assert gate.get("skipped") == "1"  # regression without a baseline
    # totals: 10 + 6 cases, plus the checks
    assert int(root.get("tests", "0")) == 16 + len(decision.checks)
    refund = fn.find("testcase[@name='f-refund']")
    assert refund is not None
    props = {p.get("name"): p.get("value") for p in refund.iter("property")}
    assert props["k_of_n"] == "2/3" and props["flaky"] == "true"
    assert float(props["wilson_low"]) == pytest.approx(0.2077, abs=1e-3)
    assert "pass@3" in props and "pass^3" in props
    failure = refund.find("failure")
    assert failure is not None and "expected 'refund issued' <b>&amp;</b>" in failure.get("message", "")
    judge = fn.find("testcase[@name='f-judge']")
    assert judge is not None and judge.find("error") is not None and judge.find("failure") is None
    assert "unreadable verdict" in judge.findtext("error", "") + str(judge.find("error").attrib)


def test_html_is_self_contained_with_svg_charts(gated: Gated, tmp_path: Path) -> None:
    run, summary, decision = gated
    write_report("html", tmp_path / "report.html", run, summary, decision)
    html = (tmp_path / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert html.count("<svg") == 3
    assert "pass rate per category" in html and "latency histogram" in html and "cost per category" in html
    assert not re.search(r"https?://|<script|<link|src=", html)
    assert "&lt;b&gt;&amp;amp;&lt;/b&gt;" in html  # user text is escaped
    assert "FAIL" in html and "smoke/s-leak" in html


def test_html_says_when_latency_was_not_measured(tmp_path: Path) -> None:
    run = EvalRunResult(
        run_id="r", agent="a", version="v", stage=None, suites=["smoke"], results=cases("f", 3, replayed=True)
    )
    write_report("html", tmp_path / "r.html", run, summarize_run(run), None)
    assert "every repeat was replayed" in (tmp_path / "r.html").read_text()


def test_markdown_summary_has_tables_fit_for_a_pr(gated: Gated, tmp_path: Path) -> None:
    run, summary, decision = gated
    write_report("markdown", tmp_path / "pr.md", run, summary, decision)
    md = (tmp_path / "pr.md").read_text()
    assert md.startswith("### ❌ Gate production: FAIL — support support@1.1.0+bbb")
    assert "| Category | Cases | Pass | Fail | Error | Skipped | Flaky | Pass rate | 95% CI |" in md
    assert "| functional | 10 | 8 | 1 | 1 | 0 | 1 | 80.0% |" in md
    assert "| safety | 0.833 | >= 1.000 | yes | FAIL |" in md
    assert "revealed an order \\| of another" in md  # pipes inside cells are escaped
    rows = [line for line in md.splitlines() if line.startswith("| smoke/")]
    assert len(rows) == 3


def test_json_report_holds_summary_decision_and_results(gated: Gated, tmp_path: Path) -> None:
    run, summary, decision = gated
    write_report("json", tmp_path / "r.json", run, summary, decision)
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["decision"]["verdict"] == "FAIL"
    assert doc["summary"]["categories"]["functional"]["errors"] == 1
    assert len(doc["results"]) == len(run.results) and doc["run"]["run_id"] == "run1"


def test_terminal_report_lists_categories_failing_cases_and_checks(gated: Gated, tmp_path: Path) -> None:
    run, summary, decision = gated
    write_report("terminal", tmp_path / "r.txt", run, summary, decision)
    text = (tmp_path / "r.txt").read_text()
    assert "functional" in text and "Failing cases (3)" in text and "smoke/f-refund" in text
    assert "safety" in text and "Decision: FAIL" in text and "0.833" in text


def test_report_specs_and_bad_kinds() -> None:
    assert parse_report_spec("junit:out/results.xml") == ("junit", "out/results.xml")
    assert parse_report_spec("terminal") == ("terminal", "-")
    with pytest.raises(ReportError, match="unknown kind 'pdf'"):
        parse_report_spec("pdf:x.pdf")
    with pytest.raises(ReportError, match="a path is needed"):
        parse_report_spec("html")


def test_unwritable_report_path_is_a_clean_error(gated: Gated, tmp_path: Path) -> None:
    run, summary, decision = gated
    (tmp_path / "file").write_text("x")
    with pytest.raises(ReportError, match="cannot write the json report"):
        write_report("json", tmp_path / "file" / "r.json", run, summary, decision)
