"""A/B experiment analysis with the assignment unit as the cluster: correlated interactions of one
unit do not make false wins, real differences are still found, and one interaction per unit gives
the interaction-level numbers."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from records import interaction

from shipyard.rollout import (
    B_BETTER,
    DEFAULT_EXPERIMENT_METRICS,
    NO_DIFFERENCE,
    ArmSample,
    analyze_experiment,
    msprt,
    two_proportion_test,
    welch_t_test,
)
from shipyard.rollout._experiment import experiment_arm
from shipyard.rollout._stats import variance_of_mean
from shipyard.store import InteractionRecord

METRICS = {m.name: m for m in DEFAULT_EXPERIMENT_METRICS}


def simulated_units(
    rng: np.random.Generator, k: int, *, logit: float = 1.5, cost: float = 1.0
) -> list[ArmSample]:
    """`k` simulated units (a user's conversation each) of 1-8 interactions that are strongly alike:
    a unit's customer sets the chance of completion and of a thumbs-up, its kind the level of
    latency and cost. Drawn for all `k` at once (numpy), then split into units."""
    if k == 0:
        return []
    turns = rng.integers(1, 9, k)
    p = 1 / (1 + np.exp(-(logit + 1.5 * rng.normal(size=k))))
    level = rng.normal(0, 0.5, k)
    rated = rng.binomial(turns, 0.4)
    up = rng.binomial(rated, p)
    completed = rng.binomial(turns, p)
    per_turn = np.repeat(np.arange(k), turns)  # the unit of each interaction
    latency = np.exp(7.0 + level[per_turn] + rng.normal(0, 0.2, per_turn.size))
    usd = cost * 1e-3 * np.exp(level[per_turn] + rng.normal(0, 0.1, per_turn.size))
    per_rating = np.repeat(np.arange(k), rated)  # the unit of each rated interaction
    scores = np.clip(np.round(2.0 + 3 * p[per_rating] + rng.normal(0, 0.5, per_rating.size)), 1, 5)
    turn_ends, rating_ends = np.cumsum(turns)[:-1], np.cumsum(rated)[:-1]
    return [
        ArmSample(
            n=n,
            completed=c,
            latency_ms=lat,
            cost_usd=dollars,
            thumbs_up=u,
            thumbs_down=r - u,
            scores=sc,
            units=1,
        )
        for n, c, lat, dollars, u, r, sc in zip(
            turns.tolist(),
            completed.tolist(),
            np.split(latency, turn_ends),
            np.split(usd, turn_ends),
            up.tolist(),
            rated.tolist(),
            np.split(scores, rating_ends),
            strict=True,
        )
    ]


def pooled(parts: list[ArmSample], *, units: bool = True) -> ArmSample:
    """The arm its units make, with them (the new analysis) or as bare counts and arrays
    (interactions independent: the old one)."""
    arm = ArmSample.from_sessions(parts)
    return arm if units else replace(arm, sessions=())


def test_correlated_units_without_a_difference_keep_the_level() -> None:
    """100 seeded A/A experiments of 100 units per arm: read once at the end, Welch's t, the z-test
    and Mann-Whitney reject at about alpha with units as clusters; taking
    interactions as independent, far more often."""
    rng = np.random.default_rng(21)
    specs = [METRICS[n] for n in ("task_completion", "satisfaction_score", "latency_ms")]
    runs = 100
    rejected: dict[str, int] = {}
    for _ in range(runs):
        a, b = simulated_units(rng, 100), simulated_units(rng, 100)
        for how, units in (("new", True), ("old", False)):
            report = analyze_experiment(
                pooled(a, units=units), pooled(b, units=units), specs, decide_on="fixed"
            )
            for m in report.metrics:
                assert m.p_value is not None
                key = f"{how} {m.name}"
                rejected[key] = rejected.get(key, 0) + (m.p_value < 0.05)
                if m.mann_whitney_p is not None:
                    rejected[key + " mw"] = rejected.get(key + " mw", 0) + (m.mann_whitney_p < 0.05)
    rate = {k: v / runs for k, v in rejected.items()}
    for name in ("task_completion", "satisfaction_score", "latency_ms"):
        assert rate[f"new {name}"] <= 0.09, rate  # nominal 0.05; 100 runs
        assert rate[f"old {name}"] >= 0.12, rate
    for name in ("satisfaction_score", "latency_ms"):
        assert rate[f"new {name} mw"] <= 0.09 and rate[f"old {name} mw"] >= 0.12, rate
    assert rate["old latency_ms"] >= 0.25 and rate["old latency_ms mw"] >= 0.25, rate


def test_the_sequential_test_over_looks_keeps_its_level() -> None:
    """40 seeded A/A experiments looked at 3 times as units arrive, the sequential test carried from
    look to look: with units as clusters it (almost) never declares a winner; with
    interactions taken as independent, often."""
    rng = np.random.default_rng(22)
    specs = [METRICS["latency_ms"], METRICS["task_completion"]]
    runs, looks = 40, (40, 80, 120)
    ever = {"new": 0, "old": 0}
    for _ in range(runs):
        a, b = simulated_units(rng, looks[-1]), simulated_units(rng, looks[-1])
        for how, units in (("new", True), ("old", False)):
            previous = None
            for k in looks:
                report = analyze_experiment(pooled(a[:k], units=units), pooled(b[:k], units=units), specs,
                                            previous=previous)  # fmt: skip
                previous = report.to_dict()
            ever[how] += any(m.verdict != NO_DIFFERENCE for m in report.metrics)  # the running minimum
    assert ever["new"] <= 0.05 * runs, ever
    assert ever["old"] >= 0.15 * runs, ever


def test_a_real_difference_is_still_found() -> None:
    """B completes more tasks and costs less: with units as clusters the sequential test still finds
    both in nearly every seeded experiment of 300 units per arm (completion about 0.74 -> 0.87 with
    a design effect about 2; cost -20% with a design effect about 5.5)."""
    rng = np.random.default_rng(23)
    specs = [METRICS["task_completion"], METRICS["cost_per_interaction"]]
    runs, found = 20, {"task_completion": 0, "cost_per_interaction": 0}
    for _ in range(runs):
        a = simulated_units(rng, 300)
        b = simulated_units(rng, 300, logit=2.6, cost=0.8)
        report = analyze_experiment(pooled(a), pooled(b), specs)
        for m in report.metrics:
            found[m.name] += m.verdict == B_BETTER
            assert m.details["units"] == [300, 300]
    assert min(found.values()) >= 0.75 * runs, found


def _record(i: int, rng: np.random.Generator, *, session: str, user: str | None) -> InteractionRecord:
    return interaction(
        id=f"r{i}",
        session_id=session,
        user_id=user,
        version="support@1.0",
        status="completed" if rng.random() < 0.8 else "failed",
        latency_ms=float(rng.lognormal(7, 0.3)),
        cost_usd=float(rng.lognormal(-5, 0.2)),
        feedback={"thumbs": 1 if rng.random() < 0.7 else -1, "score": int(rng.integers(1, 6))}
        if i % 2 == 0
        else None,
    )


def test_one_interaction_per_unit_gives_the_interaction_level_numbers() -> None:
    """Units of one interaction (sessions, users, or neither), or arms without units: the report is
    the one for independent interactions, equal to the tests called without clusters."""
    rng = np.random.default_rng(24)
    users = [f"u{i}" if i % 3 else None for i in range(700)]
    a = experiment_arm([_record(i, rng, session=f"s{i}", user=users[i]) for i in range(400)], name="v1")
    b = experiment_arm([_record(i, rng, session=f"s{i}", user=users[i]) for i in range(400, 700)], name="v2")
    assert a.units == 400 and b.units == 300 and all(s.n == 1 for s in a.sessions)
    with_units = analyze_experiment(a, b)
    bare = analyze_experiment(replace(a, sessions=()), replace(b, sessions=()))
    assert with_units.to_dict() == bare.to_dict()
    completion = bare.metric("task_completion")
    pt = two_proportion_test(a.completed, a.n, b.completed, b.n)
    assert completion.details == pt.to_dict() and completion.p_value == pt.p_value
    pooled_rate = (a.completed + b.completed) / (a.n + b.n)
    variance = pooled_rate * (1 - pooled_rate) * (1 / a.n + 1 / b.n)
    assert completion.sequential == msprt(pt.difference, variance, 0.02)
    latency = bare.metric("latency_ms")
    wt = welch_t_test(a.latency_ms, b.latency_ms, confidence=0.95)
    assert latency.details["welch"] == wt.to_dict() and "units" not in latency.details
    assert latency.sequential is not None
    assert latency.sequential.variance == wt.sd_a**2 / wt.n_a + wt.sd_b**2 / wt.n_b


def test_experiment_arm_groups_records_by_the_assignment_unit() -> None:
    """A user's requests without a session (a fresh session id each) are one unit, as the assigner
    keyed them by the user; a session of several turns is one; a request with neither is its own."""
    rng = np.random.default_rng(25)
    records = [
        *(_record(i, rng, session=f"fresh{i}", user="alice") for i in range(3)),  # keyed by user
        *(_record(i, rng, session="chat1", user="bob") for i in range(3, 7)),  # a session
        _record(7, rng, session="chat2", user="bob"),  # bob's one-turn session: with his user unit
        *(_record(i, rng, session=f"anon{i}", user=None) for i in range(8, 10)),  # assigned afresh
    ]
    arm = experiment_arm(records, name="v1")
    assert arm.n == 10 and arm.name == "v1"
    assert sorted(s.n for s in arm.sessions) == [1, 1, 1, 3, 4] and arm.units == 5
    plain = ArmSample.from_records(records)  # by session id alone: alice's requests look independent
    assert plain.units == 7


def test_clustered_welch_on_copies_is_welch_on_the_originals() -> None:
    """Each value copied 5 times into its own cluster carries no more information than the value:
    the clustered t-test on the copies gives Welch's test on the originals."""
    rng = np.random.default_rng(26)
    x, y = rng.normal(0, 1, 40), rng.normal(0.3, 2, 30)
    copies = 5
    clustered = welch_t_test(
        np.repeat(x, copies),
        np.repeat(y, copies),
        clusters_a=np.repeat(np.arange(x.size), copies),
        clusters_b=np.repeat(np.arange(y.size), copies),
    )
    plain = welch_t_test(x, y)
    assert clustered.t == pytest.approx(plain.t, rel=1e-9)
    assert clustered.df == pytest.approx(plain.df, rel=1e-9)
    assert clustered.p_value == pytest.approx(plain.p_value, rel=1e-9)
    assert clustered.ci == pytest.approx(plain.ci, rel=1e-9)
    assert clustered.n_a == 200 and clustered.mean_b == pytest.approx(plain.mean_b)
    # one value per cluster: scipy's test exactly
    assert welch_t_test(x, y, clusters_a=np.arange(40), clusters_b=np.arange(30)) == plain
    assert variance_of_mean(x, np.arange(40)) == pytest.approx(variance_of_mean(x))
    with pytest.raises(ValueError, match="two clusters"):
        variance_of_mean(x, np.zeros(40))
    with pytest.raises(ValueError, match="two clusters"):
        welch_t_test(x, y, clusters_a=np.zeros(40), clusters_b=np.arange(30))


def test_too_few_units_leave_a_continuous_metric_without_a_result() -> None:
    one = ArmSample(n=20, latency_ms=np.arange(20.0), sessions=(ArmSample(n=20, latency_ms=np.arange(20.0)),))
    many = ArmSample(n=20, latency_ms=np.arange(20.0) + 1, sessions=tuple(
        ArmSample(n=2, latency_ms=np.array([2.0 * i + 1, 2.0 * i + 2])) for i in range(10)))  # fmt: skip
    m = analyze_experiment(one, many, [METRICS["latency_ms"]]).metric("latency_ms")
    assert m.verdict == "not enough data" and m.note == "need 2 units per arm, have 1 (A) and 10 (B)"
