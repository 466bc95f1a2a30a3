"""The request pipeline: one interaction from input to recorded result."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shipyard.agents import ToolRefusedError  # the agents contract's; re-exported where it was
    from shipyard.runtime._at_rest import ContentMask
    from shipyard.runtime._build import PIPELINE_ORDER, build_pipeline
    from shipyard.runtime._guarding import GuardrailFailed, ToolGate
    from shipyard.runtime._handles import (
        CallInterceptor,
        ToolGuard,
        TracedLLM,
        TracedTools,
        Trail,
    )
    from shipyard.runtime._pipeline import Exchange, Pipeline, PipelineFrozenError, Step
    from shipyard.runtime._runtime import InteractionOptions, Outcome, Runtime, Sink
    from shipyard.runtime._versions import AgentVersion, agent_versions, build_version, pick_version

__all__ = [
    "PIPELINE_ORDER",
    "AgentVersion",
    "CallInterceptor",
    "ContentMask",
    "Exchange",
    "GuardrailFailed",
    "InteractionOptions",
    "Outcome",
    "Pipeline",
    "PipelineFrozenError",
    "Runtime",
    "Sink",
    "Step",
    "ToolGate",
    "ToolGuard",
    "ToolRefusedError",
    "TracedLLM",
    "TracedTools",
    "Trail",
    "agent_versions",
    "build_pipeline",
    "build_version",
    "pick_version",
]

if not TYPE_CHECKING:  # loaded on first use (shipyard._lazy); mypy sees the imports above
    from shipyard._lazy import lazy_exports

    __getattr__, __dir__ = lazy_exports(__name__, __file__)
