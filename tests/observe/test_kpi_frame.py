"""The columnar KPI math (`KpiFrame`) gives what a plain pass over the samples gives, for any window,
version or bucket; and a `KpiWindow`'s frame, kept up to date between calls, always equals a frame
made afresh from the window's samples (samples added, dropped by count, bytes or age, re-rated)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from observe_helpers import make_record

from shipyard.observe import KpiFrame, Kpis, KpiWindow, Sample, compute_kpis

NOW = 1_000_000.0


def plain_kpis(samples: list[Sample], window_s: float) -> dict[str, object]:
    """The KPIs computed the obvious way, one sample at a time."""
    n = len(samples)
    latencies = sorted(s.latency_s for s in samples)
    ratings = [s.rating for s in samples if s.rating is not None]
    sessions = {s.session_id for s in samples}
    tools = sum(s.tool_calls for s in samples)
    cost = sum(s.cost_usd for s in samples)
    count = {st: sum(s.status == st for s in samples) for st in ("completed", "failed", "escalated")}
    return {
        "window_s": window_s,
        "interactions": n,
        "sessions": len(sessions),
        "completion_rate": count["completed"] / n if n else None,
        "error_rate": count["failed"] / n if n else None,
        "escalation_rate": count["escalated"] / n if n else None,
        "avg_latency_s": sum(latencies) / n if n else None,
        "p95_latency_s": latencies[max(0, math.ceil(0.95 * n) - 1)] if n else None,
        "cost_per_interaction": cost / n if n else None,
        "cost_per_session": cost / len(sessions) if sessions else None,
        "cost_usd": cost,
        "safety_incidents": sum(s.safety for s in samples),
        "errors": count["failed"],
        "tool_calls": tools,
        "tool_error_rate": sum(s.tool_errors for s in samples) / tools if tools else None,
        "ratings": len(ratings),
        "satisfaction": sum(ratings) / len(ratings) if ratings else None,
    }


def same(got: Kpis, want: dict[str, object]) -> None:
    for key, value in want.items():
        assert getattr(got, key) == (value if value is None else pytest.approx(value)), key


def random_samples(rng: random.Random, n: int) -> list[Sample]:
    return [
        Sample(
            f"i{i}",
            NOW - rng.uniform(0, 3600),
            rng.choice(("support", "billing")),
            rng.choice(("v1", "v2", "v3")),
            f"s{rng.randrange(40)}",
            rng.choice(("completed", "completed", "failed", "escalated", "blocked")),
            rng.choice((0.5, 1.0, rng.uniform(0.1, 9.0))),
            rng.uniform(0, 0.01),
            rng.randrange(4),
            rng.randrange(2),
            rng.random() < 0.1,
            rng.choice((None, None, 1.0, 4.0, 5.0)),
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("n", [0, 1, 2, 19, 20, 21, 500])
def test_frame_kpis_match_a_plain_pass(n: int) -> None:
    samples = random_samples(random.Random(n), n)
    frame = KpiFrame(samples)
    same(compute_kpis(samples, 3600), plain_kpis(samples, 3600))
    for since, until in [(NOW - 900, NOW), (NOW - 1800, NOW - 900), (NOW - 10, NOW - 5), (NOW, NOW + 1)]:
        inside = [s for s in samples if since <= s.at < until]
        same(frame.kpis(until - since, since, until), plain_kpis(inside, until - since))
    for agent, version in frame.versions():
        part = [s for s in samples if (s.agent, s.version) == (agent, version)]
        same(frame.where(agent=agent, version=version).kpis(3600), plain_kpis(part, 3600))
    billing = [s for s in samples if s.agent == "billing"]
    same(frame.where(agent="billing").kpis(3600), plain_kpis(billing, 3600))
    edges = [NOW - 3600 + i * 360 for i in range(11)]
    for i, k in enumerate(frame.buckets(edges, 360)):
        inside = [s for s in samples if edges[i] <= s.at < edges[i + 1]]
        same(k, plain_kpis(inside, 360))


def test_versions_come_in_order_of_first_appearance() -> None:
    samples = random_samples(random.Random(3), 200)
    first_seen = list(dict.fromkeys((s.agent, s.version) for s in sorted(samples, key=lambda s: s.at)))
    assert KpiFrame(samples).versions() == first_seen


def columns(frame: KpiFrame) -> list[np.ndarray]:
    return [frame.at, frame.status, frame.latency, frame.cost, frame.rating, frame.session, frame.group]


@pytest.mark.parametrize(
    ("max_samples", "max_bytes"), [(300, 64 * 2**20), (40, 64 * 2**20), (10_000, 30_000)]
)
def test_a_window_frame_follows_its_ring(max_samples: int, max_bytes: int) -> None:
    rng = random.Random(max_samples)
    window = KpiWindow(horizon_s=600, max_samples=max_samples, max_bytes=max_bytes)
    added = []
    for step in range(150):
        for _ in range(rng.choice((0, 1, 3, 20, 90))):  # some bursts turn the whole ring over
            at = NOW + len(added) + rng.uniform(0, 5)  # finishing order is not quite start order
            r = make_record(at=at, session=f"s{rng.randrange(30)}" * rng.choice((1, 1, 200)))
            added.append(r)
            window.add(r)
        if added and rng.random() < 0.3:
            window.add_feedback(rng.choice(added).id, {"thumbs": rng.choice((1, -1))})
        if rng.random() < 0.05:
            window.prune(now=NOW + len(added) - rng.uniform(0, 100) + 600)
        kept, fresh = window.frame(), KpiFrame(window.snapshot())
        assert len(kept) == len(window)
        for a, b in zip(columns(kept), columns(fresh), strict=True):
            assert np.array_equal(a, b, equal_nan=True), step
        assert kept.versions() == fresh.versions()
