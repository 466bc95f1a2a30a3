"""Shipyard: take an LLM agent from demo to production."""

from shipyard.agents import AgentContext, AgentResult, agent

__version__ = "0.1.0"

__all__ = ["AgentContext", "AgentResult", "__version__", "agent"]
