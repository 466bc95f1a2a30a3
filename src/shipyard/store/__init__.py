"""Persistence: SQLAlchemy models, migrations, SQLite by default, PostgreSQL by URL."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shipyard.store._dead_letters import DeadLetter, dead_letter_for, isolate
    from shipyard.store._errors import StoreError, error_reason, is_refusal
    from shipyard.store._files import append_private, private_dir, private_file
    from shipyard.store._idempotency import IdempotencyEntry
    from shipyard.store._incidents import INCIDENT_STATES, TRANSITIONS, IncidentHit, IncidentSignal
    from shipyard.store._ledger import LEDGER_DIMENSIONS, LEDGER_KEY, ledger_meta, ledger_rows, utc_day
    from shipyard.store._prefix import AmbiguousPrefixError
    from shipyard.store._records import InteractionRecord, LLMCallRecord, SpanRecord, ToolCallRecord, new_id
    from shipyard.store._sanitize import store_safe, store_text
    from shipyard.store._store import EvalRunStatus, Store, default_database_url, normalize_url
    from shipyard.store._writer import BatchWriter

__all__ = [
    "INCIDENT_STATES",
    "LEDGER_DIMENSIONS",
    "LEDGER_KEY",
    "TRANSITIONS",
    "AmbiguousPrefixError",
    "BatchWriter",
    "DeadLetter",
    "EvalRunStatus",
    "IdempotencyEntry",
    "IncidentHit",
    "IncidentSignal",
    "InteractionRecord",
    "LLMCallRecord",
    "SpanRecord",
    "Store",
    "StoreError",
    "ToolCallRecord",
    "append_private",
    "dead_letter_for",
    "default_database_url",
    "error_reason",
    "is_refusal",
    "isolate",
    "ledger_meta",
    "ledger_rows",
    "new_id",
    "normalize_url",
    "private_dir",
    "private_file",
    "store_safe",
    "store_text",
    "utc_day",
]

if not TYPE_CHECKING:  # loaded on first use (shipyard._lazy); mypy sees the imports above
    from shipyard._lazy import lazy_exports

    __getattr__, __dir__ = lazy_exports(__name__, __file__)
