"""An append-only local journal: interaction records survive a crash before they reach the store.

The server appends each finished interaction (with its spans) to the journal BEFORE it sends the
response, and a background task moves journalled records into the store in batches. One file per
process under `.shipyard/journal/`, held with an exclusive `flock` while the process lives (the OS
drops the lock when the process dies, even by SIGKILL).

File format: one record per line, `<crc32 as 8 hex digits> <orjson of the record>\\n` (orjson
escapes newlines inside strings, so a line is a record). A line without its newline or whose
checksum does not match is a torn write and is skipped. Next to each journal, `<name>.ckpt` holds
the byte offset up to which records are in the store.

Durability: `append` is one `write()` to the OS, which survives the process being killed. For
power loss choose `fsync="always"` (every record; slow) or `fsync="batch"` (before each batch is
moved to the store; a crash can lose the records since the last batch).

Memory: records waiting for the store are kept in memory too, the newest at most
`store.journal_memory_records` of them and `store.journal_memory_bytes` of journal lines. During a
long store outage the older ones wait in the file only (the journal remembers where they start, not
what they hold); when the store is back the mover reads them back from the file in batches, in order,
before the ones still in memory, and the checkpoint moves as before. `find_pending` looks in memory
first, then searches that stretch of the file.

Size: once a file passes `rotate_bytes` the journal starts a new one, also under steady load (when
records are always pending): the pending tail is copied over first, then the old file goes (see
`_maybe_rotate`). The checkpoint is written at the end of each flush and at most once a second during
a long one.

Back-pressure: while the store takes records but more than half of the in-memory bounds wait for it
(`store.journal_memory_records` / `_bytes`; the store is slower than traffic, e.g. CPU-starved), an
answer waits in `keep_up` until the mover has brought the backlog down to a quarter of them. Without
it the backlog would spill to the file and the file would grow without bound under steady overload
(rotation cannot drop what the store does not have yet). While the store fails nothing waits: the
journal holds the records and answers keep flowing; what piled up during an outage is excused once the
store is back (it is moved as fast as it can be, while newer records are held to the bound again).

On start, `recover()` loads every journal no living process holds, from its checkpoint on, into
the store (insert-or-ignore by interaction id, so loading twice is harmless) and deletes it.

A record the store refuses (a number out of range, an oversized index entry) never blocks the ones
behind it: the batch is halved until the refused records are found, the others are stored, each
refused one is tried once more sanitized (a NUL byte or lone surrogate made U+FFFD, event
`record_stored_sanitized`), and each refused still becomes a dead letter (server/_dead_letters.py) before the checkpoint moves
past it. Only a store that cannot be used at all (down, locked) keeps records waiting here; then the
mover retries with backoff and `recover()` leaves the journal for the mover to load later, so a
server always starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import mmap
import os
import time
import zlib
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Literal

import orjson

from shipyard._atomic import atomic_write
from shipyard.observe import LoopSupervisor, log_event
from shipyard.server._dead_letters import FOLDER as DEAD_LETTER_FOLDER
from shipyard.server._dead_letters import DeadLetterSink
from shipyard.store import (
    DeadLetter,
    InteractionRecord,
    error_reason,
    isolate,
    new_id,
    private_dir,
)

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks; one process per journal dir
    fcntl = None  # type: ignore[assignment]

FsyncPolicy = Literal["never", "batch", "always"]
SUFFIX = ".journal"
CHECKPOINT_EVERY_S = 1.0


def encode(record: InteractionRecord) -> bytes:
    """One journal line for a record."""
    body = orjson.dumps(record, default=str)
    return b"%08x " % zlib.crc32(body) + body + b"\n"


def decode_record(d: dict[str, Any]) -> InteractionRecord:
    """An InteractionRecord from its JSON form (as orjson wrote it)."""
    return InteractionRecord.from_dict(d)


@dataclass(slots=True)
class ReadResult:
    records: list[InteractionRecord]
    torn: int  # lines skipped: partial writes or checksum mismatches
    ends: list[int] = field(default_factory=list)  # each record's end offset in the file
    stop: int = 0  # the offset reading stopped at: read on from here


def _parse_line(line: bytes) -> InteractionRecord | None:
    """The record of one journal line (without its newline), or None when it is torn or corrupt."""
    if len(line) < 10 or line[8:9] != b" ":
        return None
    body = line[9:]
    try:
        if int(line[:8], 16) != zlib.crc32(body):
            return None
        return decode_record(orjson.loads(body))
    except (ValueError, TypeError):
        return None


def read_journal(
    path: Path, offset: int = 0, *, end: int | None = None, max_records: int | None = None
) -> ReadResult:
    """The intact records of a journal file from byte `offset` on.

    Args:
        path: the journal file.
        offset: where to start (a line's start, e.g. a checkpoint).
        end: stop at this offset (a line's end); default: the end of the file, where a last line
            without its newline is a torn write.
        max_records: stop after this many intact records (reading a file in pieces: go on from the
            result's `stop`); default: no limit.
    """
    records: list[InteractionRecord] = []
    ends: list[int] = []
    torn = 0
    position = offset
    with open(path, "rb") as fh:
        fh.seek(offset)
        while (end is None or position < end) and (max_records is None or len(records) < max_records):
            line = fh.readline()
            if not line:
                break
            position += len(line)
            if not line.endswith(b"\n"):  # the process died mid-write
                torn += 1
                break
            record = _parse_line(line[:-1])
            if record is None:
                torn += 1
                continue
            records.append(record)
            ends.append(position)
    return ReadResult(records, torn, ends, position)


def search_journal(path: Path, ref: str, start: int, end: int) -> InteractionRecord | None:
    """The newest record between byte offsets `start` and `end` (line boundaries) of a journal file
    whose interaction id or trace id is `ref`, or None. A byte search of the file (no decoding but of
    the line found), for records kept on disk only; blocking."""
    if end <= start:
        return None
    quoted = orjson.dumps(ref)
    needles = (b'{"id":' + quoted + b',"trace_id":', b',"trace_id":' + quoted + b',"session_id":')
    try:
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            end = min(end, len(mm))
            while end > start:
                at = max(mm.rfind(needle, start, end) for needle in needles)
                if at < 0:
                    return None
                line_start = mm.rfind(b"\n", start, at) + 1 or start
                line_end = mm.find(b"\n", at, end)
                record = _parse_line(mm[line_start : line_end if line_end >= 0 else end])
                if record is not None and ref in (record.id, record.trace_id):
                    return record
                end = at  # the text matched inside some value: look further back
    except (OSError, ValueError):  # the file was rotated away (its records reached the store)
        return None
    return None


def _stored_sanitized(record: InteractionRecord, fields: list[str]) -> None:
    """A record the store refused was stored sanitized (NUL bytes, lone surrogates made U+FFFD)."""
    log_event("record_stored_sanitized", level="warning", interaction_id=record.id, fields=fields)


def _read_checkpoint(path: Path) -> int:
    try:
        return int(path.read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def _write_checkpoint(path: Path, offset: int) -> None:
    atomic_write(path, str(offset), private=True)


def _try_lock(fd: int) -> bool:
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


@dataclass(slots=True)
class _Held:
    """A pending record kept in memory, and where its line is in the file."""

    record: InteractionRecord
    start: int
    end: int


class Journal:
    """This process's journal and the mover that empties it into the store.

    Args:
        directory: where journal files live (`.shipyard/journal/` of the project).
        store: the Store (anything with `write_interactions(records)`; with `add_dead_letter(letter)`
            too, else dead letters go to files).
        fsync: never | batch | always (see the module docs).
        batch_size: at most this many records per store write.
        flush_interval_s: how often the mover runs when fewer than batch_size records wait.
        rotate_bytes: start a new file once one is this big (the pending tail moves to the new file).
        on_dead_letter: called with each record the store refused, once it is kept aside (for
            metrics and alerts); from the event loop, or from a worker thread during `recover()`.
        dead_letter_folder: where a dead letter goes when the store's table cannot take it
            (default: `dead-letter/` beside the journal folder, i.e. `.shipyard/dead-letter/`).
        max_memory_records: most records waiting for the store that are kept in memory as well
            (the newest); the others wait in the file only and are read back from it.
        max_memory_bytes: the same bound in bytes of their journal lines.
    """

    def __init__(
        self,
        directory: Path,
        store: Any,
        *,
        fsync: FsyncPolicy = "never",
        batch_size: int = 256,
        flush_interval_s: float = 0.2,
        rotate_bytes: int = 64 * 1024 * 1024,
        on_dead_letter: Callable[[DeadLetter], None] | None = None,
        dead_letter_folder: Path | None = None,
        max_memory_records: int = 10_000,
        max_memory_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        if fsync not in ("never", "batch", "always"):
            raise ValueError(f"fsync must be never, batch or always, got {fsync!r}")
        if max_memory_records < 0 or max_memory_bytes < 0:
            raise ValueError("max_memory_records and max_memory_bytes must be >= 0")
        self.directory = Path(directory)
        self.store = store
        self.fsync = fsync
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.rotate_bytes = rotate_bytes
        self._fd: int | None = None
        self.path: Path | None = None
        self._offset = 0  # the end of the file
        # Records from _head (the checkpoint) to _offset are pending. The newest of them are also in
        # memory (_pending, a suffix of that stretch); the ones before _pending[0].start are in the
        # file only, read back by the mover.
        self._head = 0
        self._pending: deque[_Held] = deque()
        self._pending_bytes = 0  # their journal lines' size
        self._pending_count = 0  # every pending record, in memory or not
        self.max_memory_records = max_memory_records
        self.max_memory_bytes = max_memory_bytes
        self._spilling = False  # some pending records are in the file only (logged once per outage)
        self._wake = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self.stored = 0
        self.failures = 0
        self.rotations = 0  # files started because the last one reached rotate_bytes
        self._checkpointed: tuple[Path, int] | None = None  # the checkpoint last written
        self._checkpointed_at = -math.inf
        self.dead_letters = DeadLetterSink(
            store, dead_letter_folder or self.directory.parent / DEAD_LETTER_FOLDER
        )
        self.on_dead_letter = on_dead_letter
        self._dead_ids: OrderedDict[str, DeadLetter] = OrderedDict()  # the newest, by record id
        self._deferred = False  # a dead process's journal is waiting for the store to come back
        # back-pressure (`keep_up`): answers wait while the store takes records but lags by more than
        # half the memory bounds (records beyond `_excused`: what an outage left is not held against them)
        self.backlog_records = max(max_memory_records, 4 * batch_size) // 2
        self.backlog_bytes = max(max_memory_bytes, 4 * 1024 * 1024) // 2
        self._store_ok = True  # the mover's last store write succeeded
        self._excused = 0
        self._caught_up = asyncio.Event()
        self._caught_up.set()
        self.held_back = 0  # answers that waited for the store to catch up

    # files -----------------------------------------------------------------------------------------
    def open(self) -> Path:
        """Create and lock this process's journal file."""
        private_dir(self.directory)  # 0700, and `.shipyard/` too (store/_files.py)
        name = f"{int(time.time() * 1000)}-{os.getpid()}-{new_id()[:8]}{SUFFIX}"
        path = self.directory / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        _try_lock(fd)
        self._fd, self.path, self._offset, self._head = fd, path, 0, 0
        return path

    def _checkpoint_path(self, path: Path) -> Path:
        return path.with_name(path.name + ".ckpt")

    def _journal_files(self) -> Iterator[Path]:
        if self.directory.is_dir():
            yield from sorted(self.directory.glob(f"*{SUFFIX}"))

    def recover(self) -> int:
        """Load the journals of dead processes into the store; return how many records were loaded.

        Records the store refuses become dead letters. When the store cannot be used at all, the
        journal stays where it is (with its checkpoint) and the mover loads it once the store is
        back: recovery never stops a server from starting."""
        loaded = 0
        self._deferred = False
        for path in self._journal_files():
            if path == self.path:
                continue
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue  # another process recovered it first
            try:
                if not _try_lock(fd):
                    continue  # a living process owns it
                ckpt = self._checkpoint_path(path)
                position, records, torn = _read_checkpoint(ckpt), 0, 0
                try:
                    while True:  # a batch at a time: a journal of a long outage never sits in memory
                        result = read_journal(path, position, max_records=self.batch_size)
                        if result.stop == position:
                            break
                        for letter in self._move(result.records):
                            self._dead_letter_moved(letter)
                        _write_checkpoint(ckpt, result.stop)
                        position, records, torn = (
                            result.stop,
                            records + len(result.records),
                            torn + result.torn,
                        )
                except Exception as e:  # the store cannot be used: keep the journal for later
                    self._deferred = True
                    log_event(
                        "journal_recovery_deferred",
                        level="error",
                        journal=path.name,
                        error=error_reason(e, 500).splitlines()[0],
                    )
                    return loaded
                loaded += records
                # every journal of a dead process is reported, even when all it held had reached the store
                log_event("journal_recovered", journal=path.name, records=records, torn=torn)
                path.unlink(missing_ok=True)
                ckpt.unlink(missing_ok=True)
            finally:
                os.close(fd)
        return loaded

    # the hot path ----------------------------------------------------------------------------------
    def append(self, record: InteractionRecord) -> None:
        """Write one record to the journal (one write() to the OS) and queue it for the store."""
        if self._fd is None:
            self.open()
        assert self._fd is not None
        line = encode(record)
        os.write(self._fd, line)
        if self.fsync == "always":
            os.fsync(self._fd)
        start, self._offset = self._offset, self._offset + len(line)
        self._pending.append(_Held(record, start, self._offset))
        self._pending_bytes += len(line)
        self._pending_count += 1
        if len(self._pending) > self.max_memory_records or self._pending_bytes > self.max_memory_bytes:
            self._spill()
        if self._pending_count >= self.batch_size:
            self._wake.set()

    def _spill(self) -> None:
        """Keep the oldest records in memory in the file only, until memory is within its bounds."""
        while self._pending and (
            len(self._pending) > self.max_memory_records or self._pending_bytes > self.max_memory_bytes
        ):
            held = self._pending.popleft()
            self._pending_bytes -= held.end - held.start
        if not self._spilling:
            self._spilling = True
            log_event(
                "journal_memory_full",
                level="warning",
                pending=self._pending_count,
                in_memory=len(self._pending),
                detail="older records wait in the journal file only; they are read back from it "
                "when the store takes records again",
            )

    def is_pending(self, interaction_id: str) -> bool:
        """True while a record is journalled but not yet in the store (`find_pending`: blocking when
        it must search the file)."""
        return self.find_pending(interaction_id) is not None

    def dead_letter_of(self, interaction_id: str) -> DeadLetter | None:
        """The dead letter of a record this process saw refused (the newest 1,000 are remembered)."""
        return self._dead_ids.get(interaction_id)

    def find_pending(self, ref: str) -> InteractionRecord | None:
        """A journalled record not yet in the store, by interaction id or trace id (newest first).
        Blocking when the record is kept in the file only (it is searched); `afind_pending` searches
        in a thread."""
        return self._find_in_memory(ref) or self._search_file(ref)

    async def afind_pending(self, ref: str) -> InteractionRecord | None:
        """`find_pending`, searching the file (when it must) in a worker thread."""
        found = self._find_in_memory(ref)
        where = self._file_only()
        if found is None and where is not None:
            found = await asyncio.to_thread(search_journal, where[0], ref, where[1], where[2])
        return found

    def _find_in_memory(self, ref: str) -> InteractionRecord | None:
        for held in reversed(self._pending):
            if held.record.id == ref or held.record.trace_id == ref:
                return held.record
        return None

    def _file_only(self) -> tuple[Path, int, int] | None:
        """The file and the byte range of the pending records kept there only, if there are any."""
        end = self._pending[0].start if self._pending else self._offset
        return (self.path, self._head, end) if self.path is not None and end > self._head else None

    def _search_file(self, ref: str) -> InteractionRecord | None:
        where = self._file_only()
        return search_journal(where[0], ref, where[1], where[2]) if where is not None else None

    @property
    def pending(self) -> int:
        """How many records are journalled and not yet in the store."""
        return self._pending_count

    @property
    def in_memory(self) -> tuple[int, int]:
        """How many pending records are held in memory too, and their journal lines' size in bytes."""
        return len(self._pending), self._pending_bytes

    # back-pressure -----------------------------------------------------------------------------------
    def _lagging(self, share: float) -> bool:
        """The store takes records but more than `share` of the backlog bounds wait for it."""
        return self._store_ok and (
            self._pending_count - self._excused > self.backlog_records * share
            or self._pending_bytes > self.backlog_bytes * share
        )

    async def keep_up(self) -> None:
        """Wait, when the store lags behind by more than the backlog bounds while it takes records,
        until the mover has brought the backlog down to half of them (see the module docs). Returns at
        once otherwise, and as soon as the store fails."""
        if not self._lagging(1.0):
            return
        if self._caught_up.is_set():  # the first answer held back: say so once per episode
            log_event(
                "journal_backpressure",
                level="warning",
                pending=self._pending_count,
                pending_bytes=self._pending_bytes,
                hint="the store takes records more slowly than traffic arrives; answers wait for it",
            )
        self.held_back += 1
        while self._lagging(0.5):
            self._caught_up.clear()
            await self._caught_up.wait()

    def _store_failed(self) -> None:
        """The store could not be written: nothing waits for it (the journal holds the records)."""
        self._store_ok = False
        self._caught_up.set()

    # the mover -------------------------------------------------------------------------------------
    async def flush(self) -> int:
        """Move every pending record into the store now, in the order they were journalled (those in
        the file only are read back from it, a batch at a time); return how many were moved."""
        moved = 0
        async with self._flush_lock:
            while self._head < self._offset:
                if self.fsync == "batch" and self._fd is not None:
                    await asyncio.to_thread(os.fsync, self._fd)
                records, stop = await self._next_batch()
                try:
                    letters = await asyncio.to_thread(self._move, records)
                except BaseException:
                    self._store_failed()
                    raise
                if not self._store_ok:  # back after an outage: what piled up meanwhile is excused
                    self._store_ok, self._excused = True, self._pending_count
                for letter in letters:
                    self._dead_letter_moved(letter)
                n = len(records)
                # a batch read back from the file is held only while it moves: not while the next is read
                del records, letters
                self._advance(stop, n)
                moved += n
                self.stored += n
                self._checkpoint(final=False)
                self._maybe_rotate()  # also mid-flush: under steady load the loop may never drain
            self._checkpoint(final=True)
            self._maybe_rotate()
        return moved

    def _checkpoint(self, *, final: bool) -> None:
        """Write where the store has everything up to: at the end of each flush, and during a long one
        (steady load) at most every CHECKPOINT_EVERY_S. A checkpoint that lags only makes recovery
        insert again records the store already has, which it ignores."""
        if self.path is None or self._checkpointed == (self.path, self._head):
            return
        now = time.monotonic()
        if not final and now - self._checkpointed_at < CHECKPOINT_EVERY_S:
            return
        _write_checkpoint(self._checkpoint_path(self.path), self._head)
        self._checkpointed, self._checkpointed_at = (self.path, self._head), now

    async def _next_batch(self) -> tuple[list[InteractionRecord], int]:
        """The next records to move (at most batch_size, from _head on) and the offset they end at."""
        file_only = self._file_only()
        if file_only is None:
            batch = list(islice(self._pending, self.batch_size))
            return [h.record for h in batch], batch[-1].end
        path, start, end = file_only
        result = await asyncio.to_thread(read_journal, path, start, end=end, max_records=self.batch_size)
        if result.stop <= start:  # the file lost what it held (truncated by someone): never loop on it
            log_event("journal_records_lost", level="error", journal=path.name, start=start, end=end)
            return [], end
        return result.records, result.stop

    def _advance(self, stop: int, moved: int) -> None:
        """Records up to byte `stop` reached the store (or became dead letters): forget them."""
        self._head = stop
        while self._pending and self._pending[0].end <= stop:
            held = self._pending.popleft()
            self._pending_bytes -= held.end - held.start
        self._pending_count = max(self._pending_count - moved, len(self._pending))
        if stop >= self._offset:
            self._pending_count = 0
        self._excused = max(min(self._excused - moved, self._pending_count), 0)
        if self._file_only() is None:
            self._spilling = False
        if not self._caught_up.is_set() and not self._lagging(0.5):
            self._caught_up.set()

    def _move(self, records: list[InteractionRecord]) -> list[DeadLetter]:
        """Write records to the store; keep the ones it refuses as dead letters and return them (the
        caller passes each to `_dead_letter_moved`). Blocking: call in a thread. Raises when the store
        cannot be used (nothing is lost: the caller keeps the records)."""
        refused = isolate(self.store.write_interactions, records, on_sanitized=_stored_sanitized)
        return [self.dead_letters.divert(r, e)[0] for r, e in refused]

    def _dead_letter_moved(self, letter: DeadLetter) -> None:
        self._dead_ids[letter.record_id] = letter
        while len(self._dead_ids) > 1000:
            self._dead_ids.popitem(last=False)
        if self.on_dead_letter is not None:
            self.on_dead_letter(letter)

    def _maybe_rotate(self) -> None:
        """Start a new file once this one holds `rotate_bytes`, also while records are pending (under
        steady load some always are): the pending tail (the byte range from the checkpoint on, all of it
        in memory too) is copied to the new file first, then the old file and its checkpoint go. A
        crash in between leaves both files; recovery inserts the tail twice, which the store ignores.
        Synchronous, so no append runs in between. While some pending records are in the file only (a
        store outage), it waits: that stretch may be large and is read back from this file."""
        if self._offset < self.rotate_bytes or self.path is None or self._fd is None:
            return
        if self._file_only() is not None:
            return
        old_fd, old, head, end = self._fd, self.path, self._head, self._offset
        tail = b""
        if head < end:
            with open(old, "rb") as fh:
                fh.seek(head)
                tail = fh.read(end - head)
        self.open()
        assert self._fd is not None and self.path is not None
        if tail:
            os.write(self._fd, tail)
            if self.fsync != "never":
                os.fsync(self._fd)
            self._offset = len(tail)
            for held in self._pending:
                held.start -= head
                held.end -= head
        _write_checkpoint(self._checkpoint_path(self.path), 0)
        self._checkpointed = (self.path, 0)
        os.close(old_fd)
        old.unlink(missing_ok=True)
        self._checkpoint_path(old).unlink(missing_ok=True)
        self.rotations += 1

    async def run(self, *, loops: LoopSupervisor | None = None) -> None:
        """Move records to the store until cancelled: every flush_interval_s, or at once when a
        full batch waits. A failing store is retried with backoff; the journal keeps the records.
        Each failed pass is also reported to `loops` as loop `journal_mover` (logged with its
        traceback, counted, alerted when it keeps failing)."""
        supervisor = loops or LoopSupervisor()
        backoff = self.flush_interval_s
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_interval_s)
            self._wake.clear()
            try:
                await self.flush()
                if self._deferred:  # a dead process's journal waited for the store: load it now
                    await asyncio.to_thread(self.recover)
                    if self._deferred:
                        raise RuntimeError("a dead process's journal still waits for the store")
                backoff = self.flush_interval_s
                supervisor.succeeded("journal_mover")
            except Exception as e:  # the database cannot be used: keep the records, try again
                self.failures += 1
                supervisor.failed("journal_mover", e)
                log_event(
                    "journal_store_write_failed",
                    level="error",
                    pending=self.pending,
                    error=error_reason(e, 500).splitlines()[0],
                )
                backoff = min(backoff * 2, 30.0)
                await asyncio.sleep(backoff)

    async def aclose(self) -> None:
        """Flush what is pending; remove the file when everything reached the store."""
        try:
            await self.flush()
        except Exception as e:
            log_event(
                "journal_store_write_failed",
                level="error",
                pending=self.pending,
                error=error_reason(e, 500).splitlines()[0],
            )
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            if self._head >= self._offset and self.path is not None:
                self.path.unlink(missing_ok=True)
                self._checkpoint_path(self.path).unlink(missing_ok=True)
