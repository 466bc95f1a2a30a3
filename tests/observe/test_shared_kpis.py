"""Shared KPIs (observe/_shared_kpis.py): replicas' windows merged in Redis read the same numbers, and
an alert transition is delivered by one replica only. Real Redis, DB 14, a project name of its own."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import pytest
import redis
from records import interaction

from shipyard.config import AlertRule
from shipyard.observe import AlertEngine, KpiWindow, SharedKpis
from shipyard.observe._shared_kpis import clear

pytestmark = pytest.mark.redis

REDIS_URL = "redis://127.0.0.1:6379/14"


@pytest.fixture
def project() -> Iterator[str]:
    name = f"kpitest-{secrets.token_hex(4)}"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    clear(client, name)
    client.close()


def _replica(project: str) -> KpiWindow:
    window = KpiWindow()
    window.shared = SharedKpis(REDIS_URL, project)
    return window


def test_two_replicas_read_the_same_merged_kpis(project: str) -> None:
    a, b = _replica(project), _replica(project)
    now = time.time()
    for i in range(30):  # replica a: 30 interactions of 10 sessions, a third failed
        a.add(
            interaction(
                session_id=f"s{i % 10}",
                created_at=now - 60 + i,
                status="failed" if i % 3 == 0 else "completed",
                latency_ms=100.0 + i,
                cost_usd=0.01,
            )
        )
    for i in range(20):  # replica b: 20 interactions, half of its sessions also seen by a
        b.add(
            interaction(session_id=f"s{5 + i % 10}", created_at=now - 50 + i, latency_ms=200.0, cost_usd=0.02)
        )
    assert a.kpis(300, now=now + 1).interactions == 30  # not flushed yet: a's own numbers
    for w in (a, b):
        assert w.shared is not None
        w.shared.flush()
    for w in (a, b):
        assert w.shared is not None
        w.shared.refresh()
    ka, kb = a.kpis(300, now=now + 1), b.kpis(300, now=now + 1)
    assert ka == kb
    assert ka.interactions == 50
    assert ka.errors == 10
    assert ka.sessions == 15  # s0..s14: sessions seen by both replicas count once
    assert ka.cost_usd == pytest.approx(0.7)
    assert ka.p95_latency_s == pytest.approx(0.2, rel=0.011)  # the merged sketch: within 1%
    assert a.scope == "fleet" and a.covers_from is not None and a.covers_from <= time.time()
    assert a.view().versions() == [("support", "support@1.0.0+abc1234")]
    assert len(a) == 30  # the process's own aggregates are still its own


def test_feedback_moves_the_fleet_rating(project: str) -> None:
    a, b = _replica(project), _replica(project)
    record = interaction(created_at=time.time() - 5)
    a.add(record)
    a.add_feedback(record.id, {"thumbs": 1})
    a.add_feedback(record.id, {"score": 2})
    assert a.shared is not None and b.shared is not None
    a.shared.sync()
    b.shared.refresh()
    k = b.kpis(60)
    assert (k.interactions, k.ratings, k.satisfaction) == (1, 1, 2.0)


def test_a_flush_redis_refuses_keeps_its_deltas() -> None:
    shared = SharedKpis("redis://127.0.0.1:1/14", "nowhere")
    window = KpiWindow()
    window.shared = shared
    window.add(interaction())
    with pytest.raises(redis.RedisError):
        shared.flush()
    assert len(shared.outbox) == 2  # its fine and its coarse bucket, for the next flush
    assert window.scope == "process"  # never read: the window answers from its own aggregates
    assert window.kpis(60).interactions == 1


def test_an_alert_fires_once_across_replicas(project: str) -> None:
    rule = AlertRule(
        name="errors", metric="error_rate", comparator=">", alert=0.2, window="5m", min_samples=5
    )
    engines = []
    now = time.time()
    for _ in range(3):
        window = _replica(project)
        engine = AlertEngine([rule], lambda r, t, w=window: w.kpis(r.window_s, now=t, agent=r.agent))
        engine.shared = window.shared
        engines.append((window, engine))
    first = engines[0][0]
    for i in range(10):
        first.add(interaction(created_at=now - 30 + i, status="failed" if i < 5 else "completed"))
    for window, _ in engines:
        assert window.shared is not None
        window.shared.flush()
    for window, _ in engines:
        assert window.shared is not None
        window.shared.refresh()
    fired = [t for _, engine in engines for t in engine.evaluate(now + 1)]
    assert [(t.previous, t.state) for t in fired] == [("no_data", "alert")]
    assert {e.states()[0].state for _, e in engines} == {"alert"}
    assert len({e.states()[0].since for _, e in engines}) == 1  # the fleet's since, on every replica
    # it recovers: again one transition, whichever replica sees it first
    for i in range(40):
        first.add(interaction(created_at=now - 20 + i * 0.1))
    for window, _ in engines:
        assert window.shared is not None
        window.shared.sync()
    fired = [t for _, engine in engines for t in engine.evaluate(now + 2)]
    assert [(t.previous, t.state) for t in fired] == [("alert", "ok")]
