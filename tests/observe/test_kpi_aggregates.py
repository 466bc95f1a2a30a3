"""The server's KPIs are incremental aggregates (per-bucket counters and sketches). Their answers are
checked against a plain pass over the same samples: exact while buckets are small (every low-traffic
window), and within the sketches' stated error when they are not (p95 within LATENCY_ALPHA of the true
nearest-rank value, sessions within HyperLogLog's error)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from observe_helpers import NOW, make_record, plain_kpis, random_samples, same

from shipyard.observe import COARSE_S, Aggregates, JoinedView, KpiFrame, Kpis, KpiWindow, Sample
from shipyard.observe._aggregates import (
    HLL_M,
    LATENCY_ALPHA,
    _hll_slot,
    histogram_quantile,
    hll_estimate,
    hll_registers,
    latency_histogram,
)

EDGE = math.floor(NOW / COARSE_S) * COARSE_S  # a coarse bucket edge just before NOW


def aggregates_of(samples: list[Sample], horizon_s: float = 86400.0) -> Aggregates:
    agg = Aggregates(horizon_s)
    for s in samples:
        agg.add(s)
    return agg


def spread(rng: random.Random, n: int, span_s: float) -> list[Sample]:
    """`n` random samples over the `span_s` seconds before NOW, in the order they finished."""
    samples = random_samples(rng, n)
    ats = NOW - np.random.default_rng(rng.getrandbits(64)).uniform(0, span_s, n)
    for s, at in zip(samples, ats.tolist(), strict=True):
        s.at = at
    return samples


def close(got: Kpis, want: dict[str, object]) -> None:
    """Counts and sums exact; p95 within the latency sketch's relative accuracy; sessions within
    HyperLogLog's error (what any window answers once its buckets hold sketches)."""
    for key, value in want.items():
        if value is None:
            assert getattr(got, key) is None, key
        elif key == "p95_latency_s":
            assert got.p95_latency_s == pytest.approx(value, rel=LATENCY_ALPHA + 1e-9)
        elif key in ("sessions", "cost_per_session"):
            assert getattr(got, key) == pytest.approx(value, rel=0.06), key  # 1.6% standard error
        else:
            assert getattr(got, key) == pytest.approx(value), key


def inside(samples: list[Sample], since: float, until: float, **match: str) -> list[Sample]:
    return [s for s in samples if since <= s.at < until and all(getattr(s, k) == v for k, v in match.items())]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_low_traffic_windows_are_exact(seed: int) -> None:
    """Windows on bucket edges (multiples of 5 s in the last hour, of 300 s before) are exact."""
    rng = random.Random(seed)
    samples = spread(rng, 600, 6 * 3600)  # 5 s buckets hold a few each: the exact path
    agg = aggregates_of(samples)
    view = agg.view()
    windows = [
        (NOW - 900, NOW + 5),  # the last 15 minutes (fine buckets)
        (NOW - 1800, NOW - 900),
        (EDGE - 3 * 3600, NOW + 5),  # reaches back into the coarse buckets
        (EDGE - 6 * 3600, EDGE - 3 * 3600),  # coarse only
        (EDGE - 7 * 3600, EDGE - 6.5 * 3600),  # nothing
    ]
    for since, until in windows:
        k = view.kpis(until - since, since, until)
        assert agg.summary(since, until).exact
        same(k, plain_kpis(inside(samples, since, until), until - since))
        for agent, version in view.between(since, until).versions():
            part = inside(samples, since, until, agent=agent, version=version)
            assert part, (agent, version)
            same(view.where(agent=agent, version=version).kpis(1, since, until), plain_kpis(part, 1))
        billing = inside(samples, since, until, agent="billing")
        same(view.where(agent="billing").kpis(1, since, until), plain_kpis(billing, 1))


def test_consecutive_windows_and_chart_buckets_partition_the_interactions() -> None:
    """A bucket belongs to the window holding its start, so windows on any edges (the /admin/kpis series
    is not aligned) neither lose nor double-count an interaction."""
    samples = spread(random.Random(7), 3000, 2 * 3600)
    view = aggregates_of(samples).view()
    for step in (7.3, 60.0, 333.3):
        edges = [NOW - 2 * 3600 - 300 + i * step for i in range(math.ceil((2 * 3600 + 400) / step) + 1)]
        points = view.buckets(edges, step)
        assert sum(k.interactions for k in points) == len(samples)
        assert sum(k.cost_usd for k in points) == pytest.approx(sum(s.cost_usd for s in samples))


def test_busy_windows_stay_within_the_sketch_error() -> None:
    g = np.random.default_rng(11)
    n = 120_000  # ~33 a second: every 5 s bucket of each version goes over to the sketches
    statuses = ("completed", "completed", "failed", "escalated")
    ratings = (None, None, None, 1.0, 5.0)
    samples = [
        Sample(
            f"i{i}",
            at,
            "support",
            version,
            f"s{session}",
            statuses[status],
            latency,
            cost,
            tools,
            errors,
            safety,
            ratings[rating],
        )
        for i, (at, version, session, status, latency, cost, tools, errors, safety, rating) in enumerate(
            zip(
                (NOW - g.uniform(0, 3600, n)).tolist(),
                [("v1", "v2")[k] for k in g.integers(0, 2, n).tolist()],
                g.integers(0, 20_000, n).tolist(),
                g.integers(0, len(statuses), n).tolist(),
                np.exp(g.normal(-0.5, 0.9, n)).tolist(),  # log-normal, 0.05 s .. 10 s
                g.uniform(0, 0.01, n).tolist(),
                g.integers(0, 3, n).tolist(),
                g.integers(0, 2, n).tolist(),
                (g.random(n) < 0.01).tolist(),
                g.integers(0, len(ratings), n).tolist(),
                strict=True,
            )
        )
    ]
    agg = aggregates_of(samples)
    for since, until, version in [
        (NOW - 900, NOW + 5, None),
        (EDGE - 3600, NOW + 5, None),
        (NOW - 1800, NOW - 600, "v2"),
    ]:
        summary = agg.summary(since, until, version=version)
        assert not summary.exact
        part = inside(samples, since, until, **({"version": version} if version else {}))
        close(summary.kpis(until - since), plain_kpis(part, until - since))


def test_memory_follows_time_not_traffic() -> None:
    """Busy buckets hold sketches of a fixed size: twice the traffic in the same hour, the same memory."""
    rng = random.Random(5)

    def one_version(n: int) -> list[Sample]:
        samples = spread(rng, n, 3600)
        for s in samples:
            s.agent, s.version = "support", "v1"
        return samples

    agg = aggregates_of(one_version(100_000))  # ~140 per 5 s bucket: all sketches
    before = agg.bytes
    for s in one_version(100_000):
        agg.add(s)
    assert len(agg) == 200_000
    assert agg.bytes <= 1.02 * before


def test_the_horizon_lets_old_buckets_go() -> None:
    agg = Aggregates(horizon_s=3600)
    old = spread(random.Random(1), 100, 600)
    for s in old:
        s.at -= 5 * 3600
        agg.add(s)
    assert len(agg) == 100
    fresh = spread(random.Random(2), 50, 600)
    for s in fresh:
        agg.add(s)  # a new bucket: what is older than the horizon goes
    assert len(agg) == 50
    assert agg.summary(-math.inf, math.inf).counts[0] == 50
    agg.prune(NOW + 2 * 3600)
    assert len(agg) == 0 and agg.view().versions() == []


def test_feedback_moves_a_rating_in_fine_and_coarse_buckets() -> None:
    window = KpiWindow()
    old, new = make_record(at=NOW - 2 * 3600), make_record(at=NOW - 60)
    window.add(old)
    window.add(new)
    window.add_feedback(old.id, {"thumbs": 1})
    window.add_feedback(new.id, {"score": 2})
    k = window.kpis(3 * 3600, now=NOW)
    assert k.ratings == 2 and k.satisfaction == pytest.approx(3.5)
    assert window.kpis(300, now=NOW).satisfaction == 2.0  # the fine buckets
    window.add_feedback(new.id, {})  # feedback taken back
    assert window.kpis(300, now=NOW).ratings == 0 and window.kpis(3 * 3600, now=NOW).ratings == 1


def test_eval_and_shadow_traffic_never_count() -> None:
    window = KpiWindow()
    for source in ("production", "canary", "eval", "shadow"):
        window.add(make_record(at=NOW - 10, source=source))
    assert window.kpis(60, now=NOW).interactions == 2


def test_store_history_and_memory_join_without_counting_twice() -> None:
    """The dashboard reads the store before the window began and the aggregates after."""
    samples = spread(random.Random(9), 800, 4 * 3600)
    split = NOW - 2 * 3600 + 123.0  # the server started mid-bucket
    history = KpiFrame([s for s in samples if s.at < split])
    memory = aggregates_of([s for s in samples if s.at >= split])
    joined = JoinedView(history, memory.view(), split, after_from=math.floor(split / COARSE_S) * COARSE_S)
    for since, until in [(NOW - 4 * 3600, NOW + 5), (NOW - 3 * 3600, EDGE - 3600), (NOW - 900, NOW + 5)]:
        close(joined.kpis(1, since, until), plain_kpis(inside(samples, since, until), 1))
    assert set(joined.versions()) == {(s.agent, s.version) for s in samples}


def test_hll_registers_match_the_scalar_update() -> None:
    rng = random.Random(3)
    hashes = [
        0,
        1,
        -1,
        2**63 - 1,
        -(2**63),
        *(1 << b for b in range(63)),
        *(rng.getrandbits(64) - 2**63 for _ in range(5000)),
    ]
    want = np.zeros(HLL_M, np.uint8)
    for h in hashes:
        i, rho = _hll_slot(h)
        want[i] = max(want[i], rho)
    assert np.array_equal(hll_registers(np.array(hashes, np.int64)), want)
    distinct = [hash(f"session-{i}") for i in range(50_000)]
    assert hll_estimate(hll_registers(np.array(distinct, np.int64))) == pytest.approx(50_000, rel=0.06)
    assert hll_estimate(hll_registers(np.array(distinct[:10], np.int64))) == 10  # small sets: linear counting


def test_latency_sketch_quantiles_are_within_alpha_of_a_real_value() -> None:
    rng = random.Random(4)
    values = sorted([0.0, 1e-7, 3e5, *(math.exp(rng.gauss(0, 2)) for _ in range(5000))])
    hist = latency_histogram(values)
    for rank in (0, 1, 2, 100, 2500, 4750, 5000, 5001, 5002):
        v = values[rank]
        got = histogram_quantile(hist, rank)
        clamped = 0.0 if v == 0 else min(max(v, 1e-5), 1e5)  # outside the sketch's range: its ends
        assert got == pytest.approx(clamped, rel=LATENCY_ALPHA + 1e-9), rank
