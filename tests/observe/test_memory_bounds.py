"""What the server keeps in memory per interaction is bounded in bytes as well as in count: the KPI
window (its buckets, and the index that lets feedback re-rate recent interactions; no client string is
kept) and the dropped traces held for late feedback."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable, Iterator

import pytest
from observe_helpers import make_record

from shipyard.observe import KpiWindow, TraceSampler
from shipyard.store import SpanRecord


@pytest.fixture
def traced() -> Iterator[Callable[[], int]]:
    """Bytes allocated (and still alive) since the fixture started, as tracemalloc counts them."""
    gc.collect()
    tracemalloc.start()
    start = tracemalloc.get_traced_memory()[0]

    def used() -> int:
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - start

    yield used
    tracemalloc.stop()


def test_kpi_window_is_bounded_in_bytes(traced: Callable[[], int]) -> None:
    window = KpiWindow(max_bytes=100_000)
    first = last = ""
    for i in range(2000):  # 10 KB session ids: 20 MB if the window held them
        r = make_record(session=f"{i:05d}" + "s" * 10_000, at=1_000_000.0 + i)
        first, last = first or r.id, r.id
        window.add(r)
    del r
    # the index of recent interactions (100 KB) and the buckets (about 400 of them, 5 s each)
    assert window.bytes <= 900_000
    assert traced() < 1.2 * window.bytes  # the estimate is honest: what the window really holds
    assert len(window) == 2000  # every interaction is counted; only the index lets the oldest go
    window.add_feedback(first, {"thumbs": 1})  # let go of: not rateable any more
    window.add_feedback(last, {"thumbs": -1})  # the newest stay
    k = window.kpis(86400, now=1_002_000.0)
    assert k.interactions == 2000 and k.ratings == 1 and k.satisfaction == 1.0
    window.prune(now=10_000_000.0)
    assert len(window) == 0 and window.bytes == 0


def test_kpi_window_feedback_reaches_recent_interactions_only() -> None:
    window = KpiWindow(max_samples=10)
    records = [make_record(at=1_000_000.0 + i) for i in range(50)]
    for r in records:
        window.add(r)
    assert len(window) == 50
    window.add_feedback(records[-1].id, {"thumbs": -1})
    window.add_feedback(records[0].id, {"thumbs": 1})  # forgotten: nothing to update, no error
    k = window.kpis(3600, now=1_000_100.0)
    assert k.interactions == 50 and k.ratings == 1 and k.satisfaction == 1.0
    window.add_feedback(records[-1].id, {"score": 4})  # a second rating replaces the first
    k = window.kpis(3600, now=1_000_100.0)
    assert k.ratings == 1 and k.satisfaction == 4.0


def _trace(i: int) -> list[SpanRecord]:
    trace_id = f"{i:032x}"
    session = f"{i:05d}" + "c" * 20_000
    return [
        SpanRecord(
            trace_id,
            f"{j:016x}",
            None,
            "chat",
            "internal",
            0,
            1,
            attributes={"gen_ai.conversation.id": session},
        )
        for j in range(2)
    ]


def test_held_traces_are_bounded_in_bytes(traced: Callable[[], int]) -> None:
    sampler = TraceSampler(rate=0.0, held=10_000, held_bytes=2_000_000)
    for i in range(500):  # 40 KB a trace: 20 MB if nothing were let go
        sampler.hold(f"i{i}", _trace(i), [])
    count, size = sampler.held_size
    assert size <= 2_000_000 and 10 < count < 500
    assert traced() < 3_000_000
    recalled = sampler.recall("i499")
    assert recalled is not None and recalled[0][0].trace_id == f"{499:032x}"
    assert sampler.recall("i0") is None  # the oldest went first
    after = sampler.held_size
    assert after[0] == count - 1 and after[1] < size  # a recalled trace gives its bytes back
