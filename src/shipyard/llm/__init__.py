"""Model clients: OpenAI-compatible over HTTP, the offline scripted model; usage, retries,
fallbacks and a circuit breaker per endpoint."""

from shipyard.llm._types import Attempt, ChatClient, ChatResponse, LLMError, Message, ToolCall, Usage

__all__ = ["Attempt", "ChatClient", "ChatResponse", "LLMError", "Message", "ToolCall", "Usage"]
