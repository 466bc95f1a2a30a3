"""The journal: append before responding, move to the store in batches, recover after a crash."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from server_helpers import Served
from testdb import at_newest_schema

from shipyard.server import Journal, decode_record, encode, read_journal
from shipyard.store import InteractionRecord, LLMCallRecord, SpanRecord, Store, ToolCallRecord


def record(i: int) -> InteractionRecord:
    return InteractionRecord(
        id=f"id{i:04d}",
        trace_id=f"{i:032x}",
        session_id="s",
        user_id=None,
        agent="support",
        version="v1",
        traffic_source="production",
        input=f"question {i}\nwith a newline",
        output="answer",
        status="completed",
        latency_ms=12.5,
        input_tokens=10,
        output_tokens=3,
        cost_usd=0.001,
        tool_calls=[
            ToolCallRecord("lookup_order", {"order_id": str(i)}, "success", 1.0, result={"ok": True})
        ],
        llm_calls=[LLMCallRecord("m", "scripted", 2.0, 10, 3, 0, 0.001)],
        spans=[
            SpanRecord(
                f"{i:032x}",
                f"{i:016x}",
                None,
                "invoke_agent support",
                "internal",
                1,
                2,
                attributes={"gen_ai.agent.name": "support"},
            )
        ],
    )


def test_encode_decode_round_trip() -> None:
    r = record(1)
    line = encode(r)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    import orjson

    back = decode_record(orjson.loads(line[9:]))
    assert back == r


def _store(tmp_path: Path) -> Store:
    """A store on `db.sqlite` in tmp_path, starting at the newest schema (testdb.at_newest_schema)."""
    return Store(at_newest_schema(f"sqlite:///{tmp_path / 'db.sqlite'}"))


def test_torn_and_corrupt_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "x.journal"
    good = [encode(record(i)) for i in range(3)]
    corrupt = bytearray(encode(record(3)))
    corrupt[20] ^= 0xFF  # a flipped byte: the checksum no longer matches
    torn = encode(record(4))[:-30]  # the process died mid-write
    path.write_bytes(good[0] + good[1] + bytes(corrupt) + good[2] + torn)
    result = read_journal(path)
    assert [r.id for r in result.records] == ["id0000", "id0001", "id0002"]
    assert result.torn == 2


async def test_records_reach_the_store_in_batches_and_the_checkpoint_moves(tmp_path: Path) -> None:
    store = _store(tmp_path)
    journal = Journal(tmp_path / "journal", store, batch_size=4)
    journal.open()
    for i in range(10):
        journal.append(record(i))
    assert journal.pending == 10 and journal.is_pending("id0003")
    assert await journal.flush() == 10
    assert store.count_interactions() == 10 and not journal.is_pending("id0003")
    assert journal.path is not None
    ckpt = journal.path.with_name(journal.path.name + ".ckpt")
    assert int(ckpt.read_text()) == journal.path.stat().st_size
    stored = store.get_interaction("id0005", spans=True)
    assert stored is not None and stored.tool_calls[0].arguments == {"order_id": "5"} and stored.spans
    await journal.aclose()
    assert not journal.path.exists()  # everything reached the store: nothing left to keep
    store.close()


def dead_journal(tmp_path: Path) -> tuple[Store, Path]:
    """A SQLite store in `tmp_path`, and where the journal of a process that died lies (in the
    journal folder `tmp_path/journal`, not written yet)."""
    (tmp_path / "journal").mkdir()
    return _store(tmp_path), tmp_path / "journal" / "1-999-dead.journal"


def test_recovery_loads_what_is_not_in_the_store_once(tmp_path: Path) -> None:
    store, dead = dead_journal(tmp_path)
    jdir = dead.parent
    lines = [encode(record(i)) for i in range(5)]
    dead.write_bytes(b"".join(lines) + lines[0][:15])  # ...and a torn tail
    # the first two already reached the store before the crash (the checkpoint says so)
    store.write_interactions([record(0), record(1)])
    dead.with_name(dead.name + ".ckpt").write_text(str(len(lines[0]) + len(lines[1])))
    journal = Journal(jdir, store)
    assert journal.recover() == 3
    assert store.count_interactions() == 5
    assert not dead.exists()
    assert journal.recover() == 0  # nothing left; and loading twice would be harmless anyway
    store.close()


def test_recovery_leaves_a_living_process_journal_alone(tmp_path: Path) -> None:
    pytest.importorskip("fcntl")
    store = _store(tmp_path)
    alive = Journal(tmp_path / "journal", store)
    alive.open()
    alive.append(record(1))
    other = Journal(tmp_path / "journal", store)
    assert other.recover() == 0  # the file is locked by its owner
    assert alive.path is not None and alive.path.exists()
    os.close(alive._fd)  # type: ignore[arg-type]  # the owner dies: the lock goes with it
    alive._fd = None
    assert other.recover() == 1
    store.close()


async def test_a_failing_store_keeps_records_pending(tmp_path: Path) -> None:
    class Down:
        def write_interactions(self, records: list[InteractionRecord]) -> int:
            raise ConnectionError("database is down")

    journal = Journal(tmp_path / "journal", Down())
    journal.append(record(1))
    with pytest.raises(ConnectionError):
        await journal.flush()
    assert journal.pending == 1 and journal.is_pending("id0001")
    store = _store(tmp_path)
    journal.store = store  # the database is back
    assert await journal.flush() == 1
    assert store.get_interaction("id0001") is not None
    await journal.aclose()
    store.close()


def test_bad_fsync_policy_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fsync"):
        Journal(tmp_path, None, fsync="sometimes")  # type: ignore[arg-type]


@contextlib.contextmanager
def locked(db: Path) -> Iterator[None]:
    """The SQLite database is held by another writer: the store cannot be used (an outage)."""
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


async def test_records_beyond_the_memory_bound_wait_in_the_file_and_reach_the_store_in_order(
    tmp_path: Path,
) -> None:
    db = tmp_path / "db.sqlite"
    at_newest_schema(f"sqlite:///{db}")  # the schema in place
    store = Store(f"sqlite:///{db}?timeout=0.05")
    journal = Journal(tmp_path / "journal", store, batch_size=4, max_memory_records=3)
    journal.open()
    records = [record(i) for i in range(21)]
    with locked(db):
        for r in records[:20]:
            journal.append(r)
        with pytest.raises(Exception, match="locked"):
            await journal.flush()
        assert journal.pending == 20 and journal.in_memory[0] == 3
        on_disk = journal.find_pending("id0002")  # kept in the file only
        assert on_disk == records[2]
        assert journal.find_pending(f"{5:032x}") == records[5]  # by trace id
        assert journal.is_pending("id0000") and journal.is_pending("id0019")
    assert await journal.flush() == 20
    stored = store.list_interactions(limit=None)
    assert sorted(r.id for r in stored) == [f"id{i:04d}" for i in range(20)]
    assert journal.pending == 0 and journal.in_memory == (0, 0) and journal.find_pending("id0002") is None
    assert journal.path is not None
    assert int(journal.path.with_name(journal.path.name + ".ckpt").read_text()) == journal.path.stat().st_size
    # the same journal goes on as usual: new records are held in memory again
    journal.append(records[20])
    assert journal.in_memory[0] == 1 and await journal.flush() == 1
    await journal.aclose()
    store.close()


async def test_a_record_kept_in_the_file_is_found_by_its_own_id_not_by_a_lookalike(tmp_path: Path) -> None:
    store = _store(tmp_path)
    journal = Journal(tmp_path / "journal", store, max_memory_records=0)  # everything waits in the file
    target = record(1)
    lookalike = record(2)
    lookalike.metadata = {"copy": {"id": target.id, "trace_id": target.trace_id, "session_id": "s"}}
    journal.append(target)
    journal.append(lookalike)  # newer, and holds the target's ids in a value
    assert journal.in_memory == (0, 0)
    assert journal.find_pending(target.id) == target
    assert journal.find_pending(target.trace_id) == target
    assert journal.find_pending(lookalike.id) == lookalike
    assert await journal.flush() == 2
    await journal.aclose()
    store.close()


def test_recovery_reads_a_dead_journal_a_batch_at_a_time(tmp_path: Path) -> None:
    store, dead = dead_journal(tmp_path)
    jdir = dead.parent
    with dead.open("wb") as fh:
        for i in range(3000):
            r = record(i)
            r.input = f"question {i} " + "x" * 3000
            fh.write(encode(r))
    size = dead.stat().st_size  # ~10 MB
    journal = Journal(jdir, store, batch_size=50)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        assert journal.recover() == 3000
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak < size / 3, f"recovery peaked at {peak:,} bytes for a {size:,}-byte journal"
    assert store.count_interactions() == 3000 and not dead.exists()
    store.close()


def test_the_memory_bounds_are_the_store_settings(serve_project: Callable[..., Served]) -> None:
    served = serve_project(
        lambda text: text + "\nstore: {journal_memory_records: 7, journal_memory_bytes: 4096}\n"
    )
    journal = served.state.journal
    assert (journal.max_memory_records, journal.max_memory_bytes) == (7, 4096)


async def test_the_journal_rotates_on_size_under_steady_load(tmp_path: Path) -> None:
    """Records keep arriving while the mover writes (it never finds the journal empty): the file still
    rotates at `rotate_bytes`, carrying the pending tail over, and nothing is lost or stored twice."""
    import asyncio

    store = _store(tmp_path)
    loop = asyncio.get_running_loop()
    made = iter(range(10_000))
    total = 600

    class Busy:
        """The store, while clients keep being answered: each write lets two more records in."""

        def write_interactions(self, records: list[InteractionRecord]) -> int:
            for _ in range(2):
                i = next(made)
                if i < total:
                    loop.call_soon_threadsafe(journal.append, record(i))
            return store.write_interactions(records)

    line = len(encode(record(0)))
    journal = Journal(tmp_path / "journal", Busy(), batch_size=8, rotate_bytes=40 * line)
    journal.open()
    for _ in range(8):
        journal.append(record(next(made)))
    sizes = []
    while store.count_interactions() < total:
        await journal.flush()
        assert journal.path is not None
        sizes.append(journal.path.stat().st_size)
        await asyncio.sleep(0)
    assert journal.rotations >= 5
    assert max(sizes) < 60 * line  # bounded by rotate_bytes and the tail it carries
    assert len(list((tmp_path / "journal").glob("*.journal"))) == 1  # old files are gone
    assert store.count_interactions() == total
    await journal.aclose()
    store.close()


async def test_a_rotated_tail_survives_a_crash(tmp_path: Path) -> None:
    store = _store(tmp_path)
    line = len(encode(record(0)))
    journal = Journal(tmp_path / "journal", store, batch_size=4, rotate_bytes=10 * line)
    journal.open()
    for i in range(12):
        journal.append(record(i))
    await journal.flush()
    first = journal.path
    for i in range(12, 30):
        journal.append(record(i))
    # move one batch, then rotate with 14 records still pending (all of them in memory)
    records, stop = await journal._next_batch()
    store.write_interactions(records)
    journal._advance(stop, len(records))
    journal._maybe_rotate()
    assert journal.path != first and first is not None and not first.exists()
    assert journal.pending == 14 and journal.is_pending("id0029")
    os.close(journal._fd)  # type: ignore[arg-type]  # the process dies before the mover runs again
    journal._fd = None
    assert Journal(tmp_path / "journal", store).recover() == 14
    assert store.count_interactions() == 30
    store.close()
