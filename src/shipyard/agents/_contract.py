"""The agent contract: `@agent`, `AgentContext`, `AgentResult` (DESIGN.md §2)."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, Union

from shipyard.llm import ChatResponse, Message, ToolCall
from shipyard.tools import ToolRegistry, ToolResult

Status = Literal["completed", "escalated", "failed"]
STATUSES: tuple[str, ...] = ("completed", "escalated", "failed")


@dataclass(slots=True)
class AgentResult:
    """What an agent returns. A plain string means `AgentResult(output=that)`."""

    output: str
    status: Status = "completed"
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"AgentResult.status must be one of {', '.join(STATUSES)}, got {self.status!r}")


class LLM(Protocol):
    """`ctx.llm`: the model the agent version is configured with, traced, priced and retried."""

    async def chat(
        self,
        messages: list[Message],
        *,
        tools: list[dict[str, Any]] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> ChatResponse: ...


class Tools(Protocol):
    """`ctx.tools`: the agent's tools, schema-checked and traced."""

    def definitions(self) -> list[dict[str, Any]]: ...

    def names(self) -> list[str]: ...

    async def call(self, name: str, /, **arguments: Any) -> ToolResult: ...

    async def run(self, tool_call: ToolCall) -> ToolResult: ...


class Flags(Protocol):
    """`ctx.flags`: runtime feature flags for this session and user."""

    def enabled(self, name: str, default: bool = False) -> bool: ...

    def string(self, name: str, default: str = "") -> str: ...

    def number(self, name: str, default: float = 0.0) -> float: ...

    def object(self, name: str, default: dict[str, Any] | None = None) -> dict[str, Any]: ...


class DefaultFlags:
    """Flags with no provider: every flag has its default value."""

    def enabled(self, name: str, default: bool = False) -> bool:
        return default

    def string(self, name: str, default: str = "") -> str:
        return default

    def number(self, name: str, default: float = 0.0) -> float:
        return default

    def object(self, name: str, default: dict[str, Any] | None = None) -> dict[str, Any]:
        return dict(default or {})


@dataclass(slots=True)
class AgentContext:
    """Everything an agent may use. Going through `ctx` is what makes a call traced, priced,
    cached, routed and budgeted without the agent knowing."""

    llm: LLM
    tools: Tools
    prompts: Any  # shipyard.prompts.PromptBundle, or None when the agent has no bundle
    flags: Flags
    session_id: str
    user_id: str | None = None
    history: list[Message] = field(default_factory=list)
    system_prompt: str = ""  # the bundle's system prompt rendered with the agent's prompt_variables
    metadata: dict[str, Any] = field(default_factory=dict)


AgentFn = Callable[[str, AgentContext], Union[Awaitable["AgentResult | str"], "AgentResult | str"]]


@dataclass(slots=True)
class AgentSpec:
    """A registered agent function."""

    name: str
    fn: Callable[..., Any]
    is_async: bool
    tools: ToolRegistry = field(default_factory=ToolRegistry)

    async def __call__(self, user_input: str, ctx: AgentContext) -> AgentResult:
        if self.is_async:
            out = await self.fn(user_input, ctx)
        else:
            # a sync agent cannot await ctx.llm; it runs in a worker thread with its own loop bridge
            import asyncio

            out = await asyncio.to_thread(self.fn, user_input, ctx)
        return coerce_result(out)


def coerce_result(out: Any) -> AgentResult:
    if isinstance(out, AgentResult):
        return out
    if isinstance(out, str):
        return AgentResult(output=out)
    if isinstance(out, dict) and "output" in out:
        return AgentResult(
            output=str(out["output"]),
            status=out.get("status", "completed"),
            metadata=dict(out.get("metadata") or {}),
        )
    raise TypeError(f"an agent must return AgentResult or str, got {type(out).__name__}")


_REGISTRY: dict[str, AgentSpec] = {}


def agent(
    name: str, *, tools: ToolRegistry | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a function `(user_input, ctx) -> AgentResult | str` as the agent `name`.

    Args:
        name: the agent's name, as used in shipyard.yaml, the CLI and the API.
        tools: the tools the agent may call; `ctx.tools` serves them (traced and checked).

    Works on `async def` and plain functions. The function is returned unchanged, with the spec
    attached as `__shipyard_agent__`."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        spec = AgentSpec(
            name=name, fn=fn, is_async=inspect.iscoroutinefunction(fn), tools=tools or ToolRegistry()
        )
        _REGISTRY[name] = spec
        fn.__shipyard_agent__ = spec  # type: ignore[attr-defined]
        return fn

    return deco


def spec_for(fn: Callable[..., Any], default_name: str) -> AgentSpec:
    """The spec of a decorated function, or a new one for a plain function."""
    spec = getattr(fn, "__shipyard_agent__", None)
    if isinstance(spec, AgentSpec):
        return spec
    if isinstance(fn, AgentSpec):
        return fn
    return AgentSpec(name=default_name, fn=fn, is_async=inspect.iscoroutinefunction(fn))


def registered_agents() -> dict[str, AgentSpec]:
    return dict(_REGISTRY)
