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

On start, `recover()` loads every journal no living process holds, from its checkpoint on, into
the store (insert-or-ignore by interaction id, so loading twice is harmless) and deletes it.

A record the store refuses (a NUL byte PostgreSQL cannot hold, a number out of range) never blocks
the ones behind it: the batch is halved until the refused records are found, the others are stored,
and each refused one becomes a dead letter (server/_dead_letters.py) before the checkpoint moves
past it. Only a store that cannot be used at all (down, locked) keeps records waiting here; then the
mover retries with backoff and `recover()` leaves the journal for the mover to load later, so a
server always starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson

from shipyard.observe import log_event
from shipyard.server._dead_letters import FOLDER as DEAD_LETTER_FOLDER
from shipyard.server._dead_letters import DeadLetterSink
from shipyard.store import (
    DeadLetter,
    InteractionRecord,
    error_reason,
    isolate,
    new_id,
    private_dir,
    private_file,
)

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks; one process per journal dir
    fcntl = None  # type: ignore[assignment]

FsyncPolicy = Literal["never", "batch", "always"]
SUFFIX = ".journal"


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


def read_journal(path: Path, offset: int = 0) -> ReadResult:
    """The intact records of a journal file from byte `offset` on."""
    with open(path, "rb") as fh:
        fh.seek(offset)
        data = fh.read()
    lines = data.split(b"\n")
    tail = lines.pop()  # after the last newline: empty, or a torn write
    torn = 1 if tail else 0
    records: list[InteractionRecord] = []
    ends: list[int] = []
    end = offset
    for line in lines:
        end += len(line) + 1
        if len(line) < 10 or line[8:9] != b" ":
            torn += 1
            continue
        body = line[9:]
        try:
            if int(line[:8], 16) != zlib.crc32(body):
                torn += 1
                continue
            records.append(decode_record(orjson.loads(body)))
            ends.append(end)
        except (ValueError, TypeError):
            torn += 1
    return ReadResult(records, torn, ends)


def _read_checkpoint(path: Path) -> int:
    try:
        return int(path.read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def _write_checkpoint(path: Path, offset: int) -> None:
    tmp = path.with_suffix(".ckpt.tmp")
    private_file(tmp).write_text(str(offset))
    os.replace(tmp, path)


def _try_lock(fd: int) -> bool:
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


class Journal:
    """This process's journal and the mover that empties it into the store.

    Args:
        directory: where journal files live (`.shipyard/journal/` of the project).
        store: the Store (anything with `write_interactions(records)`; with `add_dead_letter(letter)`
            too, else dead letters go to files).
        fsync: never | batch | always (see the module docs).
        batch_size: at most this many records per store write.
        flush_interval_s: how often the mover runs when fewer than batch_size records wait.
        rotate_bytes: start a new file once everything in a file this big is in the store.
        on_dead_letter: called with each record the store refused, once it is kept aside (for
            metrics and alerts); from the event loop, or from a worker thread during `recover()`.
        dead_letter_folder: where a dead letter goes when the store's table cannot take it
            (default: `dead-letter/` beside the journal folder, i.e. `.shipyard/dead-letter/`).
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
    ) -> None:
        if fsync not in ("never", "batch", "always"):
            raise ValueError(f"fsync must be never, batch or always, got {fsync!r}")
        self.directory = Path(directory)
        self.store = store
        self.fsync = fsync
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.rotate_bytes = rotate_bytes
        self._fd: int | None = None
        self.path: Path | None = None
        self._offset = 0
        self._pending: list[tuple[InteractionRecord, int]] = []  # (record, end offset in the file)
        self._pending_ids: set[str] = set()
        self._wake = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self.stored = 0
        self.failures = 0
        self.dead_letters = DeadLetterSink(
            store, dead_letter_folder or self.directory.parent / DEAD_LETTER_FOLDER
        )
        self.on_dead_letter = on_dead_letter
        self._dead_ids: OrderedDict[str, DeadLetter] = OrderedDict()  # the newest, by record id
        self._deferred = False  # a dead process's journal is waiting for the store to come back

    # files -----------------------------------------------------------------------------------------
    def open(self) -> Path:
        """Create and lock this process's journal file."""
        private_dir(self.directory)  # 0700, and `.shipyard/` too (store/_files.py)
        name = f"{int(time.time() * 1000)}-{os.getpid()}-{new_id()[:8]}{SUFFIX}"
        path = self.directory / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        _try_lock(fd)
        self._fd, self.path, self._offset = fd, path, 0
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
                result = read_journal(path, _read_checkpoint(ckpt))
                try:
                    for i in range(0, len(result.records), self.batch_size):
                        self._move(result.records[i : i + self.batch_size], notify_now=True)
                        _write_checkpoint(ckpt, result.ends[min(i + self.batch_size, len(result.ends)) - 1])
                except Exception as e:  # the store cannot be used: keep the journal for later
                    self._deferred = True
                    log_event(
                        "journal_recovery_deferred",
                        level="error",
                        journal=path.name,
                        error=error_reason(e, 500).splitlines()[0],
                    )
                    return loaded
                loaded += len(result.records)
                # every journal of a dead process is reported, even when all it held had reached the store
                log_event(
                    "journal_recovered", journal=path.name, records=len(result.records), torn=result.torn
                )
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
        self._offset += len(line)
        self._pending.append((record, self._offset))
        self._pending_ids.add(record.id)
        if len(self._pending) >= self.batch_size:
            self._wake.set()

    def is_pending(self, interaction_id: str) -> bool:
        """True while a record is journalled but not yet in the store."""
        return interaction_id in self._pending_ids

    def dead_letter_of(self, interaction_id: str) -> DeadLetter | None:
        """The dead letter of a record this process saw refused (the newest 1,000 are remembered)."""
        return self._dead_ids.get(interaction_id)

    def find_pending(self, ref: str) -> InteractionRecord | None:
        """A journalled record not yet in the store, by interaction id or trace id (newest first)."""
        for record, _ in reversed(self._pending):
            if record.id == ref or record.trace_id == ref:
                return record
        return None

    @property
    def pending(self) -> int:
        return len(self._pending)

    # the mover -------------------------------------------------------------------------------------
    async def flush(self) -> int:
        """Move every pending record into the store now; return how many were stored."""
        moved = 0
        async with self._flush_lock:
            while self._pending:
                batch = self._pending[: self.batch_size]
                if self.fsync == "batch" and self._fd is not None:
                    await asyncio.to_thread(os.fsync, self._fd)
                letters = await asyncio.to_thread(self._move, [r for r, _ in batch])
                for letter in letters:
                    self._dead_letter_moved(letter)
                del self._pending[: len(batch)]
                for r, _ in batch:
                    self._pending_ids.discard(r.id)
                moved += len(batch)
                self.stored += len(batch)
                if self.path is not None:
                    _write_checkpoint(self._checkpoint_path(self.path), batch[-1][1])
            self._maybe_rotate()
        return moved

    def _move(self, records: list[InteractionRecord], *, notify_now: bool = False) -> list[DeadLetter]:
        """Write records to the store; keep the ones it refuses as dead letters (blocking: call in a
        thread). Raises when the store cannot be used (nothing is lost: the caller keeps them)."""
        letters = [
            self.dead_letters.divert(r, e)[0] for r, e in isolate(self.store.write_interactions, records)
        ]
        if notify_now:
            for letter in letters:
                self._dead_letter_moved(letter)
        return letters

    def _dead_letter_moved(self, letter: DeadLetter) -> None:
        self._dead_ids[letter.record_id] = letter
        while len(self._dead_ids) > 1000:
            self._dead_ids.popitem(last=False)
        if self.on_dead_letter is not None:
            self.on_dead_letter(letter)

    def _maybe_rotate(self) -> None:
        if self._pending or self._offset < self.rotate_bytes or self.path is None or self._fd is None:
            return
        old_fd, old = self._fd, self.path
        self.open()
        os.close(old_fd)
        old.unlink(missing_ok=True)
        self._checkpoint_path(old).unlink(missing_ok=True)

    async def run(self) -> None:
        """Move records to the store until cancelled: every flush_interval_s, or at once when a
        full batch waits. A failing store is retried with backoff; the journal keeps the records."""
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
            except Exception as e:  # the database cannot be used: keep the records, try again
                self.failures += 1
                log_event(
                    "journal_store_write_failed",
                    level="error",
                    pending=len(self._pending),
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
                pending=len(self._pending),
                error=error_reason(e, 500).splitlines()[0],
            )
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            if not self._pending and self.path is not None:
                self.path.unlink(missing_ok=True)
                self._checkpoint_path(self.path).unlink(missing_ok=True)
