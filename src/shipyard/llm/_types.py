"""The one model-client interface `ctx.llm` stands on: messages in, text / tool calls / usage out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

Message = dict[str, Any]
"""An OpenAI-format chat message: {"role": "system"|"user"|"assistant"|"tool", "content": ..., ...}."""


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one call. `cached_input_tokens` is the part of `input_tokens` served from a
    provider prompt cache (billed at the cached-input price)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_input_tokens + other.cached_input_tokens,
        )


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call the model asked for. `arguments` is parsed JSON; `raw_arguments` the text sent."""

    id: str
    name: str
    arguments: dict[str, Any]
    raw_arguments: str = ""

    def to_message(self) -> dict[str, Any]:
        import json

        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.raw_arguments or json.dumps(self.arguments)},
        }


@dataclass(slots=True)
class Attempt:
    """One try against one endpoint: what tracing shows as a retry span."""

    model: str
    provider: str
    endpoint: str
    start_ns: int
    end_ns: int
    # "ok" | "http_429" | "http_5xx" | "http_4xx" | "timeout" | "connect_error" | "circuit_open"
    # | "bad_response" | "error"
    outcome: str
    status_code: int | None = None
    error: str | None = None


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

    def to_message(self) -> Message:
        """The assistant message to append to the conversation."""
        msg: Message = {"role": "assistant", "content": self.text}
        if self.tool_calls:
            msg["tool_calls"] = [tc.to_message() for tc in self.tool_calls]
        return msg


class LLMError(Exception):
    """A model call failed after all retries and fallbacks. Carries every attempt made."""

    def __init__(self, message: str, attempts: list[Attempt] | None = None, *, kind: str = "error") -> None:
        super().__init__(message)
        self.attempts = attempts or []
        self.kind = kind  # "timeout" | "unavailable" | "rate_limited" | "bad_response" | "error"


@runtime_checkable
class ChatClient(Protocol):
    """Anything that can answer a chat: the HTTP client, the scripted model, a fallback chain."""

    name: str
    provider: str

    async def chat(
        self,
        messages: list[Message],
        *,
        tools: list[dict[str, Any]] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> ChatResponse: ...

    async def aclose(self) -> None: ...
