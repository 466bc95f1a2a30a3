"""Tool registry, JSON-schema argument checks, and the idempotent flag the tool-result cache reads."""

from shipyard.tools._registry import (
    Tool,
    ToolArgumentError,
    ToolNotFound,
    ToolRegistry,
    ToolResult,
    make_tool,
)

__all__ = ["Tool", "ToolArgumentError", "ToolNotFound", "ToolRegistry", "ToolResult", "make_tool"]
