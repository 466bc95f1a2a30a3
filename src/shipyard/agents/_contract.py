"""The agent contract: `@agent`, `AgentContext`, `AgentResult` (DESIGN.md §2)."""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, Union, Unpack

from shipyard.types import (
    BudgetRemaining,
    ChatOptions,
    ChatResponse,
    InteractionStatus,
    Message,
    ToolCall,
    ToolResult,
    ToolSet,
    Usage,
)

Status = Literal["completed", "escalated", "failed"]  # what an agent may write (or an InteractionStatus)
STATUSES: tuple[InteractionStatus, ...] = (
    InteractionStatus.COMPLETED,
    InteractionStatus.ESCALATED,
    InteractionStatus.FAILED,
)


@dataclass(slots=True)
class AgentResult:
    """What an agent returns. A plain string means `AgentResult(output=that)`.

    Attributes:
        output: the answer.
        status: completed | escalated | failed.
        metadata: anything else to keep on the interaction's record.
        usage: tokens the agent spent outside `ctx.llm` (a remote agent reports its own): priced at
            the agent version's configured model and added to the interaction's tokens and cost.
    """

    output: str
    status: InteractionStatus | Status = InteractionStatus.COMPLETED
    metadata: dict[str, Any] = field(default_factory=dict)
    usage: Usage | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"AgentResult.status must be one of {', '.join(STATUSES)}, got {self.status!r}")
        self.status = InteractionStatus(self.status)


class LLM(Protocol):
    """`ctx.llm`: the model the agent version is configured with, traced, priced and retried.

    `options` are the request options passed through to the model (`shipyard.types.ChatOptions`:
    temperature, max_tokens, top_p, frequency_penalty, presence_penalty, seed, stop, tool_choice,
    response_format, parallel_tool_calls). `step` names the agent's step (`"classify_intent"`,
    `"final_answer"`): with model routing on, steps can run on tiers of their own."""

    async def chat(
        self,
        messages: list[Message],
        *,
        tools: list[dict[str, Any]] | None = None,
        step: str | None = None,
        **options: Unpack[ChatOptions],
    ) -> ChatResponse: ...


class Tools(Protocol):
    """`ctx.tools`: the agent's tools, schema-checked and traced."""

    def definitions(self) -> list[dict[str, Any]]: ...

    def names(self) -> list[str]: ...

    async def call(self, name: str, /, **arguments: Any) -> ToolResult: ...

    async def run(self, tool_call: ToolCall) -> ToolResult: ...

    async def observe(
        self,
        name: str,
        arguments: dict[str, Any] | str,
        run: Callable[[], Awaitable[Any]],
        *,
        call_id: str | None = None,
    ) -> Any:
        """Record a tool call the agent's framework executes itself: `run()` is awaited (unless
        the call is replayed) and its value returned; an exception it raises is recorded and
        re-raised. `arguments` is a mapping or its JSON text."""
        ...

    def observe_sync(
        self,
        name: str,
        arguments: dict[str, Any] | str,
        run: Callable[[], Any],
        *,
        call_id: str | None = None,
    ) -> Any:
        """`observe` for a sync tool called from a worker thread; `run()` runs in that thread."""
        ...


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


class Budget(Protocol):
    """`ctx.budget`: what the interaction's budgets (`budgets:` in shipyard.yaml) leave it."""

    @property
    def remaining(self) -> BudgetRemaining:
        """What is left of the tightest USD and token budget, as of the last model call."""
        ...

    def can_proceed(self, estimate_tokens: int) -> bool:
        """Whether a model call of about `estimate_tokens` (prompt + answer) still fits."""
        ...


class Unbudgeted:
    """`ctx.budget` when no budget applies: nothing is counted, every call may proceed."""

    @property
    def remaining(self) -> BudgetRemaining:
        return BudgetRemaining()

    def can_proceed(self, estimate_tokens: int) -> bool:
        return True


NO_BUDGET: Budget = Unbudgeted()


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
    features: list[str] = field(default_factory=list)  # what tag_feature tagged, in order
    budget: Budget = field(default_factory=lambda: NO_BUDGET)  # remaining, can_proceed(estimate)

    def tag_feature(self, name: str) -> None:
        """Tag this interaction with a product feature (e.g. `"new_refund_flow"`): its cost is
        counted under that feature in the cost ledger (`shipyard cost report --by feature`) and
        the `shipyard_cost_usd_total` metric. Use names from code, not user data (metrics keep
        one series per feature). Tagging the same feature twice tags it once."""
        if not isinstance(name, str) or not FEATURE_NAME.fullmatch(name):
            raise ValueError(
                f"ctx.tag_feature({name!r}): a feature name is 1-64 letters, digits, '_', '-', '.' or "
                "':', e.g. 'new_refund_flow'"
            )
        if name not in self.features:
            self.features.append(name)


FEATURE_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
"""What a feature name may be (`AgentContext.tag_feature`, a flag's `feature` metadata)."""


class _NoTools:
    """The tools of an agent that registers none."""

    def names(self) -> list[str]:
        return []

    def definitions(self) -> list[dict[str, Any]]:
        return []

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        return ToolResult(name, arguments, "not_found", error=f"this agent has no tools; no tool {name!r}")


NO_TOOLS: ToolSet = _NoTools()


AgentFn = Callable[[str, AgentContext], Union[Awaitable["AgentResult | str"], "AgentResult | str"]]


class ReplayedToolError(RuntimeError):
    """A tool the agent's framework ran (`ctx.tools.observe`) failed in the recorded run; the
    replay raises this where the tool's own exception was raised. Its text is the original
    exception's `str()`, so a framework that shows the model `str(error)` replays exactly.

    Attributes:
        type_name: the class name of the original exception."""

    def __init__(self, message: str, type_name: str = "Exception") -> None:
        super().__init__(message)
        self.type_name = type_name


class ToolRefusedError(Exception):
    """A tool call a framework runs (`ctx.tools.observe`) was refused by a guardrail, or its result
    withheld; the message says why, for the model to explain. The framework integrations answer the
    model's tool call with it (a tool error the model sees) instead of failing the run."""


@dataclass(slots=True)
class AgentSpec:
    """A registered agent function.

    Attributes:
        warmup: an optional coroutine function run once per version before the agent serves (the
            server waits for it before /readyz says ready; an eval run before it starts timing):
            a framework's lazy start-up belongs there, not in a user's latency. It runs inside an
            interaction scope (`current_context()` works) but should not call the model.
    """

    name: str
    fn: Callable[..., Any]
    is_async: bool
    tools: ToolSet = field(default_factory=lambda: NO_TOOLS)
    warmup: Callable[[], Awaitable[None]] | None = None

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
    name: str,
    *,
    tools: ToolSet | None = None,
    warmup: Callable[[], Awaitable[None]] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a function `(user_input, ctx) -> AgentResult | str` as the agent `name`.

    Args:
        name: the agent's name, as used in shipyard.yaml, the CLI and the API.
        tools: the tools the agent may call; `ctx.tools` serves them (traced and checked).
        warmup: a coroutine function run once per version before the agent serves
            (`AgentSpec.warmup`: a framework's lazy start-up, kept out of users' latency).

    Works on `async def` and plain functions. The function is returned unchanged, with the spec
    attached as `__shipyard_agent__`."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        spec = AgentSpec(
            name=name,
            fn=fn,
            is_async=inspect.iscoroutinefunction(fn),
            tools=tools if tools is not None else NO_TOOLS,
            warmup=warmup,
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
