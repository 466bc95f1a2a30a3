"""`@agent`, `AgentContext`, `AgentResult`, the registry, adapters and version identity."""

from shipyard.agents._adapters import ADAPTERS, HttpAgent, adapter_spec, http_agent, openai_chat_agent
from shipyard.agents._contract import (
    LLM,
    STATUSES,
    AgentContext,
    AgentResult,
    AgentSpec,
    DefaultFlags,
    Flags,
    Tools,
    agent,
    coerce_result,
    registered_agents,
    spec_for,
)
from shipyard.agents._identity import CodeIdentity, code_identity
from shipyard.agents._loading import load_entry

__all__ = [
    "ADAPTERS",
    "LLM",
    "STATUSES",
    "AgentContext",
    "AgentResult",
    "AgentSpec",
    "CodeIdentity",
    "DefaultFlags",
    "Flags",
    "HttpAgent",
    "Tools",
    "adapter_spec",
    "agent",
    "code_identity",
    "coerce_result",
    "http_agent",
    "load_entry",
    "openai_chat_agent",
    "registered_agents",
    "spec_for",
]
