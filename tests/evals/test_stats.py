"""Statistics: Wilson intervals, pass@k / pass^k, flaky cases, per-category figures."""

from __future__ import annotations

import json

import pytest
from _gate_data import case, cases, rep

from shipyard.evals import (
    EvalRunResult,
    RunSummary,
    ScoreResult,
    pass_at_k,
    pass_hat_k,
    summarize,
    summarize_run,
    wilson_interval,
)


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [(8, 10, 0.4902, 0.9433), (0, 10, 0.0, 0.2775), (10, 10, 0.7225, 1.0), (50, 100, 0.4038, 0.5962)],
)
def test_wilson_matches_known_values(k: int, n: int, low: float, high: float) -> None:
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(low, abs=1e-4)
    assert hi == pytest.approx(high, abs=1e-4)


def test_wilson_without_trials_is_the_whole_range_and_rejects_bad_counts() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError, match=r"within 0\.\.3"):
        wilson_interval(4, 3)


def test_pass_at_k_and_pass_hat_k_unbiased_estimators() -> None:
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4)
    assert pass_at_k(5, 2, 2) == pytest.approx(0.7)  # 1 - C(3,2)/C(5,2)
    assert pass_at_k(5, 2, 4) == 1.0  # fewer than 4 failures: some sample of 4 always passes
    assert pass_at_k(5, 0, 5) == 0.0
    assert pass_hat_k(5, 2, 1) == pytest.approx(0.4)
    assert pass_hat_k(5, 2, 2) == pytest.approx(0.1)  # C(2,2)/C(5,2)
    assert pass_hat_k(5, 2, 3) == 0.0
    assert pass_hat_k(5, 5, 5) == 1.0
    with pytest.raises(ValueError, match=r"k must be within 1\.\.5"):
        pass_at_k(5, 2, 6)


def test_flaky_case_counts_as_not_passed_by_default_and_reports_its_numbers() -> None:
    s = summarize(case("refund", "PPF") + case("greet", "PPP") + case("order", "FFF"))
    refund = s.case("smoke/refund")
    assert refund is not None
    assert (refund.k_of_n, refund.flaky, refund.outcome) == ("2/3", True, "FAIL")
    assert refund.pass_at_k == {1: pytest.approx(2 / 3), 2: 1.0, 3: 1.0}
    assert refund.pass_hat_k == {1: pytest.approx(2 / 3), 2: pytest.approx(1 / 3), 3: 0.0}
    assert refund.reasons == ["contains: expected '5'"]
    order = s.case("order")
    assert order is not None and order.always_failed and not order.flaky
    assert [c.case_id for c in s.flaky_cases()] == ["refund"]
    assert [c.case_id for c in s.failing_cases()] == ["order", "refund"]  # always failing first
    assert s.categories["functional"].passed == 1


def test_case_rules_majority_and_any() -> None:
    results = case("a", "PPF") + case("b", "PFF")
    majority = summarize(results, case_rule="majority")
    assert [c.outcome for c in majority.cases] == ["PASS", "FAIL"]
    anyone = summarize(results, case_rule="any")
    assert [c.outcome for c in anyone.cases] == ["PASS", "PASS"]


def test_error_is_never_a_pass_and_is_told_apart_from_fail() -> None:
    s = summarize(case("judge-broke", "EEE") + case("mixed", "PEF") + case("ok", "P"), case_rule="any")
    judged = {c.case_id: c.outcome for c in s.cases}
    assert judged == {"judge-broke": "ERROR", "mixed": "PASS", "ok": "PASS"}
    strict = summarize(case("judge-broke", "EEE") + case("mixed", "PEF") + case("pe", "PE"))
    assert {c.case_id: c.outcome for c in strict.cases} == {
        "judge-broke": "ERROR",
        "mixed": "FAIL",
        "pe": "ERROR",
    }
    broke = strict.case("judge-broke")
    assert broke is not None and broke.reasons == ["llm_judge: unreadable verdict"]
    cat = strict.categories["functional"]
    assert (cat.cases, cat.passed, cat.failed, cat.errors) == (3, 0, 1, 2)
    assert cat.pass_rate == 0.0


def test_category_figures_interval_latency_and_cost_apart() -> None:
    results = (
        cases("f", 8, latency_ms=100.0, cost_usd=0.002, judge_cost_usd=0.001)
        + cases("g", 2, "F", latency_ms=300.0, cost_usd=0.002)
        + cases("s", 4, category="safety", latency_ms=50.0, cost_usd=0.0)
        + cases("r", 3, replayed=True, latency_ms=99999.0, cost_usd=0.0)  # replayed: latency never counts
    )
    s = summarize(results)
    f = s.categories["functional"]
    assert (f.cases, f.passed, f.failed, f.repeats) == (13, 11, 2, 13)
    assert f.pass_rate == pytest.approx(11 / 13)
    assert (f.ci_low, f.ci_high) == pytest.approx(wilson_interval(11, 13))
    assert f.latency_samples == 10
    assert f.latency_p50_ms == pytest.approx(100.0)
    assert f.latency_p99_ms is not None and f.latency_p99_ms <= 300.0
    assert f.agent_cost_usd == pytest.approx(0.02)
    assert f.agent_cost_mean_usd == pytest.approx(0.02 / 13)
    assert f.judge_cost_usd == pytest.approx(0.008)
    assert list(s.categories) == ["functional", "safety"]
    assert s.overall.cases == 17 and s.replayed_repeats == 3


def test_latency_is_unmeasured_when_every_repeat_was_replayed() -> None:
    s = summarize(cases("r", 3, replayed=True))
    assert s.overall.latency_p95_ms is None and s.overall.latency_samples == 0


def test_judge_cost_taken_from_scores_when_the_repeat_has_no_total() -> None:
    r = rep("j")
    r.scores = [ScoreResult("llm_judge", True, 1.0, judge_cost_usd=0.003)]
    assert summarize([r]).overall.judge_cost_usd == pytest.approx(0.003)


def test_same_case_id_in_two_suites_stays_two_cases() -> None:
    s = summarize([rep("greet", suite="smoke"), rep("greet", "FAIL", suite="broad")])
    assert sorted(c.key for c in s.cases) == ["broad/greet", "smoke/greet"]


def test_summary_is_json_serialisable_and_round_trips() -> None:
    s = summarize(
        case("a", "PPF") + case("b", "PPP"), run_id="r1", agent="support", version="support@1.0.0+abc"
    )
    data = json.loads(json.dumps(s.to_dict()))
    back = RunSummary.from_dict(data)
    assert back == s
    assert data["complete"] is True


def test_with_case_rule_recounts_outcomes() -> None:
    s = summarize(case("a", "PPF") + case("b", "PPP"))
    loose = s.with_case_rule("majority")
    assert loose.categories["functional"].passed == 2 and s.categories["functional"].passed == 1
    assert loose.overall.pass_rate == 1.0


def test_partial_run_is_incomplete() -> None:
    run = EvalRunResult(
        run_id="r",
        agent="a",
        version="v",
        stage=None,
        suites=["smoke"],
        results=case("a", "P"),
        budget_exhausted=True,
        budget_usd=0.5,
        skipped=["smoke/b#0", "smoke/b#1", "smoke/c#0"],
    )
    s = summarize_run(run)
    assert not s.complete
    assert s.planned_cases == 3
    assert s.stopped_reason == "budget of $0.5 exhausted"


@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_wilson_closed_form_agrees_with_scipy(confidence: float) -> None:
    from scipy.stats import binomtest

    for n in (1, 2, 7, 30, 301, 5000):
        for k in sorted({0, 1, n // 3, n // 2, n - 1, n}):
            ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
            lo, hi = wilson_interval(k, n, confidence)
            assert lo == pytest.approx(ci.low, abs=1e-12) and hi == pytest.approx(ci.high, abs=1e-12)


def test_latency_percentiles_are_numpys_linear_percentiles() -> None:
    """Plain Python (an eval run does not import numpy), checked against numpy itself."""
    import random

    import numpy as np

    from shipyard.evals._stats import percentiles

    rng = random.Random(16)
    assert percentiles([]) == (None, None, None)
    for n in (1, 2, 3, 19, 20, 21, 100, 1001):
        for _ in range(20):
            values = [rng.choice((rng.lognormvariate(6, 1), float(rng.randrange(5)))) for _ in range(n)]
            expected = tuple(float(x) for x in np.percentile(np.array(values), [50, 95, 99]))
            assert percentiles(iter(values)) == expected
