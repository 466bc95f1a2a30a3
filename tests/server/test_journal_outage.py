"""A long store outage: the journal holds a bounded number of bytes in memory however many records
wait (the rest wait in its file only), reads by id still find every one of them, and once the store is
back every record reaches it, in order, with a refused one kept as a dead letter.

The outage is real: PostgreSQL is reached through a TCP proxy the test cuts (auth_helpers.py), and the
memory is what tracemalloc sees a process hold: a process of its own, this file run as a script.
tracemalloc counts every allocation of the process, whichever thread makes it and whatever it is for;
in a pytest worker that has run other files the figures would include whatever else the worker runs or
first uses meanwhile (a parallel run once saw the read-back "peak" at 8.6 MB; the journal alone
peaks near 1 MB), so the journal is measured where nothing else runs."""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from auth_helpers import TcpProxy, pg_schema, pg_url

from shipyard.server import Journal
from shipyard.store import InteractionRecord, SpanRecord, Store, ToolCallRecord, is_refusal, new_id

pytestmark = pytest.mark.postgres

RECORDS = 3000  # at ~5 KB of objects each, ~15 MB if every waiting record stayed in memory
HELD_BOUND = 3_000_000  # bytes this process may hold for them (memory bound: 100 records / 200 KB)


def big_record(i: int, **overrides: Any) -> InteractionRecord:
    """An interaction of realistic size: ~3.5 KB as a journal line."""
    trace_id = new_id()
    fields: dict[str, Any] = dict(
        id=new_id(),
        trace_id=trace_id,
        session_id=f"outage-{i % 50}",
        user_id=None,
        agent="support",
        version="support@1.0.0+abc1234",
        traffic_source="production",
        input=f"question {i}: " + "where is my order, it was due last week? " * 36,
        output=f"answer {i}: " + "your order shipped yesterday. " * 27,
        status="completed",
        latency_ms=120.0,
        input_tokens=300,
        output_tokens=120,
        tool_calls=[
            ToolCallRecord("lookup_order", {"order_id": str(10_000 + i)}, "success", 4.0, result={"n": i})
        ],
        spans=[
            SpanRecord(trace_id, new_id()[:16], None, "invoke_agent support", "internal", 1, 2),
            SpanRecord(trace_id, new_id()[:16], None, "execute_tool lookup_order", "internal", 1, 2),
        ],
    )
    fields.update(overrides)
    return InteractionRecord(**fields)


class Recording:
    """The real store, noting the ids of the records it stored, in the order it stored them."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.order: list[str] = []

    def write_interactions(self, records: Sequence[InteractionRecord]) -> int:
        n = self.store.write_interactions(records)
        self.order += [r.id for r in records]
        return n

    def add_dead_letter(self, letter: Any) -> None:
        self.store.add_dead_letter(letter)


def held_bytes(base: int) -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0] - base


def test_a_long_outage_holds_bounded_memory_and_loses_nothing(tmp_path: Path) -> None:
    with pg_schema() as schema:
        run = subprocess.run(
            [sys.executable, __file__, schema, str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert run.returncode == 0, f"the outage scenario failed:\n{run.stderr[-6000:]}"
    figures = json.loads((tmp_path / "figures.json").read_text())
    held, peak = figures["held"], figures["peak"]
    assert held < HELD_BOUND, f"{held:,} bytes held for {RECORDS} waiting records"
    assert peak < 2 * HELD_BOUND, f"reading the file back peaked at {peak:,} bytes"


async def outage(schema: str, folder: Path) -> dict[str, int]:
    """The outage in PostgreSQL schema `schema`, the journal under `folder`: checks that nothing is lost
    and returns the bytes this process held for the waiting records (`held`) and its peak while they
    were read back (`peak`). Run in a process of its own (`python test_journal_outage.py SCHEMA DIR`)."""
    direct = Store(pg_url(5432, schema))
    proxy = TcpProxy(("127.0.0.1", 5432))
    through = Store(pg_url(proxy.port, schema), migrate=False)
    journal = Journal(
        folder / "journal", through, batch_size=50, max_memory_records=100, max_memory_bytes=200_000
    )
    journal.open()
    proxy.cut()  # PostgreSQL is gone
    ids: list[str] = []
    traces: list[str] = []
    tracemalloc.start()
    try:
        base = held_bytes(0)
        for i in range(RECORDS):
            # one record PostgreSQL refuses (bigint out of range) among those that wait on disk only
            r = big_record(i, input_tokens=2**63) if i == 10 else big_record(i)
            journal.append(r)
            ids.append(r.id)
            traces.append(r.trace_id)
            if i % 500 == 499:  # the mover tries, and the store is still down
                with pytest.raises(Exception) as down:
                    await journal.flush()
                assert not is_refusal(down.value)
                del down
        held = held_bytes(base)
        assert journal.pending == RECORDS
        in_memory, in_memory_bytes = journal.in_memory
        assert in_memory <= 100 and in_memory_bytes <= 200_000

        # reads by id or trace id find the records kept in the file only, and the newest ones
        assert journal.is_pending(ids[0]) and journal.is_pending(ids[-1])
        oldest = journal.find_pending(ids[0])
        assert oldest is not None and oldest.input.startswith("question 0: ")
        by_trace = await journal.afind_pending(traces[1])
        assert by_trace is not None and by_trace.id == ids[1] and by_trace.spans
        newest = await journal.afind_pending(ids[-1])
        assert newest is not None and newest.output.startswith(f"answer {RECORDS - 1}: ")
        assert journal.find_pending(new_id()) is None

        # the store is back: the mover reads the records back from the file a batch at a time
        recording = Recording(direct)
        journal.store = journal.dead_letters.store = recording
        base = held_bytes(0)
        tracemalloc.reset_peak()
        assert await journal.flush() == RECORDS
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert recording.order == [x for x in ids if x != ids[10]]  # in the order they were answered
    assert direct.count_interactions() == RECORDS - 1
    letter = direct.get_dead_letter(ids[10])
    assert letter is not None and letter.record().input_tokens == 2**63
    assert journal.pending == 0 and journal.in_memory == (0, 0) and not journal.is_pending(ids[0])
    assert journal.path is not None
    checkpoint = journal.path.with_name(journal.path.name + ".ckpt")
    assert int(checkpoint.read_text()) == journal.path.stat().st_size
    await journal.aclose()
    through.close()
    direct.close()
    return {"held": held, "peak": peak}


if __name__ == "__main__":  # the scenario, in a process of its own (see the test)
    folder = Path(sys.argv[2])
    figures = asyncio.run(outage(sys.argv[1], folder))
    (folder / "figures.json").write_text(json.dumps(figures))
