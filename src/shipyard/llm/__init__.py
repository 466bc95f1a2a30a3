"""Model clients: OpenAI-compatible over HTTP, the offline scripted model; usage, retries,
fallbacks and a circuit breaker per endpoint."""

from shipyard.llm._breaker import CircuitBreaker, breaker_for, reset_breakers
from shipyard.llm._factory import ModelPool
from shipyard.llm._fallback import FallbackClient
from shipyard.llm._mockserver import MockLLMApp, MockLLMServer, make_app
from shipyard.llm._mockserver import bind as bind_mock_llm
from shipyard.llm._mockserver import serve as serve_mock_llm
from shipyard.llm._openai import OpenAIChatClient, parse_retry_after
from shipyard.llm._scripted import Rules, ScriptedModel, count_tokens, load_rules, parse_rules
from shipyard.llm._types import Attempt, ChatClient, ChatResponse, LLMError, Message, ToolCall, Usage

__all__ = [
    "Attempt",
    "ChatClient",
    "ChatResponse",
    "CircuitBreaker",
    "FallbackClient",
    "LLMError",
    "Message",
    "MockLLMApp",
    "MockLLMServer",
    "ModelPool",
    "OpenAIChatClient",
    "Rules",
    "ScriptedModel",
    "ToolCall",
    "Usage",
    "bind_mock_llm",
    "breaker_for",
    "count_tokens",
    "load_rules",
    "make_app",
    "parse_retry_after",
    "parse_rules",
    "reset_breakers",
    "serve_mock_llm",
]
