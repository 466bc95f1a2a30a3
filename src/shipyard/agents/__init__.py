"""`@agent`, `AgentContext`, `AgentResult`, the registry, adapters and version identity."""

from shipyard.agents._adapters import ADAPTERS, HttpAgent, adapter_spec, http_agent, openai_chat_agent
from shipyard.agents._contract import (
    FEATURE_NAME,
    LLM,
    NO_BUDGET,
    STATUSES,
    AgentContext,
    AgentResult,
    AgentSpec,
    Budget,
    DefaultFlags,
    Flags,
    ReplayedToolError,
    Tools,
    agent,
    coerce_result,
    registered_agents,
    spec_for,
)
from shipyard.agents._current import (
    Interaction,
    SpanSink,
    current_context,
    current_interaction,
    interaction_scope,
)
from shipyard.agents._identity import CodeIdentity, code_identity
from shipyard.agents._loading import load_entry, load_tools

__all__ = [
    "ADAPTERS",
    "FEATURE_NAME",
    "LLM",
    "NO_BUDGET",
    "STATUSES",
    "AgentContext",
    "AgentResult",
    "AgentSpec",
    "Budget",
    "CodeIdentity",
    "DefaultFlags",
    "Flags",
    "HttpAgent",
    "Interaction",
    "ReplayedToolError",
    "SpanSink",
    "Tools",
    "adapter_spec",
    "agent",
    "code_identity",
    "coerce_result",
    "current_context",
    "current_interaction",
    "http_agent",
    "interaction_scope",
    "load_entry",
    "load_tools",
    "openai_chat_agent",
    "registered_agents",
    "spec_for",
]
