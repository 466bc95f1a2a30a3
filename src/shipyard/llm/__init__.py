"""Model clients: OpenAI-compatible over HTTP, the offline scripted model; usage, retries,
fallbacks and a circuit breaker per (endpoint, model).

429 answers are back-pressure (retried on their own allowance, `Retry-After` honoured up to
`retry_after_max_s`, never counted by the breaker); 5xx, timeouts and connection errors are faults
(retried up to `max_retries`, counted by the breaker, which opens on a failure rate over a window).
Retries, give-ups, fallbacks and breaker state changes are reported to listeners registered with
`add_listener` (the server's metrics subscribe there) and kept on each call's `attempts`.
`completion_body` / `completion_chunks` / `error_body` write OpenAI's wire format (the mock server
and the model proxy of `shipyard.integrations` answer with them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shipyard.llm._breaker import CircuitBreaker, breaker_for, endpoint_of, reset_breakers
    from shipyard.llm._events import LLMEvent, add_listener
    from shipyard.llm._factory import ModelPool
    from shipyard.llm._fallback import FallbackClient
    from shipyard.llm._mockserver import MockLLMApp, MockLLMServer, make_app
    from shipyard.llm._mockserver import bind as bind_mock_llm
    from shipyard.llm._mockserver import serve as serve_mock_llm
    from shipyard.llm._openai import OpenAIChatClient, parse_retry_after
    from shipyard.llm._scripted import (
        Rules,
        ScriptedModel,
        count_tokens,
        load_rules,
        message_text,
        parse_rules,
    )
    from shipyard.llm._types import (
        CHAT_OPTIONS,
        Attempt,
        ChatClient,
        ChatOptions,
        ChatResponse,
        LLMError,
        Message,
        ToolCall,
        Usage,
        model_id,
    )
    from shipyard.llm._wire import completion_body, completion_chunks, error_body, usage_json

__all__ = [
    "CHAT_OPTIONS",
    "Attempt",
    "ChatClient",
    "ChatOptions",
    "ChatResponse",
    "CircuitBreaker",
    "FallbackClient",
    "LLMError",
    "LLMEvent",
    "Message",
    "MockLLMApp",
    "MockLLMServer",
    "ModelPool",
    "OpenAIChatClient",
    "Rules",
    "ScriptedModel",
    "ToolCall",
    "Usage",
    "add_listener",
    "bind_mock_llm",
    "breaker_for",
    "completion_body",
    "completion_chunks",
    "count_tokens",
    "endpoint_of",
    "error_body",
    "load_rules",
    "make_app",
    "message_text",
    "model_id",
    "parse_retry_after",
    "parse_rules",
    "reset_breakers",
    "serve_mock_llm",
    "usage_json",
]

if not TYPE_CHECKING:  # loaded on first use (shipyard._lazy); mypy sees the imports above
    from shipyard._lazy import lazy_exports

    __getattr__, __dir__ = lazy_exports(__name__, __file__)
