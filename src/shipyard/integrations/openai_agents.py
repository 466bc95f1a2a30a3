"""The OpenAI Agents SDK (`openai-agents`, imported as `agents`) under Shipyard, in one line:

    from agents import Agent, function_tool
    from shipyard.integrations.openai_agents import shipyard_agent

    support = Agent(name="Support", instructions="...", tools=[lookup_order], handoffs=[refunds])
    assistant = shipyard_agent("support", support)      # shipyard.yaml: entry: agent:assistant

or, when your own agent function calls the Runner, one argument:

    @agent("support", tools=agent_tools(triage), warmup=warmup(triage))   # both optional
    async def support(user_input: str, ctx: AgentContext) -> str:
        result = await Runner.run(triage, user_input, run_config=run_config())
        return str(result.final_output)

What a run then does:
- **models**: every agent of the run (handoffs and agents used as tools included) calls the model
  through Shipyard's model proxy (`RunConfig.model` is a chat-completions model on the in-process
  transport), so each call is `ctx.llm.chat`: a `chat {model}` span with tokens and cost, retries and
  fallbacks, record and replay. The agent version's configured model answers, whatever model the
  SDK agents name; their `ModelSettings` (temperature, tool_choice, ...) pass through.
- **tools**: each `FunctionTool` an agent runs (`@function_tool`, `Agent.as_tool`) is recorded
  through `ctx.tools.observe` (name, arguments, result, status, duration), so trajectory scorers
  and `must_not_call` see it; an eval replay answers it from the recording without running it.
  The tools are wrapped in place, once (the wrapper does nothing outside a Shipyard interaction).
  Tools an MCP server lists at run time are not wrapped. Handoffs are not tool calls: they show as
  spans and in the record's metadata. A call a tool_call guardrail refuses (or whose result a
  tool_result guardrail withholds) is recorded `blocked` and its output is `Error: <why>`, so the
  model can explain (not the SDK's generic tool-error text) and the run goes on.
- **declared tools**: the `FunctionTool`s of the starting agent and of every agent it can reach
  (handoffs, agents used as tools) are the Shipyard agent's tools (`spec.tools`: names, descriptions,
  `params_json_schema`), known when the agent loads: a `tool_policy` guardrail may name them, eval
  suites' `must_not_call` and trajectories are checked against them, the launch checklist counts
  them. They count as having side effects unless marked (`idempotent=[...]`). An agent of the graph
  with MCP servers lists tools only at run time: then no tools are declared (as before).
- **tracing**: the SDK's own traces no longer go to OpenAI's trace ingest from inside a Shipyard
  interaction. A trace processor takes the place of the SDK's processors (they keep receiving the
  traces started outside Shipyard interactions) and turns the spans of a run into spans of the
  interaction's trace: `agent {name}`, `turn {n}`, `handoff {a} -> {b}`, `guardrail {name}` and
  your custom spans, under `invoke_agent`, with Shipyard's `chat` and `execute_tool` spans inside
  the turn that made them (the SDK's own generation and function spans would duplicate those).
- **result**: the final output as text (a structured output as JSON); status `escalated` when the
  run stopped for a human to approve a tool call (`needs_approval`), with the pending calls in the
  metadata; an exception (max turns, a guardrail tripwire, a model failure) fails the interaction.
- **warm-up**: `shipyard_agent` sets `AgentSpec.warmup` (`warmup(agent)`): one run of the agent
  against a canned local answer (no model is called, no guardrail runs) loads what the SDK loads on
  its first run (100-250 ms), before the server reports ready and before an eval run starts timing.
- **history**: `ctx.history` (earlier turns) comes first in the run's input list.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import functools
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import orjson
from agents import (
    Agent,
    AgentsException,
    FunctionTool,
    Handoff,
    HandoffOutputItem,
    OpenAIChatCompletionsModel,
    RunConfig,
    RunContextWrapper,
    Runner,
    RunResult,
    TResponseInputItem,
)
from agents.run import DEFAULT_MAX_TURNS
from agents.run_config import CallModelData, CallModelInputFilter, ModelInputData
from agents.tracing import Span as SdkSpan
from agents.tracing import Trace, TracingProcessor, get_current_span, get_trace_provider, set_trace_processors
from agents.tracing.span_data import SpanData, TaskSpanData, TurnSpanData

from shipyard.agents import AgentContext, AgentResult, Interaction, ToolRefusedError, current_interaction
from shipyard.errors import ShipyardError
from shipyard.integrations._agent import answer_text, framework_agent, system_prompt_for
from shipyard.integrations._declared import DeclaredTool, DeclaredTools, declared_tools
from shipyard.integrations._transport import canned_transport, openai_client, proxy_openai_client
from shipyard.llm import ChatResponse, Message, Usage, message_text

__all__ = [
    "ShipyardTraceProcessor",
    "agent_result",
    "agent_tools",
    "observe_graph",
    "observe_tool",
    "run_config",
    "shipyard_agent",
    "system_prompt",
    "to_input",
    "tracing_processor",
    "warmup",
]

log = logging.getLogger(__name__)

_OBSERVED = "__shipyard_observed__"
ATTRIBUTE_PREFIX = "openai_agents."
_MAX_ATTRIBUTE_CHARS = 1000


# models --------------------------------------------------------------------------------------------
def run_config(base: RunConfig | None = None) -> RunConfig:
    """The `RunConfig` for a `Runner.run` (or `run_sync`, `run_streamed`) made inside a Shipyard
    interaction: `base` (default: a new RunConfig) with the model proxy as its model, the tools of
    each agent that runs observed, and the SDK's traces turned into spans of the interaction.

    Args:
        base: your own RunConfig, kept but for `model` (the agent version's configured model answers)
            and `call_model_input_filter` (yours still runs, after Shipyard's).

    Raises ShipyardError outside an interaction (there is no model to answer)."""
    return _configured(base)


def _configured(base: RunConfig | None) -> RunConfig:
    interaction = current_interaction()
    if interaction is None or interaction.ended:
        raise ShipyardError(
            "shipyard.integrations.openai_agents.run_config() was called outside a Shipyard interaction",
            hint="call it inside the agent function while Shipyard runs it (`shipyard run`, an eval, the "
            "server); it points the run at the agent version's model, which only exists there",
        )
    tracing_processor()
    base = base if base is not None else RunConfig()
    model = OpenAIChatCompletionsModel(
        str(getattr(interaction.ctx.llm, "model_name", "shipyard")), openai_client=proxy_openai_client()
    )
    return dataclasses.replace(
        base, model=model, call_model_input_filter=_observing_filter(base.call_model_input_filter)
    )


def _observing_filter(then: CallModelInputFilter | None) -> CallModelInputFilter:
    """A `call_model_input_filter` that observes the tools of the agent about to call the model (so
    any agent of the graph, reached by a handoff or as a tool, is covered before its tools run),
    then runs `then`, the user's own filter."""

    async def call_model_input_filter(data: CallModelData[Any]) -> ModelInputData:
        observe_agent_tools(data.agent)
        if then is None:
            return data.model_data
        out = then(data)
        return await out if inspect.isawaitable(out) else out

    return call_model_input_filter


# tools ---------------------------------------------------------------------------------------------
def _observed(
    invoke: Callable[[Any, str], Awaitable[Any]], name: str
) -> Callable[[Any, str], Awaitable[Any]]:
    """`invoke` (a tool's `(tool_context, arguments_json)` coroutine function) recorded through
    `ctx.tools.observe` when it runs inside an interaction; called as is outside one."""

    @functools.wraps(invoke)  # keeps the SDK's markers (argument preparation, the wrapped callable)
    async def observed(tool_context: Any, arguments: str) -> Any:
        interaction = current_interaction()
        if interaction is None or interaction.ended:
            return await invoke(tool_context, arguments)
        try:
            return await _observe(
                interaction,
                getattr(tool_context, "tool_name", None) or name,
                arguments,
                lambda: invoke(tool_context, arguments),
                getattr(tool_context, "tool_call_id", None),
            )
        except ToolRefusedError as e:  # the tool's output: the model is told why, the run goes on
            return f"Error: {e}"

    setattr(observed, _OBSERVED, True)
    return observed


async def _observe(
    interaction: Interaction,
    name: str,
    arguments: str,
    run: Callable[[], Awaitable[Any]],
    call_id: str | None,
) -> Any:
    """`ctx.tools.observe` on the interaction's event loop; the tool itself runs on the loop the
    SDK runs on (another one under `Runner.run_sync` in a sync agent)."""
    tools = interaction.ctx.tools
    loop = asyncio.get_running_loop()
    if loop is interaction.loop:
        return await tools.observe(name, arguments, run, call_id=call_id)

    async def run_on_sdk_loop() -> Any:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(_awaited(run), loop))

    return await interaction.run(tools.observe(name, arguments, run_on_sdk_loop, call_id=call_id))


async def _awaited(run: Callable[[], Awaitable[Any]]) -> Any:
    return await run()


def observe_tool(tool: FunctionTool) -> None:
    """Record `tool`'s runs inside interactions as Shipyard tool calls (in place, once).

    For the SDK's own tools (`@function_tool`, `Agent.as_tool`) the function itself is wrapped,
    inside the SDK's error handling: an exception is recorded as the tool's error and the SDK still
    shows the model its usual error message (a replay raises the recorded text, so the model sees the
    same); a call a guardrail refuses is not an exception to the SDK: its output is the refusal.
    A `FunctionTool` built by hand has its `on_invoke_tool` wrapped."""
    invoker = tool.on_invoke_tool
    inner = getattr(invoker, "_invoke_tool_impl", None)
    if callable(inner):
        if not getattr(inner, _OBSERVED, False):
            invoker._invoke_tool_impl = _observed(inner, tool.name)  # type: ignore[attr-defined]
    elif not getattr(invoker, _OBSERVED, False):
        tool.on_invoke_tool = _observed(invoker, tool.name)


def observe_agent_tools(sdk_agent: Any) -> None:
    """Observe the function tools of one agent (not of the agents it hands off to)."""
    for tool in getattr(sdk_agent, "tools", None) or ():
        if isinstance(tool, FunctionTool):
            observe_tool(tool)


def _agent_graph(start: Agent[Any]) -> list[Agent[Any]]:
    """`start` and every agent reachable from it through handoffs and agents used as tools."""
    seen: dict[int, Agent[Any]] = {}
    stack: list[Any] = [start]
    while stack:
        node = stack.pop()
        if not isinstance(node, Agent) or id(node) in seen:
            continue
        seen[id(node)] = node
        for tool in node.tools:
            stack.append(getattr(tool, "_agent_instance", None))
        for h in node.handoffs:
            ref = getattr(h, "_agent_ref", None) if isinstance(h, Handoff) else None
            stack.append(ref() if callable(ref) else h)
    return list(seen.values())


def observe_graph(start: Agent[Any]) -> None:
    """Observe the function tools of `start` and of every agent it can reach."""
    for node in _agent_graph(start):
        observe_agent_tools(node)


def agent_tools(
    starting_agent: Agent[Any],
    *,
    idempotent: Iterable[str] = (),
    tags: Mapping[str, Iterable[str]] | None = None,
    name: str | None = None,
) -> DeclaredTools | None:
    """The function tools `starting_agent` and every agent it can reach declare (handoffs and agents
    used as tools included; each name once), as the Shipyard agent's tools: `@agent(..., tools=...)`
    (`shipyard_agent` does this). Hosted tools (web search, ...) run at OpenAI, not here: not included.

    Args:
        starting_agent: the SDK agent runs start with.
        idempotent: names of tools that change nothing (the rest count as having side effects).
        tags: tool name -> its tags (e.g. `{"refund_order": ["money"]}`), for the launch checklist.
        name: the Shipyard agent's name, for messages (default: the SDK agent's).

    Returns None when an agent of the graph has MCP servers (their tools are listed only at run
    time), so the agent declares no tools rather than some of them. Raises ShipyardError when
    `idempotent` or `tags` names a tool the graph does not have."""
    nodes = _agent_graph(starting_agent)
    if any(getattr(node, "mcp_servers", None) for node in nodes):
        return None
    found = [
        DeclaredTool(tool.name, tool.description or "", copy.deepcopy(tool.params_json_schema))
        for node in nodes
        for tool in node.tools
        if isinstance(tool, FunctionTool)
    ]
    return declared_tools(
        found,
        framework="the OpenAI Agents SDK",
        agent=name or starting_agent.name,
        idempotent=idempotent,
        tags=tags,
    )


# tracing -------------------------------------------------------------------------------------------
class _Mirror:
    """The spans of one SDK trace that runs inside an interaction: SDK span id -> (its parent's id,
    the interaction-trace span that mirrors it, or None for a span that is not mirrored)."""

    __slots__ = ("ended", "interaction", "nodes")

    def __init__(self, interaction: Interaction) -> None:
        self.interaction = interaction
        self.nodes: dict[str, tuple[str | None, Any | None]] = {}
        self.ended: set[str] = set()

    def parent_of(self, span_id: str | None) -> Any | None:
        """The nearest open mirrored span at or above `span_id` (None: the `invoke_agent` span)."""
        while span_id is not None:
            parent_id, mirrored = self.nodes.get(span_id, (None, None))
            if mirrored is not None and span_id not in self.ended:
                return mirrored
            span_id = parent_id
        return None


# Spans Shipyard does not mirror: the whole run is the `invoke_agent` span; a generation is a `chat`
# span and a function call an `execute_tool` span, opened by ctx.llm and ctx.tools in their place.
_NOT_MIRRORED = ("generation", "response", "function")


def _mirrored(data: SpanData) -> bool:
    return not isinstance(data, TaskSpanData) and data.type not in _NOT_MIRRORED


def _span_name(data: SpanData) -> str:
    if isinstance(data, TurnSpanData):
        return f"turn {data.turn}"
    kind = data.type
    if kind == "agent":
        return f"agent {getattr(data, 'name', '')}"
    if kind == "handoff":
        return f"handoff {getattr(data, 'from_agent', None)} -> {getattr(data, 'to_agent', None)}"
    if kind == "guardrail":
        return f"guardrail {getattr(data, 'name', '')}"
    if kind == "custom":
        return str(getattr(data, "name", kind))
    if kind == "mcp_tools":
        return f"mcp_list_tools {getattr(data, 'server', None)}"
    return kind


def _attribute(value: Any) -> Any:
    """A span attribute value: a primitive, a list of strings, or JSON text (cut to 1000 chars)."""
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return list(value)
    return orjson.dumps(value, default=str).decode()[:_MAX_ATTRIBUTE_CHARS]


def _attributes(data: SpanData) -> dict[str, Any]:
    """The SDK span's fields as `openai_agents.<type>.<field>` attributes (usage is left out: the
    `chat` spans carry the tokens, and counting them twice would double a sum over spans)."""
    kind = "turn" if isinstance(data, TurnSpanData) else data.type
    fields = dict(data.export())
    if kind in ("custom", "turn") and isinstance(fields.get("data"), Mapping):
        fields.update(fields.pop("data"))
    attributes: dict[str, Any] = {f"{ATTRIBUTE_PREFIX}span_type": kind}
    for key, value in fields.items():
        if key not in ("type", "usage", "sdk_span_type") and value is not None:
            attributes[f"{ATTRIBUTE_PREFIX}{kind}.{key}"] = _attribute(value)
    return attributes


class ShipyardTraceProcessor(TracingProcessor):
    """The SDK's trace processor while Shipyard runs agents (it replaces the SDK's processors, which
    become its `downstream`). A trace started inside an interaction becomes spans of that
    interaction's trace and goes nowhere else; a trace started outside any interaction goes to the
    downstream processors, as if Shipyard were not there. One per process (`tracing_processor()`)."""

    def __init__(self, downstream: Iterable[TracingProcessor] = ()) -> None:
        self.downstream: tuple[TracingProcessor, ...] = tuple(downstream)
        self._lock = threading.Lock()
        self._mirrors: dict[str, _Mirror] = {}  # trace id -> the mirror of a trace inside an interaction
        self._foreign: set[str] = set()  # ids of traces started outside any interaction

    # traces --------------------------------------------------------------------------------------
    def on_trace_start(self, trace: Trace) -> None:
        interaction = current_interaction()
        if interaction is None:
            with self._lock:
                self._foreign.add(trace.trace_id)
            self._forward("on_trace_start", trace)
            return
        if interaction.spans is None or interaction.ended:
            return  # a warm-up, or a leftover: recorded nowhere, and not sent anywhere either
        trace_id = trace.trace_id
        with self._lock:
            self._mirrors[trace_id] = _Mirror(interaction)
        interaction.span_parent = self.parent_now
        interaction.on_end(lambda: self._close(trace_id, "the interaction ended before this span"))

    def on_trace_end(self, trace: Trace) -> None:
        if trace.trace_id in self._foreign:
            with self._lock:
                self._foreign.discard(trace.trace_id)
            self._forward("on_trace_end", trace)
            return
        self._close(trace.trace_id, "the SDK ended its trace before this span")

    def _close(self, trace_id: str, reason: str) -> None:
        """Forget a trace; end (with an error) the spans of it the SDK left open."""
        with self._lock:
            mirror = self._mirrors.pop(trace_id, None)
        if mirror is None or mirror.interaction.spans is None:
            return
        for span_id, (_, mirrored) in list(mirror.nodes.items()):
            if mirrored is not None and span_id not in mirror.ended:
                mirror.ended.add(span_id)
                mirror.interaction.spans.end(mirrored, error=reason)

    # spans ---------------------------------------------------------------------------------------
    def _mirror_of(self, span: SdkSpan[Any], hook: str) -> _Mirror | None:
        """The mirror of the trace `span` belongs to; None when its trace is not an interaction's
        (a span of a trace started outside any interaction goes to the downstream processors'
        `hook`, one of a trace recorded nowhere goes nowhere)."""
        mirror = self._mirrors.get(span.trace_id)
        if mirror is None and span.trace_id in self._foreign:
            self._forward(hook, span)
        return mirror

    def on_span_start(self, span: SdkSpan[Any]) -> None:
        mirror = self._mirror_of(span, "on_span_start")
        if mirror is None:
            return
        sink = mirror.interaction.spans
        assert sink is not None
        data = span.span_data
        mirrored = None
        if _mirrored(data):  # its fields are set at the end (a handoff's target is known only then)
            kind = "turn" if isinstance(data, TurnSpanData) else data.type
            mirrored = sink.start(
                _span_name(data),
                parent=mirror.parent_of(span.parent_id),
                attributes={f"{ATTRIBUTE_PREFIX}span_type": kind},
            )
        with self._lock:
            mirror.nodes[span.span_id] = (span.parent_id, mirrored)

    def on_span_end(self, span: SdkSpan[Any]) -> None:
        mirror = self._mirror_of(span, "on_span_end")
        if mirror is None:
            return
        _, mirrored = mirror.nodes.get(span.span_id, (None, None))
        if mirrored is None or span.span_id in mirror.ended or mirror.interaction.spans is None:
            return
        mirror.ended.add(span.span_id)
        data = span.span_data  # final values now: the handoff's target, a guardrail's verdict
        mirrored.update_name(_span_name(data))
        mirrored.set_attributes(_attributes(data))
        error = span.error
        mirror.interaction.spans.end(mirrored, error=str(error.get("message")) if error else None)

    def parent_now(self) -> Any | None:
        """`Interaction.span_parent`: the mirror of the SDK span current in the calling context
        (or of its nearest mirrored ancestor), for the `chat` or `execute_tool` span opened now."""
        current = get_current_span()
        if current is None:
            return None
        mirror = self._mirrors.get(current.trace_id)
        if mirror is None or mirror.interaction is not current_interaction():
            return None
        return mirror.parent_of(current.span_id)

    # the rest goes downstream ----------------------------------------------------------------------
    def _forward(self, method: str, item: Any) -> None:
        for processor in self.downstream:
            try:
                getattr(processor, method)(item)
            except Exception:  # as the SDK does for its processors: one failing is not the run's
                log.exception("trace processor %r failed in %s", processor, method)

    def shutdown(self) -> None:
        for processor in self.downstream:
            processor.shutdown()

    def force_flush(self) -> None:
        for processor in self.downstream:
            processor.force_flush()


_PROCESSOR: ShipyardTraceProcessor | None = None
_PROCESSOR_LOCK = threading.Lock()
_ON: list[Any] = [None]  # the trace provider Shipyard's processor was last installed on


def tracing_processor() -> ShipyardTraceProcessor:
    """Shipyard's trace processor, made the SDK's only one (again, if the processors were changed
    since): the processors found there become its downstream. When the trace provider's processors
    cannot be read (a provider of your own), they are replaced, so nothing from inside an
    interaction can reach them; register yours with `ShipyardTraceProcessor.downstream` then."""
    global _PROCESSOR
    with _PROCESSOR_LOCK:
        provider = get_trace_provider()
        found = getattr(getattr(provider, "_multi_processor", None), "_processors", None)
        current = tuple(found) if isinstance(found, tuple | list) else None
        if _PROCESSOR is not None and (current == (_PROCESSOR,) or (current is None and _ON[0] is provider)):
            return _PROCESSOR
        if _PROCESSOR is None:
            _PROCESSOR = ShipyardTraceProcessor()
        _ON[0] = provider
        if current is None:
            log.warning(
                "Shipyard cannot read the OpenAI Agents SDK's trace processors (trace provider %s); it "
                "replaced them, so traces outside Shipyard interactions are not exported",
                type(provider).__name__,
            )
        elif _PROCESSOR in current:  # processors added after Shipyard's: they join the downstream
            _PROCESSOR.downstream += tuple(p for p in current if p is not _PROCESSOR)
        else:  # the processors were replaced (or this is the first time): they are the downstream
            _PROCESSOR.downstream = current
        set_trace_processors([_PROCESSOR])
        return _PROCESSOR


# input and result ----------------------------------------------------------------------------------
def to_input(history: Iterable[Message], user_input: str) -> list[TResponseInputItem]:
    """The SDK's input list for a run: `history` (chat-completions messages: earlier user and
    assistant turns, system messages, assistant tool calls and tool results) then the user's input."""
    items: list[Any] = []
    for m in history:
        role = m.get("role")
        if role == "tool":
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": m.get("tool_call_id", ""),
                    "output": message_text(m),
                }
            )
            continue
        if role not in ("user", "assistant", "system", "developer"):
            continue
        text = message_text(m)
        if text or role != "assistant":
            items.append({"role": role, "content": text})
        for call in m.get("tool_calls") or ():
            fn = call.get("function") or {}
            items.append(
                {
                    "type": "function_call",
                    "call_id": call.get("id", ""),
                    "name": fn.get("name", ""),
                    "arguments": fn.get("arguments") or "{}",
                }
            )
    items.append({"role": "user", "content": user_input})
    return items


def agent_result(result: RunResult) -> AgentResult:
    """A finished run as an `AgentResult`: the final output as text; `escalated` when the run stopped
    for a human to approve tool calls (`metadata["pending_approvals"]`: each tool and its arguments).
    `metadata["openai_agents"]` names the last agent and the handoffs made."""
    handoffs = [
        [item.source_agent.name, item.target_agent.name]
        for item in result.new_items
        if isinstance(item, HandoffOutputItem)
    ]
    metadata: dict[str, Any] = {"openai_agents": {"last_agent": result.last_agent.name, "handoffs": handoffs}}
    if result.interruptions:
        pending = [{"tool": item.name, "arguments": item.arguments} for item in result.interruptions]
        metadata["pending_approvals"] = pending
        names = ", ".join(str(p["tool"]) for p in pending)
        return AgentResult(
            output=f"A person must approve this before I go on: {names}.",
            status="escalated",
            metadata=metadata,
        )
    return AgentResult(output=answer_text(result.final_output), metadata=metadata)


def system_prompt(run_context: RunContextWrapper[Any], sdk_agent: Agent[Any]) -> str:
    """Dynamic `instructions` for an SDK agent: the agent version's system prompt (its prompt bundle,
    rendered with `prompt_variables`), versioned with the agent: `Agent(..., instructions=system_prompt)`.

    Raises ShipyardError outside an interaction (the prompt belongs to the version that runs)."""
    return system_prompt_for(f"agent {sdk_agent.name!r}", "instructions")


# the agent -----------------------------------------------------------------------------------------
_WARM_REPLY = ChatResponse(text="ok", tool_calls=[], usage=Usage(1, 1), model="warm-up", provider="shipyard")
"""The canned local answer of the warm-up run: no model is called."""


def warmup(starting_agent: Agent[Any]) -> Callable[[], Awaitable[None]]:
    """An `AgentSpec.warmup` hook for `starting_agent`: its tools (and those of the agents it can
    reach) are observed, the trace processor is installed, and one run of the agent (its guardrails
    left out) is answered by a canned local reply, which loads what the SDK loads on its first run."""

    async def warm_up() -> None:
        observe_graph(starting_agent)
        tracing_processor()
        proxy_openai_client()
        client = openai_client(canned_transport(lambda _request: _WARM_REPLY))
        model = OpenAIChatCompletionsModel("warm-up", openai_client=client)
        quiet = starting_agent.clone(input_guardrails=[], output_guardrails=[], hooks=None)
        try:
            await Runner.run(quiet, "warm-up", max_turns=1, run_config=RunConfig(model=model))
        except AgentsException:
            pass  # a structured output type does not accept the canned "ok": the SDK is loaded all the same
        finally:
            await client.close()

    return warm_up


def shipyard_agent(
    name: str,
    starting_agent: Agent[Any],
    *,
    run_config: RunConfig | None = None,
    max_turns: int = DEFAULT_MAX_TURNS,
    context: Callable[[AgentContext], Any] | None = None,
    idempotent: Iterable[str] = (),
    tags: Mapping[str, Iterable[str]] | None = None,
) -> Callable[[str, AgentContext], Awaitable[AgentResult]]:
    """Register the SDK agent `starting_agent` as the Shipyard agent `name`: each interaction is one
    `Runner.run` from it, with `ctx.history` then the user's input as its input.

        assistant = shipyard_agent("support", support_agent)   # shipyard.yaml: entry: agent:assistant

    Args:
        name: the agent's name in shipyard.yaml, the CLI and the API.
        starting_agent: the SDK agent each run starts with (its handoffs and agent tools come along).
        run_config: your RunConfig for every run (see `run_config()` for what Shipyard sets in it).
        max_turns: the SDK's turn limit per run (exceeding it fails the interaction).
        context: builds the SDK's run context (`RunContextWrapper.context`, what your tools receive)
            for each interaction from its `AgentContext`; default: none.
        idempotent: names of the graph's tools that change nothing (a lookup): their results may be
            reused and a replay may run them; every other tool counts as having side effects.
        tags: tool name -> its tags (e.g. `{"refund_order": ["money"]}`), for the launch checklist.

    Returns the agent function (the value `entry:` names), with the warm-up and the declared tools
    (`agent_tools`) set. Raises ShipyardError when `idempotent` or `tags` names no tool of the graph."""
    tools = agent_tools(starting_agent, idempotent=idempotent, tags=tags, name=name)
    observe_graph(starting_agent)
    base = run_config

    async def run(user_input: str, ctx: AgentContext) -> AgentResult:
        result = await Runner.run(
            starting_agent,
            to_input(ctx.history, user_input),
            context=context(ctx) if context is not None else None,
            max_turns=max_turns,
            run_config=_configured(base),
        )
        return agent_result(result)

    doc = f"The OpenAI Agents SDK agent {starting_agent.name!r}, run by Shipyard as {name!r}."
    return framework_agent(name, run, doc=doc, warmup=warmup(starting_agent), tools=tools)
