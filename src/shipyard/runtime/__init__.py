"""The request pipeline: one interaction from input to recorded result."""

from shipyard.runtime._handles import CallInterceptor, TracedLLM, TracedTools, Trail
from shipyard.runtime._pipeline import DEFAULT_STEPS, Exchange, Pipeline, Step
from shipyard.runtime._runtime import Runtime, Sink
from shipyard.runtime._versions import AgentVersion, agent_versions, build_version, pick_version

__all__ = [
    "DEFAULT_STEPS",
    "AgentVersion",
    "CallInterceptor",
    "Exchange",
    "Pipeline",
    "Runtime",
    "Sink",
    "Step",
    "TracedLLM",
    "TracedTools",
    "Trail",
    "agent_versions",
    "build_version",
    "pick_version",
]
