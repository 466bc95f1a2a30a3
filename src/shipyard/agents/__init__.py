"""`@agent`, `AgentContext`, `AgentResult`, the registry, adapters and version identity."""

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

__all__ = [
    "LLM",
    "STATUSES",
    "AgentContext",
    "AgentResult",
    "AgentSpec",
    "DefaultFlags",
    "Flags",
    "Tools",
    "agent",
    "coerce_result",
    "registered_agents",
    "spec_for",
]
