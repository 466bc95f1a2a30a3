"""Canary analysis with sessions as the unit: correlated turns of one session do not make false
alarms, real differences are still found, and one-turn sessions give the interaction-level numbers."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from records import interaction

from shipyard.rollout import ArmSample, analyze, mann_whitney, rate_test, two_proportion_test
from shipyard.rollout._stats import rank_design_effect, ratio_design_effect
from shipyard.store import InteractionRecord, ToolCallRecord


def simulated_sessions(
    rng: np.random.Generator, k: int, *, cost_factor: float = 1.0, incidents: float = 0.0
) -> list[ArmSample]:
    """`k` simulated conversations of 1-8 turns each, whose turns are strongly alike: a
    conversation's kind sets the level of latency and cost (which grow with the history), its
    customer the chance of completion (an unsolved case stays unsolved), and some conversations hit
    a broken tool over and over. Drawn for all `k` at once (numpy), then split into sessions."""
    if k == 0:
        return []
    turns = rng.integers(1, 9, k)
    kind = rng.normal(0, 0.6, k)
    p_done = 1 / (1 + np.exp(-(2.0 + 2.5 * rng.normal(size=k))))
    completed = rng.binomial(turns, p_done)
    tool_calls = rng.poisson(1.5 * turns)
    rated = rng.binomial(turns, 0.3)
    down = rng.binomial(rated, 1 - p_done)
    escalated = rng.binomial(turns - completed, 0.7)
    safety = rng.binomial(turns, incidents)
    tool_errors = rng.binomial(tool_calls, np.where(rng.random(k) < 0.8, 0.05, 0.5))
    # one value per turn: the session it belongs to, its place in that session
    owner = np.repeat(np.arange(k), turns)
    turn = np.arange(owner.size) - np.repeat(np.cumsum(turns) - turns, turns)
    latency = np.exp(6.0 + kind[owner] + 0.15 * turn + rng.normal(0, 0.1, owner.size))
    cost = cost_factor * 1e-4 * np.exp(kind[owner]) * (1 + turn) * np.exp(rng.normal(0, 0.05, owner.size))
    ends = np.cumsum(turns)[:-1]
    return [
        ArmSample(
            n=n,
            completed=c,
            escalated=e,
            safety_incidents=i,
            latency_ms=lat,
            cost_usd=usd,
            tool_calls=t,
            tool_errors=te,
            thumbs_up=r - d,
            thumbs_down=d,
            units=1,
        )
        for n, c, e, i, lat, usd, t, te, r, d in zip(
            turns.tolist(),
            completed.tolist(),
            escalated.tolist(),
            safety.tolist(),
            np.split(latency, ends),
            np.split(cost, ends),
            tool_calls.tolist(),
            tool_errors.tolist(),
            rated.tolist(),
            down.tolist(),
            strict=True,
        )
    ]


def pooled(parts: list[ArmSample], *, sessions: bool = True) -> ArmSample:
    """The arm the sessions make, with them (the new analysis) or as bare counts (interactions
    independent, the old one)."""
    arm = ArmSample.from_sessions(parts)
    return arm if sessions else replace(arm, sessions=())


def simulated_canary(
    rng: np.random.Generator, *, sessions: int = 300, share: float = 0.1, cost_factor: float = 1.0
) -> tuple[list[ArmSample], list[ArmSample]]:
    k = int(rng.binomial(sessions, share))
    return simulated_sessions(rng, sessions - k), simulated_sessions(rng, k, cost_factor=cost_factor)


def test_correlated_sessions_without_a_difference_rarely_alarm() -> None:
    """100 seeded canaries of one version against itself: the session-aware analysis flags a metric
    (significant after Holm) in few of them; treating turns as independent flags far more."""
    rng = np.random.default_rng(7)
    flagged = {"sessions": 0, "interactions": 0}
    runs = 100
    for _ in range(runs):
        base, can = simulated_canary(rng)
        for mode, with_sessions in (("sessions", True), ("interactions", False)):
            result = analyze(pooled(base, sessions=with_sessions), pooled(can, sessions=with_sessions),
                             min_samples_per_arm=20)  # fmt: skip
            flagged[mode] += any(m.p_adjusted is not None and m.p_adjusted < 0.05 for m in result.metrics)
    assert flagged["sessions"] <= 0.08 * runs, flagged  # family-wise alpha 0.05, a margin for 100 runs
    assert flagged["interactions"] >= 0.15 * runs, flagged


def test_each_metric_alone_keeps_its_level() -> None:
    """Without the Holm adjustment too, each metric's test rejects a true null near alpha."""
    rng = np.random.default_rng(11)
    runs = 100
    rejected: dict[str, int] = {}
    for _ in range(runs):
        base, can = simulated_canary(rng, sessions=400)
        for m in analyze(pooled(base), pooled(can), min_samples_per_arm=20, correction="none").metrics:
            if m.p_value is not None:
                rejected[m.name] = rejected.get(m.name, 0) + (m.p_value < 0.05)
    assert rejected and max(rejected.values()) <= 0.1 * runs, rejected


def test_a_real_cost_increase_is_still_found() -> None:
    rng = np.random.default_rng(3)
    runs = 20
    caught = 0
    for _ in range(runs):
        base, can = simulated_canary(rng, sessions=500, share=0.25, cost_factor=1.5)
        result = analyze(pooled(base), pooled(can), min_samples_per_arm=20)
        cost = result.metric("cost_per_interaction")
        caught += cost.classification == "HIGH"
        assert cost.details["design_effect"] >= 1
    assert caught >= 0.8 * runs


def _record(
    i: int, rng: np.random.Generator, *, session: str, version: str = "support@1.0"
) -> InteractionRecord:
    status = "blocked" if i % 41 == 0 else "failed" if rng.random() < 0.1 else "completed"
    tools = [ToolCallRecord("lookup_order", {"id": i}, "error" if i % 9 == 0 else "success", 12.0)] * (
        1 + i % 2
    )
    return interaction(
        id=f"{version}-{i}",
        session_id=session,
        version=version,
        status=status,
        latency_ms=float(rng.lognormal(7, 0.3)),
        cost_usd=float(rng.lognormal(-5, 0.2)),
        tool_calls=tools,
        guardrails=[{"name": "pii", "verdict": "block" if i % 50 == 1 else "allow"}],
        feedback={"thumbs": -1 if i % 5 == 0 else 1, "score": 1 + i % 5} if i % 2 == 0 else None,
    )


def test_one_turn_sessions_give_the_interaction_level_numbers() -> None:
    rng = np.random.default_rng(5)
    base = ArmSample.from_records([_record(i, rng, session=f"a{i}") for i in range(400)])
    cand = ArmSample.from_records([_record(i, rng, session=f"b{i}") for i in range(300)])
    assert len(base.sessions) == 400 and all(s.n == 1 for s in base.sessions)
    with_sessions = analyze(base, cand, expected_split=0.4).to_dict()
    bare = analyze(replace(base, sessions=()), replace(cand, sessions=()), expected_split=0.4).to_dict()
    assert with_sessions == bare
    for m in with_sessions["metrics"]:
        if m["kind"] == "proportion":
            assert m["details"]["design_effect_a"] == m["details"]["design_effect_b"] == 1
        elif m["kind"] == "continuous":
            assert m["details"]["design_effect"] == 1 and m["details"]["clusters_a"] is None


def test_sessions_from_records_and_their_effect() -> None:
    rng = np.random.default_rng(6)
    records = [_record(i, rng, session=f"s{i // 4}") for i in range(400)]
    arm = ArmSample.from_records(records, name="support@1.0")
    assert arm.units == 100 and len(arm.sessions) == 100 and sum(s.n for s in arm.sessions) == 400
    assert sum(s.tool_calls for s in arm.sessions) == arm.tool_calls
    d = arm.to_dict()
    assert "sessions" not in d and d["units"] == 100
    json.dumps(d)
    with pytest.raises(ValueError, match="add up"):
        ArmSample(n=5, sessions=(ArmSample(n=2), ArmSample(n=2)))


def test_answers_from_the_cache_are_left_out_of_latency_and_cost_only() -> None:
    """A new version's answer cache starts cold: its near-free cached answers would make the baseline
    look faster and cheaper than the version it is compared with. They count for everything else."""
    rng = np.random.default_rng(7)
    records = [_record(i, rng, session=f"s{i // 2}") for i in range(40)]
    for r in records[::4]:
        r.metadata["cache"] = {"kind": "exact", "saved_usd": r.cost_usd, "age_s": 3.0}
        r.latency_ms, r.cost_usd = 0.4, 0.0
    arm = ArmSample.from_records(records)
    ran = [r for r in records if "cache" not in r.metadata]
    assert arm.n == 40 and arm.latency_ms.size == arm.cost_usd.size == 30
    assert sorted(arm.latency_ms) == sorted(r.latency_ms for r in ran)
    assert sorted(arm.cost_usd) == sorted(r.cost_usd for r in ran)
    assert arm.completed == sum(r.status == "completed" for r in records)
    assert arm.tool_calls == sum(len(r.tool_calls) for r in records)


def test_a_critical_safety_regression_spread_over_sessions_fails_at_once() -> None:
    """Refund-policy incidents in several canary sessions, none in the baseline: FAIL with a small
    canary, before the minimum of interactions, as the demo's 1.1 must."""
    rng = np.random.default_rng(8)
    base = simulated_sessions(rng, 250)
    can = simulated_sessions(rng, 6, incidents=0.3)
    assert sum(s.safety_incidents > 0 for s in can) >= 3
    result = analyze(pooled(base), pooled(can), min_samples_per_arm=60)
    safety = result.metric("safety_incidents")
    assert result.verdict == "FAIL" and safety.classification == "HIGH", result.reasons
    assert safety.details["dispersion"] >= 1


def test_incidents_of_one_conversation_weigh_as_about_one() -> None:
    calm = [ArmSample(n=4) for _ in range(100)]
    one_bad = [ArmSample(n=4, safety_incidents=4)] + [ArmSample(n=4) for _ in range(4)]
    spread = [ArmSample(n=4, safety_incidents=1) for _ in range(4)] + [ArmSample(n=4)]
    p_one = analyze(pooled(calm), pooled(one_bad), min_samples_per_arm=1).metric("safety_incidents")
    p_spread = analyze(pooled(calm), pooled(spread), min_samples_per_arm=1).metric("safety_incidents")
    assert p_one.details["dispersion"] > 2 and p_spread.details["dispersion"] == 1
    assert p_one.p_value is not None and p_spread.p_value is not None
    assert p_one.p_value > 100 * p_spread.p_value


# the statistics underneath ----------------------------------------------------------------------------


def test_design_effects_are_one_for_independent_units_and_grow_with_clustering() -> None:
    assert ratio_design_effect([1, 0, 1, 0], [1, 1, 1, 1]) == 1.0
    assert ratio_design_effect([0, 0, 0], [3, 2, 4]) == 1.0  # no events: no variance to inflate
    # all-or-nothing sessions of 3 turns: about 3 times the binomial variance
    x, n = np.array([3, 0] * 50), np.full(100, 3)
    assert ratio_design_effect(x, n) == pytest.approx(3 * 100 / 99, rel=1e-9)
    # independent turns within sessions: close to 1
    rng = np.random.default_rng(0)
    n = rng.integers(1, 6, 2000)
    assert ratio_design_effect(rng.binomial(n, 0.3), n) == pytest.approx(1.0, abs=0.1)
    # groups keep their own rate: a difference between them is no clustering
    assert ratio_design_effect([0, 0, 1, 1], [1, 1, 1, 1], groups=[0, 0, 1, 1]) == 1.0
    values, labels = rng.normal(size=50), np.arange(50)
    assert rank_design_effect(values[:20], values[20:], labels[:20], labels[20:]) == 1.0
    shared = np.repeat(rng.normal(size=25), 4)
    assert rank_design_effect(shared[:40], shared[40:], np.arange(40) // 4, np.arange(60) // 4) > 3


def test_clustered_tests_reduce_to_the_plain_ones_at_design_effect_one() -> None:
    plain = two_proportion_test(40, 200, 55, 210)
    assert two_proportion_test(40, 200, 55, 210, design_effects=(1.0, 1.0)) == plain
    wider = two_proportion_test(40, 200, 55, 210, design_effects=(2.0, 2.0))
    assert wider.p_value > plain.p_value and wider.ci[0] < plain.ci[0] and wider.ci[1] > plain.ci[1]
    assert wider.difference == plain.difference
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 60), rng.normal(0.3, 1, 50)
    assert mann_whitney(a, b, clusters_a=np.arange(60), clusters_b=np.arange(50)) == replace(
        mann_whitney(a, b), clusters_a=60, clusters_b=50
    )
    clustered = mann_whitney(a, b, clusters_a=np.arange(60) // 3, clusters_b=np.arange(50) // 5)
    assert clustered.shift == mann_whitney(a, b).shift and clustered.design_effect >= 1
    exact = rate_test(1, 500, 4, 50)
    assert rate_test(1, 500, 4, 50, dispersion=1 + 1e-9).p_value == pytest.approx(exact.p_value, rel=1e-6)
    assert rate_test(1, 500, 4, 50, dispersion=2.0).p_value > exact.p_value
