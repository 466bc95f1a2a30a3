"""Persistence: SQLAlchemy models, migrations, SQLite by default, PostgreSQL by URL."""

from shipyard.store._records import InteractionRecord, LLMCallRecord, SpanRecord, ToolCallRecord, new_id

__all__ = ["InteractionRecord", "LLMCallRecord", "SpanRecord", "ToolCallRecord", "new_id"]
