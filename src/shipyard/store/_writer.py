"""The background batch writer: the hot path hands records over and never waits on the database.

One thread drains an in-memory queue in batches (up to `batch_size`, or whatever arrived within
`flush_interval_ms`) and writes each batch, spans included, in one transaction. A batch the database
refuses because of its records (`is_refusal`) is halved until the refused records are found; each
is tried once more sanitized (a NUL byte or lone surrogate made U+FFFD), and each refused still
becomes a dead letter (store/_dead_letters.py), logged and counted, and the others are written. Any
other failure (database locked, connection lost) is retried with backoff until it succeeds or the
writer is closed past its deadline.
"""

from __future__ import annotations

import atexit
import collections
import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from shipyard.store._dead_letters import dead_letter_for, isolate
from shipyard.store._records import InteractionRecord
from shipyard.store._store import Store

log = logging.getLogger("shipyard.store")

_BACKLOG_WARNING = 100_000


class BatchWriter:
    """Writes interaction records from a background thread.

    Args:
        store: where records go.
        batch_size: most records per transaction.
        flush_interval_ms: longest a record waits for its batch to fill.
        max_backoff_s: longest pause between retries of a failing write.
    """

    def __init__(
        self,
        store: Store,
        batch_size: int = 256,
        flush_interval_ms: int = 200,
        *,
        max_backoff_s: float = 5.0,
    ) -> None:
        if batch_size < 1 or flush_interval_ms < 1:
            raise ValueError("batch_size and flush_interval_ms must be positive")
        self.store = store
        self.batch_size = batch_size
        self.interval = flush_interval_ms / 1000
        self.max_backoff = max_backoff_s
        self._queue: collections.deque[InteractionRecord] = collections.deque()
        self._cond = threading.Condition()
        self._submitted = 0
        self._done = 0  # written + failed: everything up to here is settled
        self._written = 0
        self._failed = 0
        self._retries = 0
        self._batches = 0
        self._urgent = 0  # flush() callers waiting: write without waiting for a full batch
        self._closing = False
        self._deadline: float | None = None  # give up retrying after this (set by close)
        self._warned_backlog = False
        self._thread = threading.Thread(target=self._run, name="shipyard-store-writer", daemon=True)
        self._thread.start()
        self._atexit = _closer(weakref.ref(self))
        atexit.register(self._atexit)

    @classmethod
    def from_config(cls, store: Store, cfg: Any) -> BatchWriter:
        """A writer with the batch settings of `cfg.store` (a ShipyardConfig)."""
        return cls(store, cfg.store.batch_size, cfg.store.flush_interval_ms)

    def submit(self, record: InteractionRecord) -> None:
        """Queue a record (and its spans) for writing; returns at once."""
        with self._cond:
            if self._closing:
                raise RuntimeError("BatchWriter is closed")
            self._queue.append(record)
            self._submitted += 1
            backlog = len(self._queue)
            if backlog >= self.batch_size:
                self._cond.notify_all()
        if backlog >= _BACKLOG_WARNING and not self._warned_backlog:
            self._warned_backlog = True
            log.warning("store writer backlog is %d records: the database is not keeping up", backlog)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything submitted so far is written (or has failed for good).
        Returns False if `timeout` seconds passed first."""
        with self._cond:
            target = self._submitted
            self._urgent += 1
            self._cond.notify_all()
            try:
                return self._cond.wait_for(lambda: self._done >= target, timeout)
            finally:
                self._urgent -= 1

    def close(self, timeout: float | None = 30.0) -> bool:
        """Write everything queued, then stop the thread. Retries of a failing database go on for
        at most `timeout` seconds; records still unwritten then are logged and counted as failed.
        Returns True when nothing was lost. Closing twice is harmless."""
        with self._cond:
            if not self._closing:
                self._closing = True
                self._deadline = None if timeout is None else time.monotonic() + timeout
            self._cond.notify_all()
        self._thread.join()
        atexit.unregister(self._atexit)
        with self._cond:
            return self._failed == 0 and self._done == self._submitted

    def stats(self) -> dict[str, int]:
        """Counters for metrics: submitted, written, failed, pending, retries, batches."""
        with self._cond:
            return {
                "submitted": self._submitted,
                "written": self._written,
                "failed": self._failed,
                "pending": self._submitted - self._done,
                "retries": self._retries,
                "batches": self._batches,
            }

    def __enter__(self) -> BatchWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # the thread ------------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            written, failed = self._write(batch)
            with self._cond:
                self._written += written
                self._failed += failed
                self._done += len(batch)
                self._batches += 1
                self._cond.notify_all()

    def _next_batch(self) -> list[InteractionRecord] | None:
        """Wait for a full batch, a flush, close, or the oldest record's interval; None when done."""
        with self._cond:
            while not self._queue:
                if self._closing:
                    return None
                self._cond.wait()
            due = time.monotonic() + self.interval
            while len(self._queue) < self.batch_size and not self._urgent and not self._closing:
                left = due - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            n = min(len(self._queue), self.batch_size)
            return [self._queue.popleft() for _ in range(n)]

    def _write(self, batch: list[InteractionRecord]) -> tuple[int, int]:
        """Write a batch; returns (written, failed). Records the database refuses are found and kept
        as dead letters (`store.dead_letters`); the others are written."""
        refused, error = self._write_with_retry(batch)
        if error is not None:
            ids = ", ".join(r.id for r in batch[:10]) + (" ..." if len(batch) > 10 else "")
            log.error("store writer: %d interaction(s) not written (%s): %s", len(batch), ids, error)
            return 0, len(batch)
        for record, e in refused:
            letter = dead_letter_for(record, e)
            try:
                self.store.add_dead_letter(letter)
                kept = f"kept as dead letter {letter.id}"
            except Exception as again:  # the writer must survive anything
                kept = f"and could not be kept as a dead letter either: {again}"
            reason = letter.reason.splitlines()[0]  # later lines may quote the row's content
            log.error("store writer: interaction %s refused (%s), %s", record.id, reason, kept)
        return len(batch) - len(refused), len(refused)

    def _write_with_retry(
        self, batch: list[InteractionRecord]
    ) -> tuple[list[tuple[InteractionRecord, BaseException]], Exception | None]:
        """Write, retrying with backoff while the database cannot be used (locked, unreachable);
        returns the records it refused, or the last error when close's deadline ended the retries."""
        delay = 0.05
        while True:
            try:
                return isolate(self.store.write_interactions, batch), None
            except Exception as e:  # the thread must survive anything a write raises
                with self._cond:
                    if self._deadline is not None and time.monotonic() + delay > self._deadline:
                        return [], e
                    self._retries += 1
                log.warning(
                    "store writer: write of %d record(s) failed, retrying in %.2fs: %s", len(batch), delay, e
                )
                time.sleep(delay)
                delay = min(delay * 2, self.max_backoff)


def _closer(ref: weakref.ref[BatchWriter]) -> Callable[[], None]:
    """An exit hook that drains the writer, if it still exists, on interpreter shutdown."""

    def close() -> None:
        writer = ref()
        if writer is not None:
            writer.close(timeout=10)

    return close
