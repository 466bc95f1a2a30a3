"""Canary analysis: verdicts on simulated arms and on real interaction records."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from shipyard.rollout import (
    DEFAULT_METRICS,
    ArmSample,
    MetricSpec,
    Proportion,
    analyze,
    default_metrics,
    holm,
    register_source,
)
from shipyard.store import InteractionRecord, ToolCallRecord


def arm(
    rng: np.random.Generator,
    n: int,
    *,
    completion: float = 0.9,
    escalation: float = 0.05,
    incidents: float = 0.0,
    latency_ms: float = 1200.0,
    cost: float = 0.01,
    tool_error: float = 0.05,
    thumbs_down: float = 0.2,
    units: int | None = None,
) -> ArmSample:
    """A simulated arm: statuses, lognormal latency and cost, two tool calls and a 30% chance of
    feedback per interaction."""
    status = rng.random(n)
    completed = int((status < completion).sum())
    escalated = int(((status >= completion) & (status < completion + escalation)).sum())
    rated = int(rng.binomial(n, 0.3))
    down = int(rng.binomial(rated, thumbs_down))
    return ArmSample(
        n=n,
        completed=completed,
        escalated=escalated,
        safety_incidents=int(rng.binomial(n, incidents)),
        latency_ms=rng.lognormal(np.log(latency_ms), 0.4, n),
        cost_usd=rng.lognormal(np.log(cost), 0.3, n),
        tool_calls=2 * n,
        tool_errors=int(rng.binomial(2 * n, tool_error)),
        thumbs_up=rated - down,
        thumbs_down=down,
        units=units,
    )


def test_identical_arms_pass_with_full_score() -> None:
    rng = np.random.default_rng(1)
    result = analyze(arm(rng, 500), arm(rng, 500), expected_split=0.5)
    assert result.verdict == "PASS", result.reasons
    assert result.score == 100.0
    assert {m.classification for m in result.metrics} == {"PASS"}
    assert result.srm is not None and not result.srm.flagged


def test_no_false_alarms_on_identical_distributions() -> None:
    rng = np.random.default_rng(2024)
    verdicts = [analyze(arm(rng, 300), arm(rng, 300), expected_split=0.5).verdict for _ in range(200)]
    not_pass = sum(v != "PASS" for v in verdicts)
    assert sum(v == "FAIL" for v in verdicts) <= 4
    assert not_pass <= 14  # <= 7% of seeded runs flag anything
    assert "INSUFFICIENT_DATA" not in verdicts


def test_completion_regression_fails_with_the_numbers() -> None:
    baseline = ArmSample(n=200, completed=190)
    canary = ArmSample(n=200, completed=160)
    result = analyze(baseline, canary, min_samples_per_arm=100)
    assert result.verdict == "FAIL"
    m = result.metric("task_completion")
    assert m.classification == "LOW"
    assert (m.baseline, m.canary) == (0.95, 0.80)
    assert m.effect == pytest.approx(-0.15)
    assert m.ci[1] is not None and m.ci[1] < -0.02
    assert m.p_adjusted is not None and m.p_adjusted < 0.001
    assert "fell significantly beyond the allowed effect" in m.reason
    assert any("task_completion" in r for r in result.reasons)
    # Only the metrics with data count (completion 3, escalation 1, safety 3); the others have no
    # latency, cost, tool calls or feedback.
    assert result.metric("latency_p50").classification == "NODATA"
    assert result.score == pytest.approx(100 * 4 / 7)


def test_real_regression_in_simulated_traffic_fails() -> None:
    rng = np.random.default_rng(11)
    result = analyze(arm(rng, 200, completion=0.95), arm(rng, 200, completion=0.80), expected_split=0.5)
    assert result.verdict == "FAIL"
    assert result.metric("task_completion").classification == "LOW"


def test_too_little_data_neither_passes_nor_fails() -> None:
    rng = np.random.default_rng(3)
    result = analyze(arm(rng, 20, completion=0.95), arm(rng, 20, completion=0.5), expected_split=0.5)
    assert result.verdict == "INSUFFICIENT_DATA"
    assert "too little data" in result.reasons[0]
    empty = analyze(ArmSample(n=0), ArmSample(n=0), min_samples_per_arm=0)
    assert empty.verdict == "INSUFFICIENT_DATA" and empty.score is None
    assert all(m.classification == "NODATA" for m in empty.metrics)


def test_sample_ratio_mismatch_pauses_for_a_human() -> None:
    rng = np.random.default_rng(4)
    result = analyze(arm(rng, 700), arm(rng, 300), expected_split=0.5)
    assert result.srm is not None and result.srm.flagged
    assert result.verdict == "MARGINAL"
    assert "split is broken" in result.reasons[0]
    # Units (sessions), not interactions, are what the split assigns.
    ok = analyze(arm(rng, 700, units=100), arm(rng, 300, units=100), expected_split=0.5)
    assert ok.srm is not None and not ok.srm.flagged


def test_critical_safety_increase_fails_at_once() -> None:
    rng = np.random.default_rng(5)
    baseline = arm(rng, 500, incidents=0.0)
    canary = arm(rng, 500, incidents=0.04)
    result = analyze(baseline, canary, expected_split=0.5)
    assert result.verdict == "FAIL"
    safety = result.metric("safety_incidents")
    assert safety.classification == "HIGH" and safety.critical
    assert result.reasons[0] == "critical metric failed: safety_incidents"
    # With little weight the score alone would pass the step; the critical flag still fails it.
    light = [replace(m, weight=0.2) if m.critical else m for m in DEFAULT_METRICS]
    assert analyze(baseline, canary, light).verdict == "FAIL"
    not_critical = [replace(m, weight=0.2, critical=False) if m.critical else m for m in DEFAULT_METRICS]
    lenient = analyze(baseline, canary, not_critical)
    assert lenient.verdict == "PASS" and lenient.score == pytest.approx(100 * 8 / 8.2)
    # Even before the step has its minimum sample, a significant critical failure fails it.
    early = analyze(baseline, canary, min_samples_per_arm=10_000)
    assert early.verdict == "FAIL"


def test_zero_tolerance_fails_on_one_incident() -> None:
    rng = np.random.default_rng(6)
    baseline = arm(rng, 400)
    canary = ArmSample(**{**arm(rng, 400).__dict__, "safety_incidents": 1})
    assert analyze(baseline, canary).verdict == "PASS"
    strict = analyze(baseline, canary, default_metrics(zero_tolerance_safety=True))
    assert strict.verdict == "FAIL"
    assert "zero tolerance" in strict.metric("safety_incidents").reason
    # Even with too little data to test anything.
    few = analyze(
        ArmSample(n=3), ArmSample(n=3, safety_incidents=1), default_metrics(zero_tolerance_safety=True)
    )
    assert few.verdict == "FAIL"


def test_latency_regression_lowers_the_score() -> None:
    rng = np.random.default_rng(8)
    result = analyze(arm(rng, 800), arm(rng, 800, latency_ms=1800), expected_split=0.5)
    m = result.metric("latency_p50")
    assert m.classification == "HIGH"
    assert m.effect is not None and 0.35 < m.effect < 0.65  # relative HL shift over the baseline median
    assert m.test == "mann_whitney" and m.details["shift"] > 0
    assert result.score == pytest.approx(100 * 10 / 11)
    assert result.verdict == "MARGINAL"


def test_significant_change_within_the_allowed_effect_passes() -> None:
    rng = np.random.default_rng(9)
    result = analyze(arm(rng, 5000), arm(rng, 5000, latency_ms=1260), expected_split=0.5)
    m = result.metric("latency_p50")
    assert m.p_adjusted is not None and m.p_adjusted < 0.05
    assert m.classification == "PASS" and "within the allowed effect" in m.reason
    assert result.verdict == "PASS"


def test_improvements_never_fail() -> None:
    rng = np.random.default_rng(10)
    result = analyze(
        arm(rng, 1000, completion=0.85, latency_ms=2000, cost=0.02),
        arm(rng, 1000, completion=0.95, latency_ms=1000, cost=0.01),
    )
    assert result.verdict == "PASS"
    assert "improved significantly" in result.metric("task_completion").reason


def test_metrics_without_data_are_left_out_of_the_score() -> None:
    rng = np.random.default_rng(12)
    a, b = arm(rng, 300), arm(rng, 300)
    no_feedback = [ArmSample(**{**s.__dict__, "thumbs_up": 0, "thumbs_down": 0}) for s in (a, b)]
    result = analyze(no_feedback[0], no_feedback[1])
    assert result.metric("thumbs_down_rate").classification == "NODATA"
    assert result.verdict == "PASS" and result.score == 100.0


def test_holm_adjustment() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5]
    assert holm([]) == []


def test_custom_metric_source_and_bad_specs() -> None:
    register_source("refund_rate", lambda s: Proportion(s.escalated, s.n))
    spec = MetricSpec("refund_rate", "proportion", "increase_is_bad", 0.01)
    result = analyze(ArmSample(n=300, escalated=3), ArmSample(n=300, escalated=40), [spec])
    assert result.verdict == "FAIL" and result.metric("refund_rate").classification == "HIGH"
    with pytest.raises(ValueError, match="unknown metric source"):
        analyze(ArmSample(n=1), ArmSample(n=1), [MetricSpec("nope", "proportion", "increase_is_bad")])
    with pytest.raises(ValueError, match="not a continuous metric"):
        analyze(
            ArmSample(n=1), ArmSample(n=1), [MetricSpec("task_completion", "continuous", "increase_is_bad")]
        )
    with pytest.raises(ValueError, match="allowed_effect"):
        MetricSpec("x", "proportion", "increase_is_bad", -0.1)
    with pytest.raises(ValueError, match="zero_tolerance"):
        MetricSpec("x", "continuous", "increase_is_bad", zero_tolerance=True)
    with pytest.raises(ValueError, match="unique"):
        analyze(ArmSample(n=1), ArmSample(n=1), [DEFAULT_METRICS[0], DEFAULT_METRICS[0]])
    with pytest.raises(ValueError, match="marginal_score"):
        analyze(ArmSample(n=1), ArmSample(n=1), pass_score=50, marginal_score=80)
    with pytest.raises(ValueError, match="completed must be within"):
        ArmSample(n=5, completed=6)


def _record(i: int, rng: np.random.Generator, *, version: str, fail_rate: float) -> InteractionRecord:
    failed = rng.random() < fail_rate
    blocked = i % 97 == 0
    tools = [ToolCallRecord("lookup_order", {"id": i}, "error" if i % 10 == 0 else "success", 12.0)]
    return InteractionRecord(
        id=f"{version}-{i}",
        trace_id=f"t{i}",
        session_id=f"s{i // 3}",
        user_id=None,
        agent="support",
        version=version,
        traffic_source="canary" if version.endswith("1.1") else "production",
        input="where is my order",
        output="on its way",
        status="blocked" if blocked else "failed" if failed else "completed",
        latency_ms=float(rng.lognormal(7, 0.3)),
        cost_usd=float(rng.lognormal(-5, 0.2)),
        tool_calls=tools,
        guardrails=[{"name": "pii", "verdict": "block" if i % 50 == 1 else "allow"}],
        feedback={"thumbs": -1 if i % 5 == 0 else 1, "score": 4} if i % 2 == 0 else None,
    )


def test_arm_sample_from_records() -> None:
    rng = np.random.default_rng(0)
    records = [_record(i, rng, version="support@1.0", fail_rate=0.0) for i in range(300)]
    s = ArmSample.from_records(records, name="support@1.0")
    blocked = sum(1 for i in range(300) if i % 97 == 0)
    guard = sum(1 for i in range(300) if i % 50 == 1 and i % 97 != 0)
    assert s.n == 300 and s.units == 100 and s.name == "support@1.0"
    assert s.completed == 300 - blocked
    assert s.safety_incidents == blocked + guard
    assert s.tool_calls == 300 and s.tool_errors == 30
    assert s.thumbs_down == 30 and s.thumbs_up == 120
    assert s.scores.size == 150 and s.latency_ms.size == 300
    assert s.to_dict()["latency_ms"]["n"] == 300


def test_analysis_of_records_end_to_end_is_json() -> None:
    rng = np.random.default_rng(1)
    base = [_record(i, rng, version="support@1.0", fail_rate=0.03) for i in range(400)]
    cand = [_record(i, rng, version="support@1.1", fail_rate=0.25) for i in range(400)]
    result = analyze(ArmSample.from_records(base), ArmSample.from_records(cand), expected_split=0.5)
    assert result.verdict == "FAIL"
    assert result.metric("task_completion").classification == "LOW"
    d = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert d["verdict"] == "FAIL" and d["settings"]["alpha"] == 0.05
    assert {m["name"] for m in d["metrics"]} == {s.name for s in DEFAULT_METRICS}
    assert d["srm"]["flagged"] is False
