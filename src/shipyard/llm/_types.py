"""The one model-client interface `ctx.llm` stands on: messages in, text / tool calls / usage out."""

from __future__ import annotations

from typing import Any, Protocol, Unpack, runtime_checkable

from shipyard.types import CHAT_OPTIONS, Attempt, ChatOptions, ChatResponse, Message, ToolCall, Usage

__all__ = [
    "CHAT_OPTIONS",
    "Attempt",
    "ChatClient",
    "ChatOptions",
    "ChatResponse",
    "LLMError",
    "Message",
    "ToolCall",
    "Usage",
    "model_id",
]


class LLMError(Exception):
    """A model call failed after all retries and fallbacks. Carries every attempt made."""

    def __init__(self, message: str, attempts: list[Attempt] | None = None, *, kind: str = "error") -> None:
        super().__init__(message)
        self.attempts = attempts or []
        self.kind = kind  # "timeout" | "unavailable" | "rate_limited" | "bad_response" | "error"


@runtime_checkable
class ChatClient(Protocol):
    """Anything that can answer a chat: the HTTP client, the scripted model, a fallback chain.

    `chat` takes the conversation, the tool definitions and the request options (`ChatOptions`:
    temperature, max_tokens, top_p, penalties, seed, stop, tool_choice, response_format,
    parallel_tool_calls); an option that is None or absent is not sent."""

    name: str
    provider: str
    # optional: `model`, the provider's model id a request asks for (`model_id` reads it)

    async def chat(
        self,
        messages: list[Message],
        *,
        tools: list[dict[str, Any]] | None = None,
        **options: Unpack[ChatOptions],
    ) -> ChatResponse: ...

    async def aclose(self) -> None: ...


def model_id(client: object) -> str:
    """The provider's model id `client` sends (`gen_ai.request.model`): its `model` attribute when it
    has one, else its `name` (a client that does not tell the two apart)."""
    found = getattr(client, "model", None)
    return found if isinstance(found, str) and found else str(getattr(client, "name", ""))
