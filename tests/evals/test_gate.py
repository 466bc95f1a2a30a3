"""Gate decisions: PASS / FAIL / MARGINAL for every check kind, ERROR in safety, regressions with and
without repeats, and the `gates:` policy schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from _gate_data import case, cases

from shipyard.config import StagePolicy, load_config
from shipyard.config._gates import GATE_CATEGORIES
from shipyard.errors import ConfigError, NotFoundError
from shipyard.evals import CATEGORIES, GATE_RULES, Check, GateDecision, RunSummary, decide_gate, summarize


def policy(**kw: Any) -> StagePolicy:
    return StagePolicy.model_validate({"suites": ["evals/smoke.yaml"], **kw})


def check(d: GateDecision, name: str) -> Check:
    return next(c for c in d.checks if c.name == name)


def run(results: list[Any], **kw: Any) -> RunSummary:
    return summarize(
        results, run_id=kw.pop("run_id", "cand"), agent="support", version="support@1.1.0+bbb", **kw
    )


GOOD = cases("f", 20) + cases("t", 10, category="tool_usage") + cases("s", 10, category="safety")


def test_everything_within_thresholds_passes_with_numbers() -> None:
    p = policy(
        min_pass_rate={"functional": 0.9, "tool_usage": 0.9},
        safety={"min_pass_rate": 1.0},
        max_p95_latency_ms=500,
        max_mean_cost_usd=0.01,
    )
    d = decide_gate(run(GOOD), p, stage="production")
    assert d.verdict == "PASS" and d.exit_code == 0
    assert [c.name for c in d.checks] == [
        "completeness",
        "pass_rate.functional",
        "pass_rate.tool_usage",
        "safety",
        "latency.p95",
        "cost.mean",
    ]
    assert all(c.passed for c in d.checks)
    lat = d.checks[4]
    assert (lat.observed, lat.threshold, lat.comparator) == (100.0, 500, "<=")
    assert d.reasons[0] == "all 6 checks passed"


def test_pass_rate_far_below_fails_and_says_by_how_much() -> None:
    results = cases("f", 16) + cases("g", 4, "F")
    d = decide_gate(run(results), policy(min_pass_rate={"functional": 0.95}, marginal_margin=0.02))
    assert d.verdict == "FAIL" and d.exit_code == 1
    check = d.checks[1]
    assert check.observed == pytest.approx(0.8) and check.threshold == 0.95 and not check.within_margin
    assert "pass_rate.functional: 0.800, needs >= 0.950 (soft) failed" in d.reasons[0]
    assert "16/20 cases passed" in check.detail
    assert d.failing_cases == [f"smoke/g-{i}" for i in range(4)]


def test_soft_miss_within_margin_is_marginal() -> None:
    results = cases("f", 89) + cases("g", 11, "F")  # 0.89 against 0.90, margin 0.02
    d = decide_gate(run(results), policy(min_pass_rate={"functional": 0.9}, marginal_margin=0.02))
    assert d.verdict == "MARGINAL" and d.exit_code == 3
    assert d.checks[1].within_margin
    assert "needs a recorded approval" in d.reasons[0]
    # the same miss with pass_rate declared hard is a FAIL
    hard = decide_gate(
        run(results),
        policy(min_pass_rate={"functional": 0.9}, marginal_margin=0.02, hard=["pass_rate", "safety"]),
    )
    assert hard.verdict == "FAIL"


def test_marginal_needs_every_failed_check_within_margin() -> None:
    results = cases("f", 89) + cases("g", 11, "F")
    p = policy(min_pass_rate={"functional": 0.9}, marginal_margin=0.02, max_mean_cost_usd=0.0005)
    d = decide_gate(run(results), p)  # cost 0.001 vs 0.0005: far beyond a 2% margin
    assert d.verdict == "FAIL"


def test_wilson_lower_bound_is_stricter_than_the_point_estimate() -> None:
    results = cases("f", 19) + cases("g", 1, "F")  # 0.95 point, Wilson lower 0.764
    assert decide_gate(run(results), policy(min_pass_rate={"functional": 0.9})).verdict == "PASS"
    d = decide_gate(run(results), policy(min_pass_rate={"functional": 0.9}, on="wilson_lower"))
    assert d.verdict == "FAIL"
    assert d.checks[1].observed == pytest.approx(0.7639, abs=1e-4)
    assert "Wilson lower bound" in d.checks[1].detail


def test_error_in_safety_fails_the_hard_gate_even_within_margin() -> None:
    results = cases("f", 10) + cases("s", 99, category="safety") + case("s-judge", "E", category="safety")
    d = decide_gate(run(results), policy(safety={"min_pass_rate": 1.0}, marginal_margin=0.05))
    assert d.verdict == "FAIL"
    safety = next(c for c in d.checks if c.name == "safety")
    assert safety.hard and not safety.passed and safety.observed == pytest.approx(0.99)
    assert "ERROR counts as failure" in safety.detail and "1 case(s) had ERROR repeats" in safety.detail


def test_safety_needs_every_repeat_whatever_the_case_rule() -> None:
    results = cases("s", 9, "PPP", category="safety") + case("s-leak", "PPF", category="safety")
    summary = run(results, case_rule="majority")
    assert summary.categories["safety"].pass_rate == 1.0  # majority rule says all passed...
    d = decide_gate(summary, policy(safety={"min_pass_rate": 1.0}, case_rule="majority"))
    assert d.verdict == "FAIL"  # ...but one in three times the agent leaks: the safety gate fails


def test_errors_excluded_only_where_the_policy_says_and_only_for_soft_checks() -> None:
    results = cases("f", 9) + case("f-err", "E")
    counted = decide_gate(run(results), policy(min_pass_rate={"functional": 0.95}))
    assert counted.verdict == "FAIL" and "1 ERROR case(s) counted as failures" in counted.checks[1].detail
    excluded = decide_gate(run(results), policy(min_pass_rate={"functional": 0.95}, errors="exclude"))
    assert excluded.verdict == "PASS" and excluded.checks[1].observed == 1.0
    hard = decide_gate(
        run(results),
        policy(min_pass_rate={"functional": 0.95}, errors="exclude", hard=["pass_rate", "safety"]),
    )
    assert hard.verdict == "FAIL"


def test_latency_check_fails_marginal_and_skips_replayed() -> None:
    slow = cases("f", 20, latency_ms=1030.0)
    assert decide_gate(run(slow), policy(max_p95_latency_ms=1000)).verdict == "FAIL"
    assert decide_gate(run(slow), policy(max_p95_latency_ms=1000, marginal_margin=0.05)).verdict == "MARGINAL"
    replayed = decide_gate(run(cases("f", 5, replayed=True, latency_ms=9e6)), policy(max_p95_latency_ms=1000))
    assert replayed.verdict == "PASS"
    lat = check(replayed, "latency.p95")
    assert lat.skipped and "replayed latency never counts" in lat.detail
    # a PASS counts the skipped check apart from those that passed, and says why it was skipped
    assert replayed.reasons[0].startswith(
        "2 checks passed, 1 skipped (latency.p95: not measured: every repeat"
    )
    failing_replayed = run(
        cases("f", 5, replayed=True) + cases("g", 1, "F", replayed=True)
    )  # a FAIL: own line
    failed = decide_gate(failing_replayed, policy(max_p95_latency_ms=1000))
    assert failed.verdict == "FAIL" and any(
        r.startswith("latency.p95 skipped: not measured") for r in failed.reasons
    )


def test_cost_check_uses_the_agents_mean_cost_not_the_judges() -> None:
    results = cases("f", 10, cost_usd=0.01, judge_cost_usd=0.5)
    assert decide_gate(run(results), policy(max_mean_cost_usd=0.02)).verdict == "PASS"
    d = decide_gate(run(results), policy(max_mean_cost_usd=0.005))
    assert d.verdict == "FAIL" and check(d, "cost.mean").observed == pytest.approx(0.01)


def test_threshold_on_a_category_that_never_ran_fails() -> None:
    d = decide_gate(run(cases("f", 10)), policy(min_pass_rate={"tool_usage": 0.5}, marginal_margin=1.0))
    assert d.verdict == "FAIL"
    assert "no tool_usage cases ran" in d.checks[1].detail
    d = decide_gate(run(cases("f", 10)), policy(safety={}))
    assert d.verdict == "FAIL" and "no safety cases ran" in check(d, "safety").detail


def test_incomplete_or_empty_run_fails() -> None:
    partial = run(cases("f", 10), planned_cases=12, stopped_reason="budget exhausted")
    d = decide_gate(partial, policy())
    assert d.verdict == "FAIL"
    assert d.checks[0].detail == "the run did not finish: 10 of 12 cases ran (budget exhausted)"
    assert decide_gate(run([]), policy()).verdict == "FAIL"


# failing closed ---------------------------------------------------------------------------------


def test_a_policy_with_no_thresholds_passes_only_when_every_case_passed() -> None:
    bare = policy()  # suites only: no min_pass_rate, no safety, nothing
    assert decide_gate(run(GOOD), bare).verdict == "PASS"
    one_failed = decide_gate(run(cases("f", 19) + case("f-bad", "F")), bare)
    assert one_failed.verdict == "FAIL"
    c = check(one_failed, "pass_rate.functional")
    assert c.hard and not c.passed and c.threshold == 1.0 and "no min_pass_rate names functional" in c.detail
    one_error = decide_gate(
        run(cases("t", 9, category="tool_usage") + case("t-e", "E", category="tool_usage")), bare
    )
    assert (
        one_error.verdict == "FAIL" and "1 ERROR case(s)" in check(one_error, "pass_rate.tool_usage").detail
    )
    # a named threshold covers its category only; the others still need every case
    named = policy(min_pass_rate={"functional": 0.9}, marginal_margin=0.5)
    mixed = (
        cases("f", 19)
        + case("f-bad", "F")
        + cases("t", 4, category="tool_usage")
        + case("t-bad", "F", category="tool_usage")
    )
    d = decide_gate(run(mixed), named)
    assert d.verdict == "FAIL"  # hard: never marginal, whatever the margin
    assert check(d, "pass_rate.functional").passed and not check(d, "pass_rate.tool_usage").passed


def test_the_issue_s_safety_suite_with_two_errors_of_three_fails_a_gate_with_no_thresholds() -> None:
    results = (
        case("s-ok", "P", category="safety")
        + case("s-e1", "E", category="safety")
        + case("s-e2", "E", category="safety")
    )
    d = decide_gate(run(results), policy(), stage="production")
    assert d.verdict == "FAIL" and d.rules == GATE_RULES
    safety = check(d, "safety")
    assert safety.hard and safety.observed == pytest.approx(1 / 3) and safety.threshold == 1.0
    assert "ERROR counts as failure; 2 case(s) had ERROR repeats" in safety.detail
    assert "all 1 checks passed" not in d.reasons


def test_safety_stays_hard_unless_the_policy_writes_why_it_relaxes_it() -> None:
    for bad, said in (
        ({"safety": {"min_pass_rate": 0.9}}, "min_pass_rate 0.9 relaxes the safety check"),
        ({"safety": {"errors": "exclude"}}, "errors: exclude relaxes the safety check"),
        ({"safety": {"min_pass_rate": 0.9, "relaxed": "  "}}, "relaxed must say why"),
        ({"hard": ["regression"]}, "hard leaves out safety"),
        (
            {"min_pass_rate": {"safety": 0.9}},
            "min_pass_rate.safety 0.9 is below the safety check's hard 100%",
        ),
    ):
        with pytest.raises(ValueError, match=said):
            policy(**bad)
    results = cases("s", 19, category="safety") + case("s-e", "E", category="safety")
    relaxed = policy(
        safety={"min_pass_rate": 0.9, "errors": "exclude", "relaxed": "red-team judge is flaky, #77"},
        hard=["regression"],
        marginal_margin=0.05,
    )
    d = decide_gate(run(results), relaxed)
    assert d.verdict == "PASS"
    assert (
        not check(d, "safety").hard
        and "relaxed by the policy: red-team judge is flaky, #77" in check(d, "safety").detail
    )
    assert "the safety check is relaxed by the policy: red-team judge is flaky, #77" in d.reasons


def test_a_run_that_left_out_cases_of_the_stage_s_suites_fails() -> None:
    ran = run(cases("f", 3))  # smoke/f-0..2
    expected = ["smoke/f-0", "smoke/f-1", "smoke/f-2", "smoke/f-3", "safety/s-0"]
    d = decide_gate(ran, policy(), expected_cases=expected)
    assert d.verdict == "FAIL"
    done = check(d, "completeness")
    assert (
        not done.passed
        and "2 case(s) of the stage's suites did not run (safety/s-0, smoke/f-3)" in done.detail
    )
    assert decide_gate(ran, policy(), expected_cases=expected[:3]).verdict == "PASS"


def test_a_stored_run_that_never_finished_fails(tmp_path: Path) -> None:
    from shipyard.evals import load_run_summary
    from shipyard.store import Store

    with Store(f"sqlite:///{tmp_path / 'db.sqlite'}") as store:
        run_id = store.create_eval_run("support", "support@1.1.0+bbb", ["smoke"], "production")
        store.write_eval_results(run_id, cases("f", 3))  # the process died here: status stays running
        summary = load_run_summary(store, run_id)
    d = decide_gate(summary, policy())
    assert d.verdict == "FAIL" and "never finished" in check(d, "completeness").detail


def test_decisions_say_which_rules_made_them_and_old_ones_read_as_rules_1() -> None:
    d = decide_gate(run(GOOD), policy())
    assert d.to_dict()["rules"] == GATE_RULES == 2
    old = d.to_dict()
    del old["rules"]
    assert GateDecision.from_dict(old).rules == 1


# regression -------------------------------------------------------------------------------------


def test_regression_without_repeats_any_newly_failing_case_fails() -> None:
    base = run(cases("f", 10), run_id="base")
    cand = run(cases("f", 9) + case("f-9", "F"))
    d = decide_gate(cand, policy(regression={"baseline": "base"}), baseline=base)
    assert d.verdict == "FAIL" and d.baseline_run_id == "base"
    assert d.regression is not None and not d.regression.paired
    assert [c.case_id for c in d.regression.newly_failing] == ["smoke/f-9"]
    assert any(r.startswith("regressed: smoke/f-9 (functional) 1/1 -> 0/1: contains") for r in d.reasons)
    loose = {"min_pass_rate": {"functional": 0.9}}  # without a threshold every case must pass
    allowed = decide_gate(cand, policy(regression={"allow_new_failures": 1}, **loose), baseline=base)
    assert allowed.verdict == "PASS"


def test_regression_with_repeats_noise_is_not_counted() -> None:
    base = run(cases("f", 40, "PPP"), run_id="base")
    cand = run(cases("f", 38, "PPP") + case("f-38", "PPF") + case("f-39", "PFP"))
    d = decide_gate(cand, policy(regression={}, min_pass_rate={"functional": 0.9}), baseline=base)
    assert d.verdict == "PASS"
    reg = d.regression
    assert reg is not None and reg.paired and (reg.worse, reg.better) == (2, 0)
    assert reg.p_value == pytest.approx(0.25)
    assert reg.counted == [] and len(reg.newly_failing) == 2
    assert any("regressed [noise]: smoke/f-38" in r for r in d.reasons)


def test_regression_with_repeats_real_shift_is_counted() -> None:
    base = run(cases("f", 40, "PPP"), run_id="base")
    cand = run(cases("f", 30, "PPP") + [r for i in range(30, 40) for r in case(f"f-{i}", "PFF")])
    d = decide_gate(cand, policy(regression={"alpha": 0.05}), baseline=base)
    reg = d.regression
    assert reg is not None and reg.p_value is not None and reg.p_value < 0.001
    assert len(reg.counted) == 10 and d.verdict == "FAIL"
    assert "a real change" in next(c for c in d.checks if c.name == "regression").detail


def test_regression_one_case_always_failing_now_is_real_on_its_own() -> None:
    base = run(cases("f", 40, "PPPPP"), run_id="base")
    cand = run(cases("f", 39, "PPPPP") + case("f-39", "FFFFF"))
    d = decide_gate(cand, policy(regression={}), baseline=base)
    reg = d.regression
    assert reg is not None and reg.p_value == pytest.approx(0.5)  # one case cannot move the sign test
    assert reg.case_p_values["smoke/f-39"] < 0.01  # but 5/5 -> 0/5 is no accident
    assert reg.counted == ["smoke/f-39"] and d.verdict == "FAIL"


def test_regression_without_baseline_is_skipped_and_says_so() -> None:
    d = decide_gate(run(cases("f", 3)), policy(regression={"baseline": "production"}))
    assert d.verdict == "PASS"
    check = d.checks[-1]
    assert check.skipped and check.detail == "no baseline yet, no run found for 'production' to compare with"
    # the first release passes, but the hard regression check is not counted as passed
    assert d.reasons == [f"{len(d.checks) - 1} checks passed, 1 skipped (regression: {check.detail})"]
    assert not any("skipped:" in r for r in d.reasons)  # said once, in the summary


def test_decision_round_trips_through_json() -> None:
    base = run(cases("f", 10), run_id="base")
    cand = run(cases("f", 9) + case("f-9", "F"))
    d = decide_gate(
        cand, policy(regression={}, min_pass_rate={"functional": 0.5}), baseline=base, stage="production"
    )
    data = json.loads(json.dumps(d.to_dict()))
    assert data["checks"][0]["within_margin"] is False
    back = GateDecision.from_dict(data)
    assert back.verdict == d.verdict and back.checks == d.checks and back.regression == d.regression


# the `gates:` schema ------------------------------------------------------------------------------

GATES_YAML = """\
gates:
  pre-merge:  {suites: [evals/support/smoke.yaml], min_pass_rate: {functional: 0.9, tool_usage: 0.9}}
  production:
    suites: [evals/support/broad.yaml, evals/support/safety.yaml]
    repeat: 1
    min_pass_rate: {functional: 0.95, tool_usage: 0.95}
    on: wilson_lower
    safety: {min_pass_rate: 1.0}
    max_p95_latency_ms: 5000
    max_mean_cost_usd: 0.02
    regression: {baseline: production, allow_new_failures: 0, alpha: 0.05}
    marginal_margin: 0.02
    hard: [safety, regression]
"""


def test_gates_section_loads(tmp_path: Path) -> None:
    (tmp_path / "shipyard.yaml").write_text(GATES_YAML)
    cfg = load_config(tmp_path / "shipyard.yaml")
    prod = cfg.gates.stage("production")
    assert prod.on == "wilson_lower" and prod.safety is not None and prod.regression is not None
    assert prod.min_pass_rate == {"functional": 0.95, "tool_usage": 0.95}
    assert cfg.gates.stage("pre_merge").min_pass_rate["functional"] == 0.9
    assert list(cfg.gates.stages()) == ["pre-merge", "production"]


@pytest.mark.parametrize(
    ("bad", "good", "expected"),
    [
        ("functional: 0.95, tool_usage", "functinal: 0.95, tool_usage", "unknown category 'functinal'"),
        ("alpha: 0.05", "alpha: 5", "gates.production.regression.alpha"),
        ("on: wilson_lower", "on: wilson", "gates.production.on"),
        ("hard: [safety, regression]", "hard: [safety, speed]", "gates.production.hard.1"),
        ("max_p95_latency_ms: 5000", "max_p95_latency: 5000", "unknown key"),
    ],
)
def test_bad_gate_fields_are_named_with_their_line(
    tmp_path: Path, bad: str, good: str, expected: str
) -> None:
    (tmp_path / "shipyard.yaml").write_text(GATES_YAML.replace(bad, good))
    with pytest.raises(ConfigError) as e:
        load_config(tmp_path / "shipyard.yaml")
    [problem] = e.value.problems
    assert expected in problem and problem.startswith("line ")


def test_unconfigured_or_unknown_stage_says_what_to_do() -> None:
    from shipyard.config import GatesConfig

    gates = GatesConfig.model_validate({"production": {"suites": ["a.yaml"]}})
    with pytest.raises(NotFoundError, match="no gate policy for stage 'pre-merge'") as err:
        gates.stage("pre-merge")
    # the hint is YAML that loads as it is, beside the stages already there
    assert err.value.hint == "add `pre-merge: {suites: [a.yaml]}` under gates: in shipyard.yaml"
    snippet = err.value.hint.split("`")[1]
    both = GatesConfig.model_validate({"production": {"suites": ["a.yaml"]}, **yaml.safe_load(snippet)})
    assert both.stage("pre-merge").suites == ["a.yaml"]
    with pytest.raises(NotFoundError) as none:
        GatesConfig.model_validate({}).stage("production")
    assert (
        none.value.hint == "add `gates: {production: {suites: [evals/<agent>/smoke.yaml]}}` to shipyard.yaml"
    )
    with pytest.raises(NotFoundError, match="unknown gate stage 'staging'"):
        gates.stage("staging")


def test_config_categories_match_the_eval_categories() -> None:
    assert GATE_CATEGORIES == CATEGORIES


def test_decide_recounts_a_summary_under_the_policys_case_rule() -> None:
    summary = run(case("a", "PPF") + case("b", "PPP"))  # summarised with rule "all"
    assert decide_gate(summary, policy(min_pass_rate={"functional": 1.0})).verdict == "FAIL"
    assert (
        decide_gate(summary, policy(min_pass_rate={"functional": 1.0}, case_rule="majority")).verdict
        == "PASS"
    )


def test_the_version_in_production_is_the_deployed_stable_one(tmp_path: Path) -> None:
    from shipyard.evals import production_version
    from shipyard.store import Store

    with Store(f"sqlite:///{tmp_path / 'p.db'}") as store:
        assert production_version(store, "support") is None
        for version, verdict in (("support@1.0.0+aaaaaaa", "PASS"), ("support@1.1.0+bbbbbbb", "FAIL")):
            run = store.create_eval_run("support", version, ["broad.yaml"], stage="production")
            store.finish_eval_run(run, "finished", {}, {"verdict": verdict})
        # nothing deployed yet: the newest version whose production gate passed
        assert production_version(store, "support") == "support@1.0.0+aaaaaaa"
        store.save_deployment("support", {"stable_version": "support@1.2.0+ccccccc"}, expected_revision=None)
        assert production_version(store, "support") == "support@1.2.0+ccccccc"


def test_production_baseline_falls_back_when_the_deployed_version_has_no_run(tmp_path: Path) -> None:
    from shipyard.evals import resolve_baseline
    from shipyard.store import Store

    with Store(f"sqlite:///{tmp_path / 'p.db'}") as store:
        assert resolve_baseline(store, "support", "production", stage="production") is None  # first release
        run = store.create_eval_run("support", "support@1.0.0+aaaaaaa", ["broad.yaml"], stage="production")
        store.finish_eval_run(run, "finished", {}, {"verdict": "PASS"})
        # a canary promoted 1.2 without a production gate run of its own: compare with 1.0's run
        store.save_deployment("support", {"stable_version": "support@1.2.0+ccccccc"}, expected_revision=None)
        baseline = resolve_baseline(store, "support", "production", stage="production")
        assert baseline is not None and baseline.run_id == run
