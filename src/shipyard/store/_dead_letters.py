"""Dead letters: records the database refused, kept aside with the reason so they block nothing.

A batch write that fails because of the records it carries (`is_refusal`) is halved until the
refused records are found (`isolate`); every other record is written. A refused record is tried once
more sanitized (store/_sanitize.py: a NUL byte or a lone surrogate an agent produced becomes U+FFFD,
noted in `metadata.sanitized`), so one character never costs an answered interaction its record.
Each record refused still becomes a dead letter: the reason and the whole record as JSON, in the `dead_letters` table. A dead letter's
id is a hash of the record's kind and id, so refusing one record twice (a retried batch, two
replicas recovering one journal) keeps one dead letter whose `attempts` grows.

The record is kept as JSON text, not as a JSON column: PostgreSQL's JSONB refuses the very values
(NUL bytes) that may be in a dead letter, while orjson's text escapes them.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Column, Double, Engine, Integer, String, Table, Text, delete, func, select

from shipyard.store._errors import error_reason, is_refusal, printable
from shipyard.store._models import metadata
from shipyard.store._records import InteractionRecord
from shipyard.store._sanitize import store_safe, store_text

if TYPE_CHECKING:
    from sqlalchemy import Insert

    from shipyard.store._backends import StoreBackend

log = logging.getLogger("shipyard.store")
_ID_LIMIT = 512  # a record id longer than this is shortened in the row (the payload keeps it whole)


def dead_letter_id(kind: str, record_id: str) -> str:
    """The id of the dead letter of one record: the same record always gets the same id."""
    return hashlib.sha256(f"{kind}\n{record_id}".encode("utf-8", "surrogatepass")).hexdigest()[:32]


@dataclass(slots=True)
class DeadLetter:
    """A record the database refused.

    Args:
        kind: what the record is (`interaction`).
        record_id: the record's own id (shortened past 512 characters; NUL bytes shown as `\\x00`).
        error_type: the class of the error, e.g. `DataError`.
        reason: the database's message (see `error_reason`).
        payload: the whole record as JSON text.
        created_at: when it was first refused (epoch seconds).
        attempts: how many times writing it failed.
        last_attempt_at: when writing it last failed (epoch seconds).
        id: derived from kind and record id unless given.
    """

    kind: str
    record_id: str
    error_type: str
    reason: str
    payload: str
    created_at: float = field(default_factory=time.time)
    attempts: int = 1
    last_attempt_at: float | None = None
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            self.id = dead_letter_id(self.kind, self.record_id)
        self.record_id = printable(self.record_id, _ID_LIMIT)
        self.error_type = printable(self.error_type, 200)

    def record(self) -> InteractionRecord:
        """The refused record, rebuilt from its JSON."""
        return InteractionRecord.from_dict(orjson.loads(self.payload))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def error_type(error: BaseException) -> str:
    """The class name of the driver's error inside a SQLAlchemy one (`DataError`), else of `error`."""
    return type(getattr(error, "orig", None) or error).__name__


def dead_letter_for(record: InteractionRecord, error: BaseException) -> DeadLetter:
    """The dead letter of an interaction record that `error` refused."""
    try:
        payload = _payload(record)
    except (TypeError, ValueError, RecursionError):  # a lone surrogate orjson refuses: keep it sanitized
        try:
            payload = _payload(store_safe(record)[0])
        except (TypeError, ValueError, RecursionError) as e:  # keep what can be kept, and say so
            text = store_text(repr(record))
            payload = orjson.dumps(
                {"id": store_text(record.id), "unserializable": f"{e}", "repr": text}
            ).decode()
    return DeadLetter(
        kind="interaction",
        record_id=str(record.id),
        error_type=error_type(error),
        reason=error_reason(error),
        payload=payload,
    )


def _payload(record: InteractionRecord) -> str:
    return orjson.dumps(record, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def isolate(
    write: Callable[[list[InteractionRecord]], Any],
    records: Sequence[InteractionRecord],
    *,
    on_sanitized: Callable[[InteractionRecord, list[str]], None] | None = None,
) -> list[tuple[InteractionRecord, BaseException]]:
    """Write `records` with `write`; when the database refuses the batch, halve it until the refused
    records are found, and write every other one. A refused record is tried once more made of text
    the store can hold (`store_safe`: NUL bytes and lone surrogates become U+FFFD, the fields changed
    listed in `metadata["sanitized"]`); only one refused still is returned, with its error. The
    first write is the whole batch, so a batch the database takes costs nothing more.

    Raises whatever `write` raised when it was not a refusal (the database is down, locked...): the
    caller keeps the records and tries again later. Writes are insert-or-ignore, so the records
    already written by then are harmless to write again.

    Args:
        write: writes a list of records in one transaction (`Store.write_interactions`).
        records: the batch.
        on_sanitized: called with each record stored sanitized (the original) and the fields that
            changed; by default a warning on the `shipyard.store` logger.
    """
    batch = list(records)
    if not batch:
        return []
    try:
        write(batch)
        return []
    except Exception as e:
        if not is_refusal(e):
            raise
        if len(batch) == 1:
            return _store_sanitized(write, batch[0], e, on_sanitized)
    middle = len(batch) // 2
    return isolate(write, batch[:middle], on_sanitized=on_sanitized) + isolate(
        write, batch[middle:], on_sanitized=on_sanitized
    )


def _store_sanitized(
    write: Callable[[list[InteractionRecord]], Any],
    record: InteractionRecord,
    error: BaseException,
    on_sanitized: Callable[[InteractionRecord, list[str]], None] | None,
) -> list[tuple[InteractionRecord, BaseException]]:
    """Try a refused record once more, sanitized; [] when that was stored, else the record (as it
    was) with the error that still refuses it. Raises when the database cannot be used."""
    try:
        safe, fields = store_safe(record)
    except (TypeError, ValueError, RecursionError):  # a value no walk can fix: keep it as it was
        return [(record, error)]
    if not fields:
        return [(record, error)]
    try:
        write([safe])
    except Exception as again:
        if not is_refusal(again):
            raise
        return [(record, again)]
    if on_sanitized is not None:
        on_sanitized(record, fields)
    else:
        reason = error_reason(error, 300).splitlines()[0]
        log.warning("interaction %s stored with %s sanitized (%s)", record.id, ", ".join(fields), reason)
    return []


_table = Table(
    "dead_letters",
    metadata,
    Column("id", String, primary_key=True),  # dead_letter_id(kind, record_id)
    Column("kind", String, nullable=False),
    Column("record_id", String, nullable=False),
    Column("error_type", String, nullable=False),
    Column("reason", Text, nullable=False),
    Column("payload", Text, nullable=False),  # the record as JSON text (see the module docs)
    Column("created_at", Double, index=True, nullable=False),  # epoch seconds
    Column("attempts", Integer, nullable=False),
    Column("last_attempt_at", Double),
)


class DeadLetterStore:
    """The store's methods for dead letters (mixed into `Store`)."""

    engine: Engine
    backend: StoreBackend
    write_interactions: Callable[[Sequence[InteractionRecord]], int]

    def add_dead_letter(self, letter: DeadLetter) -> None:
        """Keep a refused record. Refusing the same record again counts one more attempt and keeps
        the newest reason."""
        row = letter.to_dict()
        row["last_attempt_at"] = letter.last_attempt_at or letter.created_at
        with self.engine.begin() as conn:
            conn.execute(self._upsert_dead_letter(row))

    def _upsert_dead_letter(self, row: dict[str, Any]) -> Insert:
        stmt = self.backend.insert(_table).values(**row)
        return stmt.on_conflict_do_update(
            index_elements=[_table.c.id],
            set_={
                "attempts": _table.c.attempts + 1,
                "error_type": stmt.excluded.error_type,
                "reason": stmt.excluded.reason,
                "last_attempt_at": stmt.excluded.last_attempt_at,
            },
        )

    def list_dead_letters(self, *, since: float | None = None, limit: int | None = 100) -> list[DeadLetter]:
        """Dead letters, newest first.

        Args:
            since: only those first refused at or after this time (epoch seconds).
            limit: at most this many (None: all).
        """
        query = select(_table).order_by(_table.c.created_at.desc(), _table.c.id)
        if since is not None:
            query = query.where(_table.c.created_at >= since)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [DeadLetter(**dict(row._mapping)) for row in conn.execute(query)]

    def dead_letter_times(self, since: float, *, limit: int = 100_000) -> list[float]:
        """When the dead letters first refused at or after `since` were refused (epoch seconds),
        oldest first; the newest `limit` of them. Reads no payloads (what an event count needs).

        Args:
            since: epoch seconds.
            limit: at most this many.
        """
        query = (
            select(_table.c.created_at)
            .where(_table.c.created_at >= since)
            .order_by(_table.c.created_at.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return sorted(float(at) for at in conn.execute(query).scalars())

    def get_dead_letter(self, ref: str) -> DeadLetter | None:
        """The dead letter whose id, or whose record's id, is `ref`."""
        query = select(_table).where((_table.c.id == ref) | (_table.c.record_id == ref)).limit(1)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return DeadLetter(**dict(row._mapping)) if row is not None else None

    def count_dead_letters(self, since: float | None = None) -> int:
        """How many dead letters there are (first refused at or after `since`, if given)."""
        query = select(func.count()).select_from(_table)
        if since is not None:
            query = query.where(_table.c.created_at >= since)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def delete_dead_letter(self, letter_id: str) -> bool:
        """Forget a dead letter (its record was stored, or someone gave up on it)."""
        with self.engine.begin() as conn:
            return bool(conn.execute(delete(_table).where(_table.c.id == letter_id)).rowcount)

    def retry_dead_letter(self, letter: DeadLetter) -> DeadLetter | None:
        """Write a dead letter's record again. Returns None when it was stored (the dead letter is
        then deleted), or the dead letter with the new reason when the database refuses it still.
        Raises when the database cannot be reached (nothing changes). A dead letter that was not in
        the table (one kept in a file) is added to it when it is refused again."""
        refused = isolate(self.write_interactions, [letter.record()])  # sanitized, if that helps
        if refused:
            e = refused[0][1]
            again = DeadLetter(
                kind=letter.kind,
                record_id=letter.record_id,
                error_type=error_type(e),
                reason=error_reason(e),
                payload=letter.payload,
                created_at=letter.created_at,
                attempts=letter.attempts,
                last_attempt_at=time.time(),
                id=letter.id,
            )
            self.add_dead_letter(again)
            return self.get_dead_letter(letter.id) or again
        self.delete_dead_letter(letter.id)
        return None
