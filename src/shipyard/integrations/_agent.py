"""What the framework integrations share around the agent call: registering a framework's run as
a Shipyard agent with its warm-up and the tools it declares, the agent version's system prompt as a framework's
instructions, and a framework's answer as text."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from pydantic import BaseModel

from shipyard.agents import AgentContext, AgentResult, agent, current_context
from shipyard.errors import ShipyardError
from shipyard.types import ToolSet

Run = Callable[[str, AgentContext], Awaitable[AgentResult]]


def framework_agent(
    name: str,
    run: Run,
    *,
    doc: str,
    warmup: Callable[[], Awaitable[None]],
    tools: ToolSet | None = None,
) -> Run:
    """Register `run` (one interaction: the framework's run) as the Shipyard agent `name`, with
    the framework's warm-up (`AgentSpec.warmup`); returns it, the function `entry:` names.

    Args:
        name: the agent's name in shipyard.yaml, the CLI and the API.
        run: the agent function.
        doc: its docstring (what runs it).
        warmup: the framework's lazy start-up, run before the agent serves.
        tools: the tools the framework's agent declares (`_declared.DeclaredTools`), its
            `spec.tools`; None when they cannot be found without running it (the agent then
            registers no tools)."""
    run.__name__ = run.__qualname__ = name.replace("-", "_")
    run.__doc__ = doc
    registered: Run = agent(name, warmup=warmup, tools=tools)(run)
    return registered


def system_prompt_for(asker: str, own: str) -> str:
    """The running agent version's system prompt (its prompt bundle rendered with
    `prompt_variables`), for a framework agent's instructions.

    Args:
        asker: who asks, for the message (e.g. "ADK agent 'support'").
        own: what the framework calls instructions of its own, for the hint.

    Raises ShipyardError outside an interaction (the prompt belongs to the version that runs)."""
    ctx = current_context()
    if ctx is None:
        raise ShipyardError(
            f"{asker} asked for Shipyard's system prompt outside a Shipyard interaction",
            hint=f"run it through Shipyard (`shipyard run`, an eval, the server), or give the agent {own} "
            "of its own",
        )
    return ctx.system_prompt


def answer_text(value: Any) -> str:
    """A framework's answer as the interaction's output: text as is, a structured value (pydantic,
    dataclass, JSON-like) as JSON, None as empty text."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    try:
        return orjson.dumps(value, default=str).decode()
    except TypeError:
        return str(value)
