"""SKIPPED, the outcome of a case that could not run here (a `scenario` case without a user
simulator): carried with its reason through statistics, comparisons, the gate and every report,
and never counted as passed."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace

from _gate_data import case, rep

from shipyard.config import StagePolicy
from shipyard.evals import Outcome, RepeatResult, RunSummary, compare_runs, decide_gate, summarize
from shipyard.evals._reports import render_html, render_json, render_junit, render_markdown, render_terminal

WHY = "a scenario case needs a user simulator to play its user, and none is configured"


def skip(case_id: str, repeat: int = 0, category: str = "functional") -> RepeatResult:
    r = rep(case_id, "PASS", repeat=repeat, category=category)
    return replace(r, outcome=Outcome.SKIPPED, scores=[], error=WHY, output="", latency_ms=0.0, cost_usd=0.0)


def _summary() -> RunSummary:
    results = [*case("ok", "PP"), *case("bad", "PF"), skip("sim", 0), skip("sim", 1)]
    return summarize(results, run_id="r1", agent="shop", version="shop@1+abc", planned_cases=3)


def test_a_skipped_case_is_counted_apart_and_never_as_passed() -> None:
    s = _summary()
    sim = s.case("smoke/sim")
    assert sim is not None and sim.outcome == "SKIPPED" and (sim.n, sim.passed, sim.skipped) == (2, 0, 2)
    assert sim.errors == 0 and sim.failed == 0 and sim.reasons == [f"skipped: {WHY}"]
    o = s.overall
    assert (o.cases, o.passed, o.failed, o.errors, o.skipped) == (3, 1, 1, 0, 1)
    assert o.pass_rate == 1 / 3  # the skipped case stays in the denominator
    assert o.rate("exclude")[3] == 3  # leaving ERROR out never leaves SKIPPED out
    assert [c.case_id for c in s.failing_cases()] == ["bad"] and [c.case_id for c in s.skipped_cases()] == [
        "sim"
    ]
    for rule in ("majority", "any"):  # no case rule makes a skipped case pass
        again = s.with_case_rule(rule)
        assert again.case("smoke/sim").outcome == "SKIPPED"  # type: ignore[union-attr]
        assert again.overall.skipped == 1
    back = RunSummary.from_dict(json.loads(json.dumps(s.to_dict())))  # as the store keeps it
    assert back.case("smoke/sim").outcome == "SKIPPED" and back.overall.skipped == 1  # type: ignore[union-attr]


def test_skipped_repeats_do_not_lower_latency_or_mean_cost() -> None:
    """A skipped repeat took 0 ms and cost nothing: counted, it would let a latency or cost gate pass."""
    slow = [rep("a", "PASS", latency_ms=4000.0, cost_usd=0.02, repeat=i) for i in range(2)]
    s = summarize([*slow, *(skip(f"s{i}") for i in range(8))])
    o = s.overall
    assert (o.latency_p50_ms, o.latency_p95_ms, o.latency_samples) == (4000.0, 4000.0, 2)
    assert o.agent_cost_mean_usd == 0.02
    policy = StagePolicy.model_validate({"max_p95_latency_ms": 3000, "max_mean_cost_usd": 0.01})
    checks = {c.name: c for c in decide_gate(s, policy).checks}
    assert not checks["latency.p95"].passed and not checks["cost.mean"].passed


def test_partly_skipped_repeats_do_not_pass_and_errors_still_win() -> None:
    mixed = summarize([rep("a", "PASS", repeat=0), skip("a", 1)])
    assert mixed.cases[0].outcome == "SKIPPED" and mixed.overall.passed == 0
    assert summarize([rep("a", "PASS", repeat=0), skip("a", 1)], case_rule="any").cases[0].outcome == "PASS"
    erred = summarize([rep("a", "ERROR", repeat=0), skip("a", 1)])
    assert erred.cases[0].outcome == "ERROR" and erred.overall.skipped == 0


def test_the_gate_fails_a_run_with_a_skipped_case_whatever_its_thresholds() -> None:
    s = _summary()
    lenient = StagePolicy.model_validate({"min_pass_rate": {"functional": 0.0}})
    decision = decide_gate(s, lenient)
    assert decision.verdict == "FAIL"
    completeness = next(c for c in decision.checks if c.name == "completeness")
    assert not completeness.passed and completeness.hard
    assert completeness.detail.startswith(
        f"1 case(s) were SKIPPED and did not run (smoke/sim: skipped: {WHY}"
    )
    assert completeness.observed == 2 and completeness.threshold == 3
    assert decision.failing_cases == ["smoke/bad"]
    fine = summarize(case("ok", "PP"), planned_cases=1)
    assert decide_gate(fine, lenient).verdict == "PASS"  # the same policy passes a run without one


def test_a_case_that_became_skipped_is_a_regression() -> None:
    before = summarize([*case("ok", "P"), *case("sim", "P")])
    after = summarize([*case("ok", "P"), skip("sim")])
    cmp = compare_runs(before, after)
    assert [c.case_id for c in cmp.regressed] == ["smoke/sim"] and cmp.regressed[0].after_outcome == "SKIPPED"
    assert cmp.regressed[0].reasons == [f"skipped: {WHY}"]


def test_every_report_shows_skipped_cases_with_the_reason() -> None:
    s = _summary()
    decision = decide_gate(s, StagePolicy())
    root = ET.fromstring(render_junit(s, decision))
    sim = root.find(".//testcase[@name='sim']")
    assert sim is not None and sim.find("failure") is None and sim.find("error") is None
    assert WHY in sim.find("skipped").get("message", "")  # type: ignore[union-attr]
    suite = root.find("testsuite[@name='shop functional']")
    assert suite is not None and suite.get("skipped") == "1" and suite.get("failures") == "1"
    text = render_terminal(None, s, decision)
    assert "Skipped cases (1): not run, not counted as passed" in text and WHY[:40] in text
    assert "Failing cases (1)" in text
    html = render_html(s, decision)
    assert "Skipped cases (1)" in html and WHY in html
    md = render_markdown(s, decision)
    assert "**Skipped cases (1)**" in md and WHY in md
    doc = json.loads(render_json([skip("sim")], s, decision))
    assert doc["summary"]["overall"]["skipped"] == 1 and doc["results"][0]["error"] == WHY
