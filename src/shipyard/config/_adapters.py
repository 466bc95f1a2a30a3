"""`agents.<name>.adapter`: an agent that lives elsewhere, and the adapter kinds that reach it.

`kind` names an `AgentAdapter` registered in `ADAPTERS` (Shipyard's `http` and `openai_chat`, and any
plugin's, through the `shipyard.plugins` entry points); an unknown kind is an error of the file that
lists the known ones, and each kind checks the settings it needs when the file is loaded."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self

from pydantic import Field, field_validator, model_validator

from shipyard.config._schema_base import MODULE_ATTR, StrictModel
from shipyard.plugins import Registry


def _no_check(cfg: "AdapterConfig") -> None:
    return None


@dataclass(frozen=True, slots=True)
class AgentAdapter:
    """A kind of remote agent (`adapter: {kind: <name>}`).

    Attributes:
        build: `build(adapter_config, agent_name) -> shipyard.agents.AgentSpec`.
        check: raises ValueError when an adapter config cannot work with this kind (a missing url);
            run when shipyard.yaml loads, so the message names the file and line.
    """

    build: Callable[["AdapterConfig", str], Any]
    check: Callable[["AdapterConfig"], None] = _no_check


ADAPTERS: Registry[AgentAdapter] = Registry("adapter kind", builtin="agents")
"""Adapter kinds by the name `kind:` gives (`shipyard.agents` registers http and openai_chat)."""


class AdapterConfig(StrictModel):
    """An agent that lives elsewhere. `kind: http` posts JSON to `url` (field names configurable);
    `kind: openai_chat` uses the agent's configured model as the agent (model-as-agent); a plugin may
    register other kinds."""

    kind: str
    url: str | None = None
    input_field: str = "input"
    output_field: str = "output"
    status_field: str | None = None
    session_field: str | None = "session_id"
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = Field(30.0, gt=0)
    tools: str | None = Field(
        None,
        description="openai_chat: the tools the model may call, as `package.module:registry` "
        "(a shipyard.tools.ToolRegistry in the project)",
    )

    @field_validator("tools")
    @classmethod
    def _tools_form(cls, v: str | None) -> str | None:
        if v is not None and not MODULE_ATTR.match(v):
            raise ValueError(f"tools must look like 'package.module:registry', got {v!r}")
        return v

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        ADAPTERS.get(kind)  # an unknown kind: ValueError listing the known ones
        return kind

    @model_validator(mode="after")
    def _kind_accepts(self) -> Self:
        ADAPTERS.get(self.kind).check(self)
        return self


__all__ = ["ADAPTERS", "AdapterConfig", "AgentAdapter"]
