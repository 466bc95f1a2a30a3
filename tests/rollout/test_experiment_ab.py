"""A/B experiment reports: verdicts, sample-size advice, SRM, and the sequential test over looks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from shipyard.rollout import (
    A_BETTER,
    B_BETTER,
    NO_DIFFERENCE,
    ArmSample,
    ExperimentMetric,
    analyze_experiment,
    sample_size,
    two_proportion_test,
)


def arm(
    rng: np.random.Generator,
    n: int,
    *,
    completion: float = 0.8,
    thumbs_up: float = 0.7,
    score: float = 4.0,
    cost: float = 0.01,
    latency_ms: float = 1500.0,
    units: int | None = None,
    name: str = "",
) -> ArmSample:
    rated = int(rng.binomial(n, 0.4))
    up = int(rng.binomial(rated, thumbs_up))
    return ArmSample(
        n=n,
        completed=int(rng.binomial(n, completion)),
        latency_ms=rng.lognormal(np.log(latency_ms), 0.4, n),
        cost_usd=rng.lognormal(np.log(cost), 0.3, n),
        thumbs_up=up,
        thumbs_down=rated - up,
        scores=np.clip(rng.normal(score, 1.0, rated).round(), 1, 5),
        units=units,
        name=name,
    )


def test_b_better_on_completion_and_cost() -> None:
    rng = np.random.default_rng(1)
    report = analyze_experiment(
        arm(rng, 3000, completion=0.80, cost=0.012, name="v1"),
        arm(rng, 3000, completion=0.86, cost=0.010, name="v2"),
    )
    assert report.verdict == B_BETTER and report.primary == "task_completion"
    completion = report.metric("task_completion")
    assert completion.verdict == B_BETTER
    assert completion.effect is not None and 0.03 < completion.effect < 0.09
    assert completion.sequential is not None and completion.sequential.p_value < 0.05
    assert completion.sequential.confidence_sequence[0] > 0
    assert completion.ci[0] is not None and completion.ci[0] > 0
    assert report.metric("cost_per_interaction").verdict == B_BETTER  # cheaper is better
    assert report.metric("cost_per_interaction").mann_whitney_p is not None
    assert report.srm is not None and not report.srm.flagged


def test_a_better_when_b_regresses() -> None:
    rng = np.random.default_rng(2)
    report = analyze_experiment(arm(rng, 3000, latency_ms=1500), arm(rng, 3000, latency_ms=1800))
    assert report.metric("latency_ms").verdict == A_BETTER


def test_no_difference_says_how_many_more_are_needed() -> None:
    rng = np.random.default_rng(3)
    report = analyze_experiment(arm(rng, 300), arm(rng, 300))
    m = report.metric("task_completion")
    assert m.verdict == NO_DIFFERENCE == report.verdict
    assert m.needed_per_arm is not None and m.more_per_arm == m.needed_per_arm - 300
    assert m.a is not None and m.needed_per_arm == sample_size(m.a, 0.02)
    assert m.note == f"underpowered: need {m.more_per_arm} more per arm to detect a change of 0.02"


def test_fixed_horizon_uses_the_two_proportion_test() -> None:
    a, b = ArmSample(n=1000, completed=800), ArmSample(n=1000, completed=835)
    metric = ExperimentMetric("task_completion", "proportion", True, 0.02)
    fixed = analyze_experiment(a, b, [metric], decide_on="fixed")
    ref = two_proportion_test(800, 1000, 835, 1000)
    m = fixed.metric("task_completion")
    assert m.p_value == pytest.approx(ref.p_value) and m.test == "z"
    assert m.verdict == B_BETTER  # p = 0.047 on the fixed-horizon test...
    seq = analyze_experiment(a, b, [metric])
    assert seq.metric("task_completion").verdict == NO_DIFFERENCE  # ...not yet on the always-valid one
    assert any("planned sample size" in w for w in fixed.warnings)


def test_sample_ratio_mismatch_breaks_the_verdict() -> None:
    rng = np.random.default_rng(4)
    report = analyze_experiment(arm(rng, 700), arm(rng, 300, completion=0.95))
    assert report.srm is not None and report.srm.flagged
    assert report.verdict.startswith("split is broken")
    assert "sample ratio mismatch" in report.warnings[0]
    assert report.metric("task_completion").verdict == B_BETTER  # the metric's own view stays visible


def test_metrics_without_data() -> None:
    rng = np.random.default_rng(5)
    a = arm(rng, 500)
    b = ArmSample(**{**arm(rng, 500).__dict__, "scores": np.array([]), "thumbs_up": 3, "thumbs_down": 1})
    report = analyze_experiment(a, b)
    assert report.metric("satisfaction_score").verdict == "not enough data"
    assert "need 10 per arm" in report.metric("thumbs_up_rate").note


def test_report_serialises_and_renders() -> None:
    rng = np.random.default_rng(6)
    report = analyze_experiment(arm(rng, 800, name="v1"), arm(rng, 800, completion=0.9, name="v2"))
    d = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert d["verdict"] == report.verdict and len(d["metrics"]) == 5
    assert d["metrics"][0]["sequential"]["confidence_sequence"][0] is not None
    md = report.render_markdown()
    assert md.startswith("# Experiment report: v1 (A) vs v2 (B)")
    assert f"**Verdict** (primary metric `task_completion`): {report.verdict}" in md
    assert md.count("\n| ") == 2 + 5  # header, rule, one row per metric
    assert "| task_completion | 0.8" in md


def test_previous_look_carries_the_running_minimum() -> None:
    metric = [ExperimentMetric("task_completion", "proportion", True, 0.02)]
    first = analyze_experiment(ArmSample(n=2000, completed=1600), ArmSample(n=2000, completed=1700), metric)
    later = analyze_experiment(
        ArmSample(n=4000, completed=3200),
        ArmSample(n=4000, completed=3240),
        metric,
        previous=first.to_dict(),
    )
    p1 = first.metric("task_completion").sequential
    p2 = later.metric("task_completion").sequential
    assert p1 is not None and p2 is not None
    assert p2.p_value == p1.p_value < 0.05  # once crossed, stays crossed
    assert p2.confidence_sequence[0] >= p1.confidence_sequence[0]
    assert later.metric("task_completion").verdict == B_BETTER


def test_always_valid_under_repeated_looks_through_the_report() -> None:
    rng = np.random.default_rng(99)
    metric = [ExperimentMetric("task_completion", "proportion", True, 0.03)]
    looks = range(100, 1501, 100)
    sims, ever = 150, 0
    for _ in range(sims):
        a, b = rng.random(1500) < 0.7, rng.random(1500) < 0.7
        previous = None
        for n in looks:
            report = analyze_experiment(
                ArmSample(n=n, completed=int(a[:n].sum())),
                ArmSample(n=n, completed=int(b[:n].sum())),
                metric,
                previous=previous,
            )
            previous = report.to_dict()
        ever += report.verdict != NO_DIFFERENCE  # the running minimum: "ever crossed"
    assert ever / sims <= 0.05 + 0.03


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="mde"):
        ExperimentMetric("x", "proportion", True, 0.0)
    with pytest.raises(ValueError, match="primary"):
        analyze_experiment(ArmSample(n=10), ArmSample(n=10), primary="nope")
    with pytest.raises(ValueError, match="alpha"):
        analyze_experiment(ArmSample(n=10), ArmSample(n=10), alpha=0)
