"""Google ADK agents, run by Shipyard: one line applied to the agent you already have.

    from google.adk.agents import LlmAgent
    from google.adk.models.lite_llm import LiteLlm
    from shipyard.integrations.adk import adk_agent

    root_agent = LlmAgent(name="support", model=LiteLlm(model="openai/gpt-4o-mini"),
                          instruction="...", tools=[lookup_order])
    support = adk_agent("support", root_agent)      # shipyard.yaml: entry: agent:support

`adk_agent` takes the root agent (a `Runner` with its session service, or an `App`) and returns
the Shipyard agent function. While Shipyard runs it:

- **model calls** of every `LlmAgent` in the tree (sub-agents, `AgentTool` agents) go through
  `ctx.llm` of the interaction: a `LiteLlm` model keeps its settings and sends through Shipyard's
  in-process model proxy (LiteLLM's OpenAI route with an OpenAI client on the proxy transport:
  no socket); any other model (a Gemini name, a `Gemini` object) is answered the same way. The
  agent version's configured model answers, traced, priced, retried, failed over, recorded and
  replayed. Outside Shipyard (your own `Runner`, `adk web`) the agent calls its own model as before.
- **tools** ADK runs (functions, `FunctionTool`, toolsets, `AgentTool`, agent transfer) are
  recorded as Shipyard tool calls through `ctx.tools.observe` (name, arguments, result, status,
  duration), so trajectory scorers and `must_not_call` see them. Your callbacks and confirmation
  gates run as before; in an eval replay the tool itself does not run (ADK's own control tools,
  such as `transfer_to_agent`, still do: they act on ADK's state only). A call a tool_call guardrail
  refuses (or whose result a tool_result guardrail withholds) is recorded `blocked` and answered
  with `{"error": "<why>"}` as the tool's response, so the model can explain and the run goes on.
- **declared tools**: the tools of every agent of the tree (functions, `FunctionTool`s, `AgentTool`s,
  and `transfer_to_agent` when the tree has sub-agents) are the Shipyard agent's tools (`spec.tools`:
  the names, descriptions and JSON schemas ADK declares to the model), known when it loads: a
  `tool_policy` guardrail may name them, eval suites' tool names are checked against them, the
  launch checklist counts them. They count as having side effects unless marked
  (`adk_agent(..., idempotent=[...])`; `transfer_to_agent` acts on ADK's state only and is marked).
  A toolset (MCP, OpenAPI, ...) lists its tools only at run time: then no tools are declared (as
  before).
- **ADK's OpenTelemetry spans** (`invocation`, `invoke_agent`, `call_llm`, `execute_tool`) are
  children of the interaction's `invoke_agent` span and kept on its trace record (see
  `shipyard.integrations._otel`); nothing is sent to Google Cloud (ADK exports only when told to).
- **the conversation**: each interaction runs in a fresh ADK session holding `ctx.history`, dropped
  when it ends; the answer is the text of the last final response. A tool call left waiting for a
  person (a long-running tool, a confirmation request) or an escalation by the root agent is
  `escalated`; an ADK error response or exception is `failed`.
- **start-up**: importing LiteLLM and ADK's flows takes seconds on first use; `AgentSpec.warmup`
  does it (and one throwaway run of a local agent per model name of the tree, answered in process:
  no model call) before the server reports ready, before an eval run starts timing and before
  `shipyard run`. LiteLLM is kept offline (`LITELLM_OFFLINE_MODE=true` unless
  set): it does not fetch its price list, blog posts or tokenizers from the internet.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import httpx

from shipyard.agents import AgentContext, AgentResult, Interaction, ToolRefusedError, current_interaction
from shipyard.errors import ShipyardError
from shipyard.integrations._agent import framework_agent, system_prompt_for
from shipyard.integrations._declared import DeclaredTool, DeclaredTools, declared_tools
from shipyard.integrations._otel import framework_spans, install_collector
from shipyard.integrations._transport import (
    PROXY_BASE_URL,
    canned_transport,
    openai_client,
    proxy_openai_client,
)
from shipyard.llm import ChatResponse, Message, ToolCall, Usage, message_text

os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")  # before LiteLLM is imported, by anyone

from google.adk.agents import BaseAgent, LlmAgent
from google.adk.apps import App
from google.adk.events import Event
from google.adk.models import BaseLlm, LLMRegistry, LlmRequest, LlmResponse
from google.adk.models.lite_llm import LiteLlm, LiteLLMClient
from google.adk.plugins import BasePlugin
from google.adk.runners import Runner
from google.adk.sessions import InMemorySessionService
from google.adk.tools import AgentTool, BaseTool, FunctionTool, TransferToAgentTool
from google.adk.tools.base_toolset import BaseToolset
from google.genai import types

if TYPE_CHECKING:
    from google.adk.agents.callback_context import CallbackContext
    from google.adk.agents.readonly_context import ReadonlyContext

__all__ = [
    "AdkAgent",
    "AdkRunError",
    "ShipyardLiteLLMClient",
    "ShipyardPlugin",
    "adk_agent",
    "agent_tools",
    "system_prompt",
    "warm_up",
    "warm_up_seconds",
]

_OBSERVED = "__shipyard_observed__"  # marks a tool instance whose run_async is recorded


class ShipyardLiteLLMClient(LiteLLMClient):
    """The `llm_client` of a `LiteLlm` model run by Shipyard: inside an interaction, LiteLLM sends
    the chat-completions request to `ctx.llm` through the model proxy (the model's own settings,
    such as temperature, pass through; its endpoint, key and retries do not: Shipyard's model
    answers and Shipyard retries). Outside an interaction it calls `original` unchanged.

    Args:
        original: the client the model had (LiteLLM itself, by default)."""

    def __init__(self, original: LiteLLMClient | None = None) -> None:
        self.original = original if original is not None else LiteLLMClient()

    async def acompletion(self, model: Any, messages: Any, tools: Any, **kwargs: Any) -> Any:
        if current_interaction() is None:
            return await self.original.acompletion(model=model, messages=messages, tools=tools, **kwargs)
        kwargs.update(
            client=proxy_openai_client(),
            custom_llm_provider="openai",
            api_base=PROXY_BASE_URL,
            api_key="shipyard",
            max_retries=0,
            num_retries=0,
        )
        return await super().acompletion(model=model, messages=messages, tools=tools, **kwargs)

    def completion(self, model: Any, messages: Any, tools: Any, stream: bool = False, **kwargs: Any) -> Any:
        if current_interaction() is None:
            return self.original.completion(
                model=model, messages=messages, tools=tools, stream=stream, **kwargs
            )
        raise ShipyardError(
            "ADK called LiteLLM's blocking completion() inside a Shipyard interaction",
            hint="run the agent with Runner.run_async (adk_agent does); blocking model calls are not proxied",
        )


class _ShipyardModel(BaseLlm):
    """A model that is not a `LiteLlm` (a Gemini name, a `Gemini` object, ...), run by Shipyard:
    inside an interaction a `LiteLlm` on the model proxy answers; outside, the original model
    (`original`, or the one ADK's registry makes of the name)."""

    original: BaseLlm | None
    proxied: LiteLlm

    def _now(self) -> BaseLlm:
        if current_interaction() is not None:
            return self.proxied
        return self.original if self.original is not None else LLMRegistry.new_llm(self.model)

    @property
    def capabilities(self) -> Any:
        return self._now().capabilities

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        async for response in self._now().generate_content_async(llm_request, stream=stream):
            yield response

    def connect(self, llm_request: LlmRequest) -> Any:
        if current_interaction() is not None:
            raise ShipyardError(
                "ADK's live (bidirectional streaming) mode is not proxied by Shipyard",
                hint="run the agent with Runner.run_async",
            )
        return self._now().connect(llm_request)


def _redirect(model: str | BaseLlm) -> BaseLlm:
    """The model to give an agent: a LiteLlm gets Shipyard's client (in place: its settings stay),
    any other model (or model name) is wrapped."""
    if isinstance(model, _ShipyardModel):
        return model
    if isinstance(model, LiteLlm):
        if not isinstance(model.llm_client, ShipyardLiteLLMClient):
            model.llm_client = ShipyardLiteLLMClient(model.llm_client)
        return model
    original: BaseLlm | None = model if isinstance(model, BaseLlm) else None
    if original is None:
        try:
            original = LLMRegistry.new_llm(str(model))
        except ValueError:  # a name ADK cannot resolve: only Shipyard's model can answer it
            original = None
    name = original.model if original is not None else str(model)
    proxied = LiteLlm(model=f"openai/{name}", llm_client=ShipyardLiteLLMClient())
    return _ShipyardModel(model=name, original=original, proxied=proxied)


def _agents(root: BaseAgent) -> list[BaseAgent]:
    """Every agent of the tree: sub-agents and the agents of `AgentTool`s, each once."""
    seen: dict[int, BaseAgent] = {}
    todo = [root]
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen[id(node)] = node
        todo.extend(node.sub_agents)
        for tool in getattr(node, "tools", None) or ():
            if isinstance(tool, AgentTool) and isinstance(tool.agent, BaseAgent):
                todo.append(tool.agent)
    return list(seen.values())


def wire_models(root: BaseAgent) -> int:
    """Route the model calls of every `LlmAgent` of the tree through Shipyard (see `_redirect`);
    an agent with no model of its own uses its ancestor's. Returns how many agents were wired."""
    wired = 0
    for node in _agents(root):
        if not isinstance(node, LlmAgent):
            continue
        if node.model:
            node.model = _redirect(node.model)
            wired += 1
        elif node is root:  # no model anywhere: ADK's default model, answered by Shipyard's
            node.model = _redirect(node.canonical_model)
            wired += 1
    return wired


# tools -------------------------------------------------------------------------------------------
def _adk_control_tool(tool: BaseTool) -> bool:
    """ADK's own tools that only act on ADK's state (`transfer_to_agent`, `exit_loop`, ...): they
    run in a replay too, or the replayed conversation would go elsewhere."""
    func = getattr(tool, "func", None) if isinstance(tool, FunctionTool) else None
    return func is not None and getattr(func, "__module__", "").startswith("google.adk.")


def observe_tool(tool: BaseTool) -> BaseTool:
    """Record every run of `tool` as a Shipyard tool call (`ctx.tools.observe`) while Shipyard runs
    the agent; outside an interaction it runs as before. In place and once per tool instance."""
    if getattr(tool, _OBSERVED, False):
        return tool
    run = tool.run_async
    control = _adk_control_tool(tool)

    async def run_async(*, args: dict[str, Any], tool_context: Any) -> Any:
        interaction = current_interaction()
        if interaction is None:
            return await run(args=args, tool_context=tool_context)
        try:
            return await observed(interaction, args, tool_context)
        except ToolRefusedError as e:  # the tool's response: the model is told why, the run goes on
            return {"error": str(e)}

    async def observed(interaction: Interaction, args: dict[str, Any], tool_context: Any) -> Any:
        arguments = dict(args)
        call_id = getattr(tool_context, "function_call_id", None)
        if not control:
            return await interaction.ctx.tools.observe(
                tool.name, arguments, lambda: run(args=args, tool_context=tool_context), call_id=call_id
            )
        try:
            value, failure = await run(args=args, tool_context=tool_context), None
        except Exception as e:
            value, failure = None, e

        async def ran() -> Any:
            if failure is not None:
                raise failure
            return value

        return await interaction.ctx.tools.observe(tool.name, arguments, ran, call_id=call_id)

    tool.run_async = run_async  # type: ignore[method-assign]
    setattr(tool, _OBSERVED, True)
    return tool


def _declarations(tool: BaseTool) -> list[DeclaredTool]:
    """What ADK declares to the model for `tool` (nothing for a built-in tool the model runs)."""
    request = LlmRequest()
    request.append_tools([tool])
    found = []
    for holder in request.config.tools or ():
        for d in getattr(holder, "function_declarations", None) or ():
            if d.parameters_json_schema is not None:
                parameters = dict(d.parameters_json_schema)
            elif d.parameters is not None:
                parameters = d.parameters.json_schema.model_dump(
                    mode="json", exclude_none=True, by_alias=True
                )
            else:
                parameters = {"type": "object", "properties": {}}
            found.append(DeclaredTool(d.name or tool.name, d.description or "", parameters))
    return found


def _transfer_targets(agents: list[BaseAgent]) -> list[str]:
    """The agents `transfer_to_agent` can name: every agent with sub-agents and its sub-agents."""
    names: set[str] = set()
    for node in agents:
        if node.sub_agents:
            names.add(node.name)
            names.update(sub.name for sub in node.sub_agents)
    return sorted(names)


def agent_tools(
    root: BaseAgent,
    *,
    idempotent: Iterable[str] = (),
    tags: Mapping[str, Iterable[str]] | None = None,
    name: str | None = None,
) -> DeclaredTools | None:
    """The tools every agent of the tree `root` declares (each name once), as the Shipyard agent's
    tools (`adk_agent` does this; for your own `@agent`: `@agent("support", tools=agent_tools(root))`).
    Found without running the agent.

    Args:
        root: the root agent.
        idempotent: names of tools that change nothing (the rest count as having side effects;
            `transfer_to_agent` is marked already).
        tags: tool name -> its tags (e.g. `{"issue_refund": ["money"]}`), for the launch checklist.
        name: the Shipyard agent's name, for messages (default: the root agent's).

    Returns None when an agent of the tree has a toolset (its tools are listed only at run time),
    so the agent declares no tools rather than some of them. Raises ShipyardError when
    `idempotent` or `tags` names a tool the tree does not have."""
    agents = _agents(root)
    found: list[DeclaredTool] = []
    for node in agents:
        for tool in getattr(node, "tools", None) or ():
            if isinstance(tool, BaseToolset):
                return None
            if isinstance(tool, BaseTool):
                found.extend(_declarations(tool))
            elif callable(tool):
                found.extend(_declarations(FunctionTool(tool)))
    targets = _transfer_targets(agents)
    if targets:
        for d in _declarations(TransferToAgentTool(agent_names=targets)):
            found.append(DeclaredTool(d.name, d.description, d.parameters, idempotent=True))
    return declared_tools(found, framework="ADK", agent=name or root.name, idempotent=idempotent, tags=tags)


class ShipyardPlugin(BasePlugin):
    """Sees every tool of every model step (plain functions become new `FunctionTool`s each step,
    toolsets list theirs, ADK adds `transfer_to_agent`) and records their runs; `AgentTool`
    sub-runs inherit it. Added to the runner by `adk_agent`."""

    def __init__(self) -> None:
        super().__init__(name="shipyard")

    async def before_model_callback(
        self, *, callback_context: CallbackContext, llm_request: LlmRequest
    ) -> LlmResponse | None:
        for tool in llm_request.tools_dict.values():
            observe_tool(tool)
        return None


# the conversation --------------------------------------------------------------------------------
def _history_events(history: list[Message], author: str, invocation_id: str) -> list[Event]:
    """`ctx.history` (the text of user and assistant turns) as the events of an ADK session."""
    events = []
    for m in history:
        role, text = m.get("role"), message_text(m)
        if role not in ("user", "assistant") or not text:
            continue
        events.append(
            Event(
                invocation_id=invocation_id,
                author="user" if role == "user" else author,
                content=types.Content(
                    role="user" if role == "user" else "model", parts=[types.Part(text=text)]
                ),
            )
        )
    return events


def _text(event: Event) -> str:
    parts = event.content.parts if event.content is not None else None
    return "".join(p.text for p in parts or () if p.text and not p.thought)


class AdkRunError(RuntimeError):
    """ADK ended a run on an error response (e.g. `MAX_TOKENS`) with no answer: the interaction fails
    with this as its error."""


def _result(events: list[Event], root: str) -> AgentResult:
    """The interaction's result from the events of its run: the text of the last final response;
    `escalated` when a tool call waits for a person or the root agent escalates. Raises AdkRunError
    when the run ended on an error response and nothing answered."""
    metadata: dict[str, Any] = {"adk_events": len(events)}
    authors = [e.author for e in events if e.author and e.author not in ("user", root)]
    if authors:
        metadata["adk_agents"] = list(dict.fromkeys(authors))
    waiting = [i for e in events for i in e.long_running_tool_ids or ()]
    confirmations = [k for e in events for k in e.actions.requested_tool_confirmations]
    final = next((e for e in reversed(events) if e.is_final_response() and _text(e)), None)
    output = _text(final) if final is not None else ""
    error = next((e for e in reversed(events) if e.error_code), None)
    if waiting or confirmations:
        metadata["adk_waiting_for"] = [*waiting, *confirmations]
        return AgentResult(output=output, status="escalated", metadata=metadata)
    if any(e.actions.escalate and e.author == root for e in events):
        return AgentResult(output=output, status="escalated", metadata=metadata)
    if error is not None and final is None:
        raise AdkRunError(f"ADK ended the run on {error.error_code}: {error.error_message or 'no message'}")
    return AgentResult(output=output, metadata=metadata)


class AdkAgent:
    """Runs an ADK runner as a Shipyard agent (what `adk_agent` returns the function of)."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        root = runner.agent
        if not isinstance(root, BaseAgent):
            raise ShipyardError(
                f"adk_agent() needs an ADK agent, got a {type(root).__name__} (an ADK workflow node)",
                hint="pass the root agent (an LlmAgent, SequentialAgent, ...) or a Runner over one",
            )
        self.root: BaseAgent = root
        wire_models(root)
        if runner.plugin_manager.get_plugin("shipyard") is None:
            runner.plugin_manager.register_plugin(ShipyardPlugin())

    async def __call__(self, user_input: str, ctx: AgentContext) -> AgentResult:
        """One interaction: a fresh session with `ctx.history`, the run, the session dropped."""
        runner = self.runner
        user_id = ctx.user_id or "shipyard"
        session_id = f"shipyard-{uuid.uuid4().hex}"
        service = runner.session_service
        session = await service.create_session(
            app_name=runner.app_name, user_id=user_id, session_id=session_id
        )
        events: list[Event] = []
        try:
            for event in _history_events(ctx.history, self.root.name, f"history-{session_id}"):
                await service.append_event(session, event)
            message = types.Content(role="user", parts=[types.Part(text=user_input)])
            run = runner.run_async(user_id=user_id, session_id=session_id, new_message=message)
            with framework_spans(ctx):
                async with contextlib.aclosing(run):  # closed here, not by the GC, if we are cancelled
                    async for event in run:
                        events.append(event)
        finally:
            await service.delete_session(app_name=runner.app_name, user_id=user_id, session_id=session_id)
        return _result(events, self.root.name)


def _as_runner(target: BaseAgent | Runner | App, name: str) -> Runner:
    if isinstance(target, Runner):
        return target
    if isinstance(target, App):
        return Runner(app=target, session_service=InMemorySessionService())
    if isinstance(target, BaseAgent):
        return Runner(app_name=name, agent=target, session_service=InMemorySessionService())
    raise ShipyardError(
        f"adk_agent() takes an ADK agent, App or Runner, got {type(target).__name__}",
        hint="pass your root_agent (e.g. the LlmAgent), or the Runner you run it with",
    )


def adk_agent(
    name: str,
    target: BaseAgent | Runner | App,
    *,
    idempotent: Iterable[str] = (),
    tags: Mapping[str, Iterable[str]] | None = None,
) -> Callable[..., Any]:
    """The Shipyard agent `name` that runs an ADK agent: point `entry:` in shipyard.yaml at it.

        support = adk_agent("support", root_agent)

    Args:
        name: the agent's name in shipyard.yaml.
        target: the root agent (a Runner over an in-memory session service is made for it), or
            your `Runner` (its session service, plugins and app settings are used; Shipyard adds
            its plugin) or `App`.
        idempotent: names of the tree's tools that change nothing (a lookup): their results may be
            reused and a replay may run them; every other tool counts as having side effects.
        tags: tool name -> its tags (e.g. `{"issue_refund": ["money"]}`), for the launch checklist.

    The agent tree's models and tools are wired to Shipyard in place (see the module docstring);
    outside a Shipyard interaction they behave as before. Returns the agent function, registered
    like `@agent(name)`, with its warm-up hook and its declared tools (`agent_tools`). Raises
    ShipyardError when `idempotent` or `tags` names no tool of the tree."""
    adk = AdkAgent(_as_runner(target, name))
    tools = agent_tools(adk.root, idempotent=idempotent, tags=tags, name=name)

    async def run_adk_agent(user_input: str, ctx: AgentContext) -> AgentResult:
        return await adk(user_input, ctx)

    async def warm_up_adk_agent() -> None:
        await warm_up(adk.root)

    run_adk_agent.adk = adk  # type: ignore[attr-defined]
    doc = f"The ADK agent {adk.root.name!r}, run by Shipyard as {name!r}."
    return framework_agent(name, run_adk_agent, doc=doc, warmup=warm_up_adk_agent, tools=tools)


def system_prompt(context: ReadonlyContext) -> str:
    """An ADK instruction provider: the agent version's system prompt (its prompt bundle rendered
    with `prompt_variables`), versioned with the agent: `LlmAgent(..., instruction=system_prompt)`.

    Raises ShipyardError outside an interaction (the prompt belongs to the version that runs)."""
    return system_prompt_for(f"ADK agent {context.agent_name!r}", "an instruction")


# warm-up -----------------------------------------------------------------------------------------
_WARM: dict[str, float] = {}  # what each warm-up step took (seconds), each once per process


def _local_answer(request: httpx.Request) -> ChatResponse:
    """The throwaway warm-up agent's model, in process: a call of its tool, then a text."""
    after_tool = b'"role":"tool"' in request.content.replace(b" ", b"")
    return ChatResponse(
        text="ready" if after_tool else None,
        tool_calls=[] if after_tool else [ToolCall("w1", "ping", {}, "{}")],
        usage=Usage(1, 1),
        model="warm-up",
        provider="shipyard",
        finish_reason="stop" if after_tool else "tool_calls",
    )


class _LocalClient(LiteLLMClient):
    """The warm-up agent's `llm_client`: LiteLLM's OpenAI route, answered by `_local_answer`."""

    async def acompletion(self, model: Any, messages: Any, tools: Any, **kwargs: Any) -> Any:
        client = openai_client(canned_transport(_local_answer))
        kwargs.update(client=client, custom_llm_provider="openai", api_key="warm-up", num_retries=0)
        return await super().acompletion(model=model, messages=messages, tools=tools, **kwargs)


def _ping() -> str:
    """Answer ping."""
    return "pong"


def _import_slow_parts() -> None:
    """What the first run would import: LiteLLM (seconds) and the OpenAI client."""
    from google.adk.models.lite_llm import _ensure_litellm_imported

    _ensure_litellm_imported()
    import openai  # noqa: F401


async def _local_run(model: str) -> None:
    """One run of a throwaway agent on `model`'s name (so LiteLLM resolves that provider and its
    prices as a real call would) with a tool, answered in process by `_local_answer`."""
    ping = FunctionTool(_ping)
    ping.name = "ping"
    local = LlmAgent(
        name="shipyard_warm_up",
        model=LiteLlm(model=model, llm_client=_LocalClient()),
        instruction="Call ping.",
        tools=[ping],
    )
    runner = Runner(app_name="shipyard_warm_up", agent=local, session_service=InMemorySessionService())
    session = await runner.session_service.create_session(app_name="shipyard_warm_up", user_id="warm-up")
    message = types.Content(role="user", parts=[types.Part(text="ping")])
    async with contextlib.aclosing(
        runner.run_async(user_id="warm-up", session_id=session.id, new_message=message)
    ) as run:
        async for _ in run:
            pass
    await runner.close()


def model_names(root: BaseAgent) -> list[str]:
    """The LiteLLM model names the agent tree calls (after `wire_models`), each once."""
    names: dict[str, None] = {}
    for node in _agents(root):
        model = getattr(node, "model", None)
        if isinstance(model, _ShipyardModel):
            model = model.proxied
        if isinstance(model, LiteLlm):
            names[model.model] = None
    return list(names)


async def warm_up(root: BaseAgent) -> dict[str, float]:
    """ADK's and LiteLLM's lazy start-up for the agent tree `root`, before it serves: LiteLLM's
    import (once per process, in a worker thread so the event loop keeps answering), then one run
    of a throwaway local agent per model name of the tree not warmed yet, with a tool, through a
    Runner, answered in process (no model is called, no tool of yours runs, nothing is recorded).
    `adk_agent` makes it the agent's `AgentSpec.warmup`. Returns what it took, in seconds, by step
    (`imports`, then each model name)."""
    took: dict[str, float] = {}
    t0 = time.perf_counter()
    if "imports" not in _WARM:
        await asyncio.to_thread(_import_slow_parts)
        took["imports"] = _WARM["imports"] = time.perf_counter() - t0
    install_collector()
    for name in model_names(root):
        if name in _WARM:
            continue
        t0 = time.perf_counter()
        await _local_run(name)
        took[name] = _WARM[name] = time.perf_counter() - t0
    return took


def warm_up_seconds() -> dict[str, float]:
    """What this process's warm-ups took, in seconds: `imports` (LiteLLM's), then one throwaway run
    per model name; empty before any ran."""
    return dict(_WARM)
