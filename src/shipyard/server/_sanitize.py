"""A copy of an interaction record that can always be encoded and stored.

The journal step falls back to it when a record cannot be encoded as it is (a value nested deeper
than orjson allows, an integer over 64 bits, a lone UTF-16 surrogate, an object whose `str()`
fails), so an interaction whose agent already ran is never lost for a value in it. What had to
change is said in the record's `metadata["record_error"]`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from shipyard.store import InteractionRecord, store_text

MAX_DEPTH = 32
TOO_DEEP = f"[truncated: nested deeper than {MAX_DEPTH} levels]"
_INT_RANGE = (-(2**63), 2**64 - 1)  # what orjson encodes


def safe_text(value: Any) -> str:
    """`value` as a string PostgreSQL and orjson both accept (`store_text`: NUL and lone surrogates
    become U+FFFD)."""
    try:
        text = value if isinstance(value, str) else str(value)
    except Exception:
        text = f"<{type(value).__name__} that cannot be shown>"
    return store_text(text)


def safe_value(value: Any, depth: int = 0) -> Any:
    """A JSON value that orjson can encode and the store can hold: nested at most MAX_DEPTH levels,
    strings and keys made safe, other objects shown as strings."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if _INT_RANGE[0] <= value <= _INT_RANGE[1] else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return safe_text(value)
    if depth >= MAX_DEPTH:
        return TOO_DEEP
    if isinstance(value, dict):
        return {safe_text(k): safe_value(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [safe_value(v, depth + 1) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return safe_value(fields, depth)
    return safe_text(value)


def _opt_text(value: Any) -> str | None:
    return None if value is None else safe_text(value)


def sanitized(record: InteractionRecord, error: str) -> InteractionRecord:
    """A copy of `record` with every field made safe (see `safe_value`) and `error` noted in
    `metadata["record_error"]`; tool calls, model calls and spans are kept."""
    tool_calls = [
        dataclasses.replace(
            t,
            name=safe_text(t.name),
            arguments=a if isinstance(a := safe_value(t.arguments, 1), dict) else {"value": a},
            status=safe_text(t.status),
            error=_opt_text(t.error),
            result=safe_value(t.result, 1),
        )
        for t in record.tool_calls
    ]
    llm_calls = [
        dataclasses.replace(
            c,
            model=safe_text(c.model),
            provider=safe_text(c.provider),
            error=_opt_text(c.error),
            tool_calls=[safe_text(n) for n in c.tool_calls],
        )
        for c in record.llm_calls
    ]
    spans = [
        dataclasses.replace(
            s,
            name=safe_text(s.name),
            attributes=a if isinstance(a := safe_value(s.attributes), dict) else {},
        )
        for s in record.spans
    ]
    metadata = safe_value(record.metadata)
    metadata = metadata if isinstance(metadata, dict) else {"value": metadata}
    guardrails = safe_value(record.guardrails)
    feedback = safe_value(record.feedback)
    return dataclasses.replace(
        record,
        session_id=safe_text(record.session_id),
        user_id=_opt_text(record.user_id),
        input=safe_text(record.input),
        output=safe_text(record.output),
        error=_opt_text(record.error),
        tool_calls=tool_calls,
        llm_calls=llm_calls,
        guardrails=guardrails if isinstance(guardrails, list) else [],
        metadata={**metadata, "record_error": safe_text(error)},
        spans=spans,
        feedback=feedback if isinstance(feedback, dict) else None,
    )
