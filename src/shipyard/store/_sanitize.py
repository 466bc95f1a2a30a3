"""Text the store can hold, and a copy of a refused record made of such text.

PostgreSQL refuses a NUL byte in a text column and `\\u0000` in JSONB; neither database (nor orjson,
which writes the JSON columns) takes a lone UTF-16 surrogate. An agent can produce either (a tool
result, the model's output, its metadata), and that is not the client's input, so the edge cannot
refuse it. `isolate` (store/_dead_letters.py) therefore tries a record the store refused once more,
made with `store_safe`, before it becomes a dead letter. Nothing here runs on the happy path.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from shipyard.store._records import InteractionRecord

REPLACEMENT = "\ufffd"
"""What a NUL byte or a lone surrogate becomes (U+FFFD REPLACEMENT CHARACTER)."""

SANITIZED_KEY = "sanitized"
"""The metadata key that lists the fields `store_safe` had to change."""

_IDENTITY = frozenset({"id", "trace_id"})  # how the record is found: never changed


def store_text(text: str) -> str:
    """`text` as both databases can hold it: NUL becomes U+FFFD, and so does a lone surrogate (a pair
    of surrogates becomes the character it encodes). Returns `text` itself when nothing changes.

    Args:
        text: any Python string.
    """
    if "\x00" in text:
        text = text.replace("\x00", REPLACEMENT)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def _clean(value: Any, changed: list[bool]) -> Any:
    """`value` with every string (dict keys too) made `store_text`; sets changed[0] when any was."""
    if isinstance(value, str):
        fixed = store_text(value)
        if fixed is not value:
            changed[0] = True
        return fixed
    if isinstance(value, dict):
        return {_clean(k, changed): _clean(v, changed) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v, changed) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: _clean(getattr(value, f.name), changed) for f in dataclasses.fields(value)}
        return dataclasses.replace(value, **fields)
    return value


def store_safe(record: InteractionRecord) -> tuple[InteractionRecord, list[str]]:
    """A copy of `record` whose every string (in tool calls, model calls, spans, metadata, JSON keys
    and values alike) is `store_text`, but its id and trace id, which identify it; and the names of
    the fields that changed, also noted in the copy's `metadata["sanitized"]`. When nothing had to
    change, returns `record` itself and an empty list.

    Args:
        record: a record the store refused.
    """
    updates: dict[str, Any] = {}
    for f in dataclasses.fields(record):
        if f.name in _IDENTITY:
            continue
        changed = [False]
        value = _clean(getattr(record, f.name), changed)
        if changed[0]:
            updates[f.name] = value
    if not updates:
        return record, []
    fields = list(updates)
    metadata = updates.get("metadata", record.metadata)
    updates["metadata"] = {**metadata, SANITIZED_KEY: fields}
    return dataclasses.replace(record, **updates), fields
