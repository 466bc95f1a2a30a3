"""The server hands records to the incident watcher a loop turn at a time (`RecordHandover`): the
records of one turn reach the real watcher together once the loop runs its next callbacks, none is
lost, and a record handed over off the event loop goes at once. A real watcher on a SQLite store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.config import IncidentsConfig
from shipyard.loop import IncidentWatcher
from shipyard.server._incidents_api import RecordHandover
from shipyard.store import InteractionRecord, Store, new_id


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[tuple[IncidentWatcher, Store]]:
    store = Store(f"sqlite:///{tmp_path / 'shipyard.db'}")
    watcher = IncidentWatcher(IncidentsConfig(sources=["error"]), store)
    yield watcher, store
    watcher.close()
    store.close()


def failed(text: str) -> InteractionRecord:
    """A failed production interaction of `support` (an `error` incident)."""
    return InteractionRecord(
        id=new_id(),
        trace_id=new_id(),
        session_id="s1",
        user_id=None,
        agent="support",
        version="support@1.0.0+abc1234",
        traffic_source="production",
        input=text,
        output="",
        status="failed",
        latency_ms=12.0,
        error="model call failed: HTTP 500",
        metadata={"error_kind": "llm_server_error"},
        created_at=time.time(),
    )


def counts(store: Store) -> list[int]:
    return sorted(int(i["count"]) for i in store.list_incidents())


def test_a_loop_turns_records_reach_the_watcher_together_after_it(
    watched: tuple[IncidentWatcher, Store],
) -> None:
    watcher, store = watched
    handover = RecordHandover(watcher)

    async def turn() -> None:
        for n in (10001, 10002, 10003):
            handover.add(failed(f"Where is my order {n}?"))
        assert watcher.drain(60)
        assert counts(store) == []  # still this turn: nothing handed over yet
        await asyncio.sleep(0)  # the loop runs the handover's callback
        assert watcher.drain(60)
        assert counts(store) == [3]  # all three, grouped on one incident
        handover.add(failed("Where is my order 10004?"))
        handover.flush()  # what a stopping server does with the last turn's records
        assert watcher.drain(60)
        assert counts(store) == [4]

    asyncio.run(turn())


def test_off_the_event_loop_a_record_is_handed_over_at_once(watched: tuple[IncidentWatcher, Store]) -> None:
    watcher, store = watched
    RecordHandover(watcher).add(failed("Where is my order 10001?"))
    assert watcher.drain(60)
    assert counts(store) == [1]
