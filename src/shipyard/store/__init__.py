"""Persistence: SQLAlchemy models, migrations, SQLite by default, PostgreSQL by URL."""

from shipyard.store._errors import StoreError
from shipyard.store._records import InteractionRecord, LLMCallRecord, SpanRecord, ToolCallRecord, new_id
from shipyard.store._store import EVAL_RUN_STATUSES, Store, default_database_url, normalize_url
from shipyard.store._writer import BatchWriter

__all__ = [
    "EVAL_RUN_STATUSES",
    "BatchWriter",
    "InteractionRecord",
    "LLMCallRecord",
    "SpanRecord",
    "Store",
    "StoreError",
    "ToolCallRecord",
    "default_database_url",
    "new_id",
    "normalize_url",
]
