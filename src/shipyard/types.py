"""The value types every layer shares: chat messages, token usage, tool calls and their results,
what a model call returns, and the closed sets several packages read (interaction statuses, traffic
sources, re-exported from `shipyard._closed_sets`, which loads without this module's dataclasses).
They live at the bottom (beside `config`), so capability packages never
import each other for a type; `shipyard.llm` and `shipyard.tools` re-export them."""

import json
from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict

from shipyard._closed_sets import InteractionStatus, TrafficSource

__all__ = [
    "CHAT_OPTIONS",
    "Attempt",
    "BudgetRemaining",
    "ChatOptions",
    "ChatResponse",
    "InteractionStatus",
    "Message",
    "ToolCall",
    "ToolResult",
    "ToolSet",
    "TrafficSource",
    "Usage",
]

Message = dict[str, Any]
"""An OpenAI-format chat message: {"role": "system"|"user"|"assistant"|"tool", "content": ..., ...}."""


class ChatOptions(TypedDict, total=False):
    """The request options a chat call passes through to the model, in OpenAI's names. Each is
    optional; None means "not set" (the provider's default). `n` (several choices) is not supported.

    Keys: temperature, max_tokens, top_p, frequency_penalty, presence_penalty, seed, stop (one
    sequence or a list), tool_choice ("auto" | "none" | "required" | {"type": "function",
    "function": {"name": ...}}), response_format ({"type": "text" | "json_object" | "json_schema",
    ...}), parallel_tool_calls."""

    temperature: float | None
    max_tokens: int | None
    top_p: float | None
    frequency_penalty: float | None
    presence_penalty: float | None
    seed: int | None
    stop: str | list[str] | None
    tool_choice: str | dict[str, Any] | None
    response_format: dict[str, Any] | None
    parallel_tool_calls: bool | None


CHAT_OPTIONS: tuple[str, ...] = tuple(ChatOptions.__annotations__)
"""The names of every ChatOptions key."""


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one call, in normalized buckets (`shipyard.cost` reads each provider's own
    way of reporting them). `input_tokens` is every prompt token; `cached_input_tokens` the part of
    it read from a provider prompt cache (cached-input price) and `cache_write_input_tokens` the
    part written to one (cache-write price). `output_tokens` is every generated token;
    `reasoning_tokens` the part spent on reasoning (the reasoning price, else the output price)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_input_tokens: int = 0
    reasoning_tokens: int = 0

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_input_tokens + other.cached_input_tokens,
            self.cache_write_input_tokens + other.cache_write_input_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
        )


@dataclass(frozen=True, slots=True)
class BudgetRemaining:
    """What is left of the tightest budget of each unit for an interaction (`ctx.budget.remaining`);
    None: no budget of that unit applies."""

    usd: float | None = None
    tokens: int | None = None


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call the model asked for. `arguments` is parsed JSON; `raw_arguments` the text sent."""

    id: str
    name: str
    arguments: dict[str, Any]
    raw_arguments: str = ""

    def to_message(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.raw_arguments or json.dumps(self.arguments)},
        }


@dataclass(slots=True)
class Attempt:
    """One try against one endpoint: what tracing shows as a retry span.

    Attributes:
        outcome: "ok" | "http_429" | "http_5xx" | "http_4xx" | "timeout" | "connect_error"
            | "circuit_open" (refused by the breaker, nothing sent) | "bad_response" | "error".
        wait_s: the wait before the next attempt of the same model (None: no retry followed).
        gave_up: why the model stopped trying after this attempt (None: it did not, or it answered):
            "retries_exhausted" | "rate_limit_retries_exhausted" | "retry_after_too_long"
            | "circuit_open" | "not_retryable".
        breaker: the circuit breaker's state change this attempt's result caused, as
            (from, to), e.g. ("closed", "open").
    """

    model: str
    provider: str
    endpoint: str
    start_ns: int
    end_ns: int
    outcome: str
    status_code: int | None = None
    error: str | None = None
    wait_s: float | None = None
    gave_up: str | None = None
    breaker: tuple[str, str] | None = None
    model_id: str | None = None  # the provider's model id the request asked for (None: `model`)


@dataclass(slots=True)
class ChatResponse:
    """What a chat call returns: text and/or tool calls, usage, and every attempt it took."""

    text: str | None
    tool_calls: list[ToolCall]
    usage: Usage
    model: str
    provider: str
    finish_reason: str = "stop"
    attempts: list[Attempt] = field(default_factory=list)
    response_id: str | None = None
    response_model: str | None = None  # the model id the provider reported (e.g. a dated snapshot)
    # token log-probabilities of the reply, when the provider returned them (OpenAI-compatible
    # providers do when asked: `logprobs: true` on an `openai` model); promptfoo's perplexity
    logprobs: list[float] | None = None

    def to_message(self) -> Message:
        """The assistant message to append to the conversation."""
        msg: Message = {"role": "assistant", "content": self.text}
        if self.tool_calls:
            msg["tool_calls"] = [tc.to_message() for tc in self.tool_calls]
        return msg


@dataclass(slots=True)
class ToolResult:
    """What a tool call produced. `status` is success | error | invalid_arguments | not_found."""

    name: str
    arguments: dict[str, Any]
    status: str
    value: Any = None
    error: str | None = None
    duration_ms: float = 0.0
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "success"

    def content(self) -> str:
        """The text the model sees as the tool's answer."""
        if self.ok:
            return self.value if isinstance(self.value, str) else json.dumps(self.value, default=str)
        return json.dumps({"error": self.error, "status": self.status})


class ToolSet(Protocol):
    """What an agent's tools must offer the runtime (`shipyard.tools.ToolRegistry` is one).

    A tool set whose tools another framework runs inside the agent's run (a framework agent's
    declared tools, `shipyard.integrations`) also has `framework: str`, naming it: Shipyard only
    observes those calls, so its per-tool settings that act on a call (`cache.tools`) cannot apply."""

    def names(self) -> list[str]: ...

    def definitions(self) -> list[dict[str, Any]]:
        """OpenAI-format tool definitions (`{"type": "function", "function": {...}}`)."""
        ...

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolResult: ...
