"""Plain records the runtime produces and the store persists (DESIGN.md §5).

They are dataclasses, not ORM objects, so the hot path never touches SQLAlchemy; the batch
writer turns them into rows."""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass(slots=True)
class ToolCallRecord:
    name: str
    arguments: dict[str, Any]
    status: str  # success | error | invalid_arguments | not_found | blocked
    duration_ms: float
    error: str | None = None
    cached: bool = False
    result: Any = None


@dataclass(slots=True)
class LLMCallRecord:
    model: str
    provider: str
    duration_ms: float
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    cost_usd: float
    attempts: int = 1
    status: str = "ok"  # ok | error
    error: str | None = None
    tool_calls: list[str] = field(default_factory=list)
    request_model: str | None = None  # the provider's model id sent (`model` is the config key)
    cache_write_input_tokens: int = 0  # part of input_tokens written to a provider prompt cache
    reasoning_tokens: int = 0  # part of output_tokens spent on reasoning
    tier: str | None = None  # the model's tier (small | medium | large)


@dataclass(slots=True)
class SpanRecord:
    """One finished span. Times are Unix nanoseconds; attributes use OTel GenAI names."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    kind: str
    start_ns: int
    end_ns: int
    status: str = "ok"  # ok | error
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class InteractionRecord:
    """One interaction, end to end. `status`: completed | escalated | failed | blocked | budget_exceeded."""

    id: str
    trace_id: str
    session_id: str
    user_id: str | None
    agent: str
    version: str
    traffic_source: str  # production | eval | canary | shadow | replay
    input: str
    output: str
    status: str
    latency_ms: float
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cost_usd: float = 0.0
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    llm_calls: list[LLMCallRecord] = field(default_factory=list)
    guardrails: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    spans: list[SpanRecord] = field(default_factory=list)
    # {thumbs: +1|-1|None, score, comment, at (epoch seconds)} once a user rated the answer
    feedback: dict[str, Any] | None = None

    def to_dict(self, *, spans: bool = False) -> dict[str, Any]:
        d = asdict(self)
        if not spans:
            d.pop("spans")
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InteractionRecord:
        """A record from its JSON form (`to_dict(spans=True)`, or orjson of the dataclass)."""
        d = dict(d)
        d["tool_calls"] = [ToolCallRecord(**t) for t in d.get("tool_calls") or []]
        d["llm_calls"] = [LLMCallRecord(**c) for c in d.get("llm_calls") or []]
        d["spans"] = [SpanRecord(**s) for s in d.get("spans") or []]
        return cls(**d)
