"""The columnar KPI math (`KpiFrame`) gives what a plain pass over the samples gives, for any window,
version or bucket. (The server's aggregates are checked against the same plain pass in
test_kpi_aggregates.py.)"""

from __future__ import annotations

import random

import pytest
from observe_helpers import NOW, plain_kpis, random_samples, same

from shipyard.observe import KpiFrame, compute_kpis


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
