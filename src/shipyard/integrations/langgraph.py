"""LangGraph / LangChain agents in Shipyard: two lines on an existing graph.

    from shipyard.integrations.langgraph import chat_model, langgraph_agent

    model = chat_model("gpt-4o-mini", temperature=0)   # was: ChatOpenAI(model="gpt-4o-mini", temperature=0)
    graph = create_react_agent(model, [lookup_order, issue_refund])   # or your StateGraph(...).compile()
    support = langgraph_agent("support", graph)        # shipyard.yaml: `entry: agent:support`

What each line does:

- `chat_model(...)` is a `ChatOpenAI` (same arguments) whose requests go to Shipyard's model proxy
  (`shipyard.integrations`): every call is `ctx.llm` of the running interaction, so it is a
  `chat {model}` span with tokens and cost, retried and failed over, recorded and replayed. The
  agent version's configured model answers (shipyard.yaml), whatever `model=` names. Put it where
  you had `ChatOpenAI(...)`, once per model; `bind_tools`, `with_structured_output`, streaming
  and sync `invoke` from worker threads all work.
- `langgraph_agent(name, graph)` registers the compiled graph as the Shipyard agent `name`: the
  user's message (after `ctx.history`, and the prompt bundle's system prompt) goes in as
  `{"messages": [...]}`, the last message's text comes out. The tools of every `ToolNode` in the
  graph and its subgraphs become Shipyard tool calls through `ctx.tools.observe` (name,
  arguments, result, status, duration): trajectory and `must_not_call` evals see them, and an
  eval replay answers them from the recording without running them. Those tools are also the
  agent's declared tools (`spec.tools`: names, descriptions, JSON schemas), known when it loads, so
  a `tool_policy` guardrail may name them and eval suites' tool names are checked against them;
  they count as having side effects unless marked (`langgraph_agent(..., idempotent=[...])`). A
  call a tool_call guardrail refuses (or whose result a tool_result guardrail withholds) is recorded
  `blocked` and answered with an error `ToolMessage` saying why, so the model can explain and the run
  goes on (other tool exceptions are the node's `handle_tool_errors` to handle, as before). A
  graph run from inside a node function is not seen: its tools are not declared (pass them with
  `tools=`, after `instrument(inner_graph)`).

It fails closed rather than record an interaction that lies: a chat model that was not built
with `chat_model` (a plain `ChatOpenAI`, another provider's model) or a LangChain tool run
outside an instrumented `ToolNode` is refused before it calls anything, with a message saying
what to change (a callback handler in the run's config checks every model and tool start).

LangChain's own tracing (LangSmith) is switched off inside Shipyard's runs even when
`LANGSMITH_TRACING` is set, so nothing leaves the process unless the user says so
(`langgraph_agent(..., langsmith=True)`). What it would have traced is in the interaction's trace
instead: each node run is a `node {name}` span under `invoke_agent` (a subgraph's nodes under its
node), and each model and tool call is under the node that made it.

A graph compiled with a checkpointer keeps the conversation itself: the thread is the session
(`thread_id = ctx.session_id`) and only the new message is sent. An `interrupt()` (LangGraph's
human in the loop) ends the interaction as `escalated`, its value as the output; the session's
next message resumes it (`Command(resume=...)`).

LangGraph and LangChain are not dependencies of Shipyard: this module is imported only by agents
written with them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import inspect
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any
from uuid import UUID

import httpx
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import (
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    convert_to_messages,
)
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import var_child_runnable_config
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.errors import GraphBubbleUp
from langgraph.prebuilt import ToolNode
from langgraph.prebuilt.tool_node import ToolCallRequest
from langgraph.pregel import Pregel
from langgraph.types import Command, GraphOutput, Interrupt

from shipyard.agents import (
    AgentContext,
    AgentResult,
    Interaction,
    ReplayedToolError,
    SpanSink,
    ToolRefusedError,
    current_interaction,
)
from shipyard.errors import ShipyardError
from shipyard.integrations._agent import answer_text, framework_agent
from shipyard.integrations._declared import DeclaredTool, DeclaredTools, declared_tools
from shipyard.integrations._transport import PROXY_BASE_URL, async_http_client, canned_transport, http_client
from shipyard.llm import ChatResponse, ToolCall, Usage

__all__ = ["NotThroughShipyard", "chat_model", "graph_tools", "instrument", "langgraph_agent"]

PROXIED = "shipyard_model_proxy"
"""The metadata key `chat_model` puts on its models; a chat model run without it is refused."""

# settings of ChatOpenAI that chat_model owns: passing one would silently not do what it says
_OWNED = {
    "base_url": "the proxy's base URL",
    "openai_api_base": "the proxy's base URL",
    "api_key": "none: the proxy needs no key (the model's key is in shipyard.yaml, `api_key_env`)",
    "openai_api_key": "none: the proxy needs no key (the model's key is in shipyard.yaml, `api_key_env`)",
    "http_client": "the proxy's sync transport",
    "http_async_client": "the proxy's async transport",
    "openai_proxy": "the proxy's transport",
    "client": "the proxy's transport",
    "async_client": "the proxy's transport",
    "root_client": "the proxy's transport",
    "root_async_client": "the proxy's transport",
}

# set while an observed ToolNode call runs its tool: a tool started without it was not observed
_OBSERVED: ContextVar[bool] = ContextVar("shipyard_langgraph_tool_observed", default=False)
_SERDE = JsonPlusSerializer()


class NotThroughShipyard(ShipyardError):
    """A graph run inside Shipyard started a chat model or a tool that Shipyard cannot see; it is
    refused before it calls anything (its cost, spans and eval replay would be missing)."""


def chat_model(model: str = "shipyard", **kwargs: Any) -> ChatOpenAI:
    """A `ChatOpenAI` whose calls go through Shipyard's model proxy (`ctx.llm` of the running
    interaction), for use where the graph had `ChatOpenAI(...)`.

    Args:
        model: the model name LangChain sees (for its own model-specific behaviour); the agent
            version's configured model answers, whatever it is.
        kwargs: any other `ChatOpenAI` argument (temperature, max_tokens, seed, stop, timeout,
            streaming, ...). Not the ones it sets itself: base_url, api_key, http_client,
            http_async_client, openai_proxy and the clients (a `ShipyardError` says why);
            `max_retries` must be 0 or unset (Shipyard retries and fails over) and
            `use_responses_api` False or unset (the proxy speaks chat completions).

    Outside a Shipyard interaction its calls are refused (HTTP 400 from the proxy): it never
    calls a model on its own."""
    for key in kwargs:
        if key in _OWNED:
            raise ShipyardError(
                f"chat_model() sets {key!r} itself ({_OWNED[key]})",
                hint=f"remove {key}= from chat_model(...): Shipyard calls the model configured for "
                "the agent in shipyard.yaml",
            )
    if kwargs.pop("max_retries", None) not in (None, 0):
        raise ShipyardError(
            "chat_model(max_retries=...): Shipyard retries and fails over "
            "itself, so the LangChain client must not retry on top",
            hint="remove max_retries= (or set max_retries in shipyard.yaml under the model)",
        )
    if kwargs.pop("use_responses_api", None):
        raise ShipyardError(
            "chat_model(use_responses_api=True): Shipyard's model proxy speaks the chat-completions API",
            hint="remove use_responses_api=",
        )
    metadata = {**(kwargs.pop("metadata", None) or {}), PROXIED: True}
    kwargs.setdefault("stream_usage", True)  # the proxy reports usage on streams too
    return _chat_openai(model, http_client(), async_http_client(), metadata=metadata, **kwargs)


def _chat_openai(model: str, sync: httpx.Client, async_: httpx.AsyncClient, **kwargs: Any) -> ChatOpenAI:
    """A chat-completions `ChatOpenAI` that sends through the given httpx clients, never retrying."""
    return ChatOpenAI(
        model=model,
        base_url=PROXY_BASE_URL,
        api_key="shipyard",
        http_client=sync,
        http_async_client=async_,
        max_retries=0,
        use_responses_api=False,
        **kwargs,
    )


# tools --------------------------------------------------------------------------------------------
class ToolFailed(Exception):
    """A `ToolNode` answered a tool call with an error message (`status="error"`: the tool raised
    and the node's `handle_tool_errors` turned it into a message, or the model named a tool the
    node does not have). Recorded as the tool call's error; its text is the message's content."""


def _value(result: Any) -> Any:
    """What the tool-call record keeps of a ToolNode's answer (JSON): a `ToolMessage`'s content
    (with its artifact, if any); anything else (a `Command`) in LangGraph's own serialization,
    so a replay gives the graph the same object back."""
    if isinstance(result, ToolMessage):
        if result.status == "error":
            raise ToolFailed(result.content if isinstance(result.content, str) else str(result.content))
        if result.artifact is None:
            return result.content
        return {"content": result.content, "artifact": result.artifact}
    kind, data = _SERDE.dumps_typed(result)
    return {"langgraph": repr(result)[:500], "serde": kind, "data": base64.b64encode(data).decode()}


def _answer(value: Any, call: Mapping[str, Any]) -> Any:
    """The ToolNode answer a recorded value stands for (a replay)."""
    if isinstance(value, dict) and "serde" in value:
        return _SERDE.loads_typed((value["serde"], base64.b64decode(value["data"])))
    content, artifact = (value["content"], value["artifact"]) if isinstance(value, dict) else (value, None)
    return ToolMessage(content=content, artifact=artifact, name=call["name"], tool_call_id=call["id"])


def _refusal(e: ToolRefusedError, call: Mapping[str, Any]) -> ToolMessage:
    """The error message the model gets for a call a guardrail refused (or whose result it
    withheld), in place of the node's answer: the run goes on and the model can explain it."""
    return ToolMessage(content=f"Error: {e}", name=call["name"], tool_call_id=call["id"], status="error")


def _replayed_failure(e: ReplayedToolError, call: Mapping[str, Any]) -> ToolMessage:
    """The error message a ToolNode answered in the recorded run, or the exception again."""
    if e.type_name != ToolFailed.__name__:
        raise e
    return ToolMessage(content=str(e), name=call["name"], tool_call_id=call["id"], status="error")


async def _observe_async(
    request: ToolCallRequest, execute: Callable[[ToolCallRequest], Awaitable[Any]]
) -> Any:
    """`awrap_tool_call` of an instrumented ToolNode: the call through `ctx.tools.observe`."""
    interaction = current_interaction()
    if interaction is None:  # the graph run outside Shipyard: the node as it was
        return await execute(request)
    call = request.tool_call
    live: list[Any] = []

    async def run() -> Any:
        token = _OBSERVED.set(True)
        try:
            live.append(await execute(request))
        finally:
            _OBSERVED.reset(token)
        return _value(live[0])

    try:
        value = await interaction.ctx.tools.observe(call["name"], call["args"], run, call_id=call["id"])
    except ToolRefusedError as e:
        return _refusal(e, call)
    except ToolFailed:
        return live[0]
    except ReplayedToolError as e:
        return _replayed_failure(e, call)
    return live[0] if live else _answer(value, call)


def _observe_sync(request: ToolCallRequest, execute: Callable[[ToolCallRequest], Any]) -> Any:
    """`wrap_tool_call` of an instrumented ToolNode (a sync `graph.invoke`, in a worker thread)."""
    interaction = current_interaction()
    if interaction is None:
        return execute(request)
    call = request.tool_call
    live: list[Any] = []

    def run() -> Any:
        token = _OBSERVED.set(True)
        try:
            live.append(execute(request))
        finally:
            _OBSERVED.reset(token)
        return _value(live[0])

    try:
        value = interaction.ctx.tools.observe_sync(call["name"], call["args"], run, call_id=call["id"])
    except ToolRefusedError as e:
        return _refusal(e, call)
    except ToolFailed:
        return live[0]
    except ReplayedToolError as e:
        return _replayed_failure(e, call)
    return live[0] if live else _answer(value, call)


def _instrument_node(node: ToolNode) -> None:
    """Observe a ToolNode's tool calls (innermost, under any wrapper the user gave the node, so
    what is recorded is what ran: a wrapper's retries are separate calls, its short-cuts none)."""
    if getattr(node, "_shipyard_observed", False):
        return
    user_sync, user_async = node._wrap_tool_call, node._awrap_tool_call
    if user_sync is None and user_async is None:
        node._wrap_tool_call, node._awrap_tool_call = _observe_sync, _observe_async
    else:
        if user_sync is not None:
            node._wrap_tool_call = lambda req, ex: user_sync(
                req, functools.partial(_observe_sync, execute=ex)
            )
        if user_async is not None:
            node._awrap_tool_call = lambda req, ex: user_async(
                req, functools.partial(_observe_async, execute=ex)
            )
    node._shipyard_observed = True  # type: ignore[attr-defined]


def _graphs(graph: Pregel) -> list[Pregel]:
    """A compiled graph and its subgraphs, nested ones included."""
    return [graph, *(g for _, g in graph.get_subgraphs(recurse=True) if isinstance(g, Pregel))]


def _tool_nodes(graph: Pregel) -> list[ToolNode]:
    return [node.bound for node in graph.nodes.values() if isinstance(node.bound, ToolNode)]


def instrument(graph: Pregel) -> int:
    """Make the tool calls of every `ToolNode` in a compiled graph and its subgraphs Shipyard tool
    calls (`langgraph_agent` does this; call it yourself for a graph your graph invokes from a
    node function, where LangGraph cannot see it as a subgraph). Idempotent; outside a Shipyard
    interaction the nodes behave as before.

    Args:
        graph: a compiled graph (`StateGraph(...).compile()`, `create_react_agent(...)`).

    Returns the number of ToolNodes found."""
    nodes = [node for g in _graphs(graph) for node in _tool_nodes(g)]
    for node in nodes:
        _instrument_node(node)
    return len(nodes)


def _declared(tool: BaseTool) -> DeclaredTool:
    fn = convert_to_openai_tool(tool)["function"]
    parameters = fn.get("parameters") or {"type": "object", "properties": {}}
    return DeclaredTool(fn["name"], fn.get("description") or "", parameters)


def graph_tools(
    graph: Pregel,
    *,
    tools: Iterable[BaseTool] = (),
    idempotent: Iterable[str] = (),
    tags: Mapping[str, Iterable[str]] | None = None,
    name: str | None = None,
) -> DeclaredTools:
    """The tools of every `ToolNode` in a compiled graph and its subgraphs (each name once), as the
    Shipyard agent's declared tools (`langgraph_agent` does this; for your own `@agent`:
    `@agent("support", tools=graph_tools(graph))`). Found without running the graph.

    Args:
        graph: the compiled graph.
        tools: more tools the graph runs that its ToolNodes do not show (those of a graph a node
            function invokes, instrumented with `instrument`).
        idempotent: names of tools that change nothing (the rest count as having side effects).
        tags: tool name -> its tags (e.g. `{"issue_refund": ["money"]}`), for the launch checklist.
        name: the Shipyard agent's name, for messages (default: the graph's).

    Raises ShipyardError when `idempotent` or `tags` names a tool the graph does not have."""
    found = [t for g in _graphs(graph) for n in _tool_nodes(g) for t in n.tools_by_name.values()]
    return declared_tools(
        [_declared(t) for t in [*found, *tools]],
        framework="the LangGraph graph",
        agent=name or graph.name,
        idempotent=idempotent,
        tags=tags,
    )


# the run's checks -----------------------------------------------------------------------------------
def _component(serialized: Mapping[str, Any] | None, fallback: str) -> str:
    ids = (serialized or {}).get("id")
    return str(ids[-1]) if isinstance(ids, list) and ids else (serialized or {}).get("name") or fallback


class _Guard(BaseCallbackHandler):
    """Refuses, before it runs, a chat model or tool that would bypass Shipyard inside a run."""

    raise_error = True
    run_inline = True

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._model(serialized, metadata, kwargs)

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._model(serialized, metadata, kwargs)

    def _model(
        self, serialized: dict[str, Any], metadata: dict[str, Any] | None, kwargs: dict[str, Any]
    ) -> None:
        if (metadata or {}).get(PROXIED):
            return
        name = _component(serialized, "a chat model")
        params = kwargs.get("invocation_params") or {}
        model = params.get("model") or params.get("model_name")
        raise NotThroughShipyard(
            f"the graph called {name}{f'({model!r})' if model else ''}, which does not go through "
            "Shipyard: its calls would have no spans, no cost, no retries and no eval replay",
            hint="build the graph's chat models with shipyard.integrations.langgraph.chat_model(...) "
            "instead of ChatOpenAI(...) (same arguments)",
        )

    def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        **kwargs: Any,
    ) -> None:
        if _OBSERVED.get():
            return
        name = _component(serialized, "a tool")
        raise NotThroughShipyard(
            f"the graph ran the tool {name!r} outside a ToolNode Shipyard observes: it would not be a "
            "tool call of the interaction (no span, invisible to trajectory and must_not_call "
            "evals, run again by an eval replay)",
            hint="run tools through a langgraph ToolNode in the graph, or call "
            "shipyard.integrations.langgraph.instrument(graph) on the graph that has it",
        )


_GUARD = _Guard()  # holds nothing per run: one for every interaction


@contextlib.contextmanager
def _langsmith(enabled: bool) -> Iterator[None]:
    """LangSmith tracing off for the code inside (a context variable: this run only), unless the
    user said it may send traces."""
    if enabled:
        yield
        return
    from langsmith import tracing_context

    with tracing_context(enabled=False):
        yield


@contextlib.contextmanager
def _span_parent(interaction: Interaction | None, nodes: _NodeSpans | None) -> Iterator[None]:
    """Model and tool spans under the span of the node that calls, for the code inside; the node
    spans still open at the end are ended."""
    if interaction is None or nodes is None:
        yield
        return
    before, interaction.span_parent = interaction.span_parent, nodes.parent_now
    try:
        yield
    finally:
        interaction.span_parent = before
        nodes.close()


class _NodeSpans(BaseCallbackHandler):
    """LangGraph's own trace of a run (the run tree LangSmith would get) as spans of the
    interaction's trace: one `node {name}` span per node run, under `invoke_agent` (a subgraph's
    nodes under the span of the node that runs it), with the `chat` and `execute_tool` spans of
    the calls a node makes under that node's span (`Interaction.span_parent`). One per run."""

    run_inline = True

    def __init__(self, sink: SpanSink) -> None:
        self._sink = sink
        self._lock = threading.Lock()
        self._parents: dict[UUID, UUID | None] = {}  # every chain run of the graph -> its parent run
        self._spans: dict[UUID, Any] = {}  # node runs -> their open span

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        node = (metadata or {}).get("langgraph_node")
        with self._lock:
            self._parents[run_id] = parent_run_id
        if not isinstance(node, str) or kwargs.get("name") != node or node.startswith("__"):
            return  # the graph itself, a branch, or a runnable inside a node: no span of its own
        span = self._sink.start(
            f"node {node}",
            parent=self.span_above(parent_run_id),
            attributes={"langgraph.node": node, "langgraph.step": (metadata or {}).get("langgraph_step", -1)},
        )
        with self._lock:
            self._spans[run_id] = span

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, None)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        # an interrupt (a human's turn) or a Command to a parent graph is how a node hands over
        self._end(run_id, None if isinstance(error, GraphBubbleUp) else f"{type(error).__name__}: {error}")

    def _end(self, run_id: UUID, error: str | None) -> None:
        with self._lock:
            span = self._spans.pop(run_id, None)
        if span is not None:
            self._sink.end(span, error=error)

    def span_above(self, run_id: UUID | None) -> Any | None:
        """The span of the nearest node run at or above `run_id` (None: the `invoke_agent` span)."""
        with self._lock:
            while run_id is not None:
                span = self._spans.get(run_id)
                if span is not None:
                    return span
                run_id = self._parents.get(run_id)
        return None

    def parent_now(self) -> Any | None:
        """`Interaction.span_parent`: the span of the node whose code is calling now (LangChain
        keeps the calling runnable's config in a context variable)."""
        config = var_child_runnable_config.get()
        callbacks = config.get("callbacks") if config else None
        return self.span_above(getattr(callbacks, "parent_run_id", None))

    def close(self) -> None:
        """End the spans of node runs that never ended (the run was cancelled or timed out)."""
        with self._lock:
            left, self._spans = list(self._spans.values()), {}
        for span in left:
            self._sink.end(span, error="the graph run ended before this node did")


# the agent ------------------------------------------------------------------------------------------
def _text(message: Any) -> str:
    if isinstance(message, BaseMessage):
        return message.text
    return str(message)


def _interrupt_text(interrupts: tuple[Interrupt, ...]) -> str:
    """What an interrupt asks the human, as the escalated interaction's output."""
    return "\n".join(answer_text(it.value) for it in interrupts)


class _GraphAgent:
    """How one compiled graph is run for a Shipyard interaction (see `langgraph_agent`)."""

    def __init__(
        self, graph: Pregel, *, config: Mapping[str, Any] | None, sync: bool, langsmith: bool
    ) -> None:
        self.graph = graph
        self.config = dict(config or {})
        self.sync = sync
        self.langsmith = langsmith
        self.stateful = isinstance(graph.checkpointer, BaseCheckpointSaver)

    def run_config(self, ctx: AgentContext, nodes: _NodeSpans | None = None) -> RunnableConfig:
        """The config of one run: the user's, with Shipyard's callbacks and the session's thread."""
        ours = [_GUARD] if nodes is None else [_GUARD, nodes]
        config: dict[str, Any] = {**self.config, "callbacks": [*(self.config.get("callbacks") or []), *ours]}
        if self.stateful:
            config["configurable"] = {**(self.config.get("configurable") or {}), "thread_id": ctx.session_id}
        return config  # type: ignore[return-value]

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """`graph.ainvoke`-like call, or its sync twin in a worker thread (`sync=True`)."""
        if self.sync:
            return await asyncio.to_thread(fn, *args, **kwargs)
        result = fn(*args, **kwargs)
        return await result if inspect.isawaitable(result) else result

    async def graph_input(self, user_input: str, ctx: AgentContext, config: RunnableConfig) -> Any:
        """The new messages (the whole conversation unless the checkpointer keeps it), or the
        answer to the interrupt the session's thread is waiting on."""
        messages: list[BaseMessage] = []
        new_thread = True
        if self.stateful:
            get = self.graph.get_state if self.sync else self.graph.aget_state
            state = await self._call(get, config)
            if state.interrupts:
                return Command(resume=user_input)
            new_thread = not (state.values or {}).get("messages")
        else:
            messages.extend(convert_to_messages(ctx.history))
        if ctx.system_prompt and new_thread:
            messages.insert(0, SystemMessage(ctx.system_prompt))
        return {"messages": [*messages, HumanMessage(user_input)]}

    async def __call__(self, user_input: str, ctx: AgentContext) -> AgentResult:
        interaction = current_interaction()
        sink = interaction.spans if interaction is not None else None
        nodes = _NodeSpans(sink) if sink is not None else None
        config = self.run_config(ctx, nodes)
        with _langsmith(self.langsmith), _span_parent(interaction, nodes):
            graph_input = await self.graph_input(user_input, ctx, config)
            invoke = self.graph.invoke if self.sync else self.graph.ainvoke
            out = await self._call(invoke, graph_input, config, version="v2")
        if not isinstance(out, GraphOutput):  # pragma: no cover - a LangGraph without version="v2"
            raise TypeError(f"graph.invoke(version='v2') returned {type(out).__name__}, not GraphOutput")
        if out.interrupts:
            return AgentResult(output=_interrupt_text(out.interrupts), status="escalated")
        messages = out.value.get("messages") if isinstance(out.value, Mapping) else None
        if not messages:
            raise ValueError(
                "the graph's output has no 'messages': langgraph_agent runs graphs whose state has a "
                "'messages' list (MessagesState, create_react_agent)"
            )
        return AgentResult(output=_text(messages[-1]))

    async def warm_up(self) -> None:
        """LangChain's and the OpenAI client's lazy start (their request and response types are
        built on first use, tens of ms), before the first interaction is timed: the graph's tools
        bound to a `ChatOpenAI` like `chat_model`'s, called once against a canned answer in
        process. Nothing reaches the proxy or a model; the graph itself is not run."""
        tools = [t for g in _graphs(self.graph) for n in _tool_nodes(g) for t in n.tools_by_name.values()]
        calls = [ToolCall("call_warm_up", tools[0].name, {})] if tools else []
        reply = ChatResponse("warm", calls, Usage(1, 1), "warm-up", "warm-up")
        canned = canned_transport(lambda _request: reply)
        model = _chat_openai("shipyard", httpx.Client(transport=canned), httpx.AsyncClient(transport=canned))
        bound = model.bind_tools(tools) if tools else model
        messages = [SystemMessage("warm-up"), HumanMessage("warm-up")]
        with _langsmith(self.langsmith):
            if self.sync:
                await asyncio.to_thread(bound.invoke, messages)
            else:
                await bound.ainvoke(messages)


def langgraph_agent(
    name: str,
    graph: Pregel,
    *,
    config: Mapping[str, Any] | None = None,
    sync: bool = False,
    langsmith: bool = False,
    tools: Iterable[BaseTool] = (),
    idempotent: Iterable[str] = (),
    tags: Mapping[str, Iterable[str]] | None = None,
) -> Callable[[str, AgentContext], Awaitable[AgentResult]]:
    """Register a compiled LangGraph graph as the Shipyard agent `name` and return its agent
    function (point shipyard.yaml's `entry:` at it). Its `ToolNode`s are instrumented (see
    `instrument`) and their tools declared (see `graph_tools`); its chat models must be
    `chat_model(...)`.

    Args:
        name: the agent's name, as for `@agent`.
        graph: the compiled graph; its state has a `messages` list (MessagesState,
            `create_react_agent`).
        config: more run config for every run (`recursion_limit`, `configurable`, `tags`,
            callbacks of your own), as you would pass to `graph.invoke`.
        sync: run `graph.invoke` in a worker thread instead of `await graph.ainvoke` (a graph
            with a sync-only checkpointer such as `SqliteSaver`); the proxy's sync transport
            answers its model calls.
        langsmith: let LangChain's LangSmith tracing run as its environment says
            (`LANGSMITH_TRACING`); by default it is off inside Shipyard's runs.
        tools: tools the graph runs outside its own ToolNodes (a graph a node function invokes,
            instrumented with `instrument`), declared too.
        idempotent: names of the graph's tools that change nothing (a lookup): their results may be
            reused and a replay may run them; every other tool counts as having side effects.
        tags: tool name -> its tags (e.g. `{"issue_refund": ["money"]}`), for the launch checklist."""
    if not isinstance(graph, Pregel):
        compiled = " (call .compile() on it first)" if hasattr(graph, "compile") else ""
        raise ShipyardError(
            f"langgraph_agent({name!r}, ...) needs a compiled LangGraph graph, got {type(graph).__name__}{compiled}",
            hint="pass the result of StateGraph(...).compile() or create_react_agent(...)",
        )
    declared = graph_tools(graph, tools=tools, idempotent=idempotent, tags=tags, name=name)
    instrument(graph)
    runner = _GraphAgent(graph, config=config, sync=sync, langsmith=langsmith)

    async def run(user_input: str, ctx: AgentContext) -> AgentResult:
        return await runner(user_input, ctx)

    doc = f"The LangGraph agent {name!r} ({type(graph).__name__} {graph.name!r}), run by Shipyard."
    return framework_agent(name, run, doc=doc, warmup=runner.warm_up, tools=declared)
