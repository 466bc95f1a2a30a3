"""Shipyard: take an LLM agent from demo to production.

The public names are loaded on first use (PEP 562), so `import shipyard` and every CLI command
that does not run an agent stay cheap (`shipyard --help` must not pay for pydantic or httpx)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipyard.agents import AgentContext, AgentResult, agent

__version__ = "0.1.0"

__all__ = ["AgentContext", "AgentResult", "__version__", "agent"]

_LAZY = {"AgentContext", "AgentResult", "agent"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import shipyard.agents as agents

        value = getattr(agents, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'shipyard' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _LAZY)
