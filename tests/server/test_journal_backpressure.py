"""Back-pressure: a store slower than traffic holds answers back (`Journal.keep_up`), so the journal
stays bounded; a store that is down holds nothing back, and what an outage left is not held against
the answers after it."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from test_journal import record

from shipyard.server import Journal
from shipyard.store import InteractionRecord, Store


class GatedStore:
    """The project's SQLite store, whose writes fail while `down`, and each take a permit while
    `limit` has been called (a store that takes only so many batches, then none until `open`)."""

    def __init__(self, path: Path) -> None:
        self.store = Store(f"sqlite:///{path}")
        self.permits: threading.Semaphore | None = None
        self.down = False

    def limit(self, batches: int) -> None:
        self.permits = threading.Semaphore(batches)

    def open(self) -> None:
        permits, self.permits = self.permits, None
        if permits is not None:
            permits.release(1000)  # a write waiting for a permit goes on

    def write_interactions(self, records: list[InteractionRecord]) -> Any:
        if self.down:
            raise OSError("the database is down")
        permits = self.permits
        if permits is not None:
            permits.acquire()
        return self.store.write_interactions(records)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


async def _settled(task: asyncio.Task[None]) -> bool:
    """Whether `task` finishes once the loop has run everything ready (it waits on nothing else)."""
    for _ in range(50):
        await asyncio.sleep(0)
    return task.done()


async def test_a_lagging_store_holds_answers_back_until_the_backlog_is_down(tmp_path: Path) -> None:
    slow = GatedStore(tmp_path / "db.sqlite")
    journal = Journal(tmp_path / "journal", slow, batch_size=4, max_memory_records=40)
    journal.open()
    assert (journal.backlog_records, journal.backlog_bytes) == (20, 8 * 1024 * 1024)
    for i in range(20):  # at the bound: answers go straight out
        journal.append(record(i))
        await journal.keep_up()
    assert journal.held_back == 0
    slow.limit(0)
    mover = asyncio.create_task(journal.run())
    journal.append(record(20))  # one past the bound while the store takes records: this answer waits
    waiting = asyncio.create_task(journal.keep_up())
    try:
        assert not await _settled(waiting) and journal.held_back == 1
    finally:
        slow.open()  # the store catches up: the answer goes once 10 or fewer wait
    await asyncio.wait_for(waiting, 60)
    assert journal.pending <= 10
    mover.cancel()
    await journal.aclose()
    assert slow.store.count_interactions() == 21  # nothing was dropped on the way
    slow.store.close()


async def test_a_store_that_is_down_holds_nothing_back_and_the_outage_is_excused(tmp_path: Path) -> None:
    flaky = GatedStore(tmp_path / "db.sqlite")
    journal = Journal(tmp_path / "journal", flaky, batch_size=4, flush_interval_s=0.05, max_memory_records=40)
    journal.open()
    flaky.down = True
    with_outage = asyncio.create_task(journal.run())
    while journal.failures == 0:  # the mover has found the store down
        journal.append(record(journal.pending))
        await asyncio.sleep(0.01)
    for i in range(100):  # far past the bound: the journal holds them and answers keep flowing
        journal.append(record(1000 + i))
        await asyncio.wait_for(journal.keep_up(), 60)
    assert journal.held_back == 0 and journal.pending > 100
    # the store comes back but is slow: the outage's backlog is excused, newer records are not
    flaky.limit(1)  # one batch goes in, then the store stalls
    flaky.down = False
    while journal._excused == 0:  # the first batch after the outage went in
        await asyncio.sleep(0.01)
    excused = journal._excused
    assert excused >= 100
    await asyncio.wait_for(journal.keep_up(), 60)  # the outage's records alone hold nothing back
    for i in range(25):
        journal.append(record(2000 + i))
    waiting = asyncio.create_task(journal.keep_up())
    try:
        assert not await _settled(waiting)
    finally:
        flaky.open()
    await asyncio.wait_for(waiting, 60)
    with_outage.cancel()
    await journal.aclose()
    assert flaky.store.count_interactions() == journal.stored
    flaky.store.close()
