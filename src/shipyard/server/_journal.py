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
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson

from shipyard.observe import log_event
from shipyard.store import InteractionRecord, LLMCallRecord, SpanRecord, ToolCallRecord, new_id

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
    d = dict(d)
    d["tool_calls"] = [ToolCallRecord(**t) for t in d.get("tool_calls") or []]
    d["llm_calls"] = [LLMCallRecord(**c) for c in d.get("llm_calls") or []]
    d["spans"] = [SpanRecord(**s) for s in d.get("spans") or []]
    return InteractionRecord(**d)


@dataclass(slots=True)
class ReadResult:
    records: list[InteractionRecord]
    torn: int  # lines skipped: partial writes or checksum mismatches


def read_journal(path: Path, offset: int = 0) -> ReadResult:
    """The intact records of a journal file from byte `offset` on."""
    with open(path, "rb") as fh:
        fh.seek(offset)
        data = fh.read()
    lines = data.split(b"\n")
    tail = lines.pop()  # after the last newline: empty, or a torn write
    torn = 1 if tail else 0
    records: list[InteractionRecord] = []
    for line in lines:
        if len(line) < 10 or line[8:9] != b" ":
            torn += 1
            continue
        body = line[9:]
        try:
            if int(line[:8], 16) != zlib.crc32(body):
                torn += 1
                continue
            records.append(decode_record(orjson.loads(body)))
        except (ValueError, TypeError):
            torn += 1
    return ReadResult(records, torn)


def _read_checkpoint(path: Path) -> int:
    try:
        return int(path.read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def _write_checkpoint(path: Path, offset: int) -> None:
    tmp = path.with_suffix(".ckpt.tmp")
    tmp.write_text(str(offset))
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
        store: the Store (anything with `write_interactions(records)`).
        fsync: never | batch | always (see the module docs).
        batch_size: at most this many records per store write.
        flush_interval_s: how often the mover runs when fewer than batch_size records wait.
        rotate_bytes: start a new file once everything in a file this big is in the store.
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

    # files -----------------------------------------------------------------------------------------
    def open(self) -> Path:
        """Create and lock this process's journal file."""
        self.directory.mkdir(parents=True, exist_ok=True)
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
        """Load the journals of dead processes into the store; return how many records were loaded."""
        loaded = 0
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
                for i in range(0, len(result.records), self.batch_size):
                    self.store.write_interactions(result.records[i : i + self.batch_size])
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
                await asyncio.to_thread(self.store.write_interactions, [r for r, _ in batch])
                del self._pending[: len(batch)]
                for r, _ in batch:
                    self._pending_ids.discard(r.id)
                moved += len(batch)
                self.stored += len(batch)
                if self.path is not None:
                    _write_checkpoint(self._checkpoint_path(self.path), batch[-1][1])
            self._maybe_rotate()
        return moved

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
                backoff = self.flush_interval_s
            except Exception as e:  # the database is down or refused the batch: keep it, try again
                self.failures += 1
                log_event(
                    "journal_store_write_failed",
                    level="error",
                    pending=len(self._pending),
                    error=f"{type(e).__name__}: {e}"[:500],
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
                error=f"{type(e).__name__}: {e}"[:500],
            )
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            if not self._pending and self.path is not None:
                self.path.unlink(missing_ok=True)
                self._checkpoint_path(self.path).unlink(missing_ok=True)
