"""One interaction from input to recorded result, as an ordered list of small steps (DESIGN.md §4).

Each step is an async function `(exchange, runtime) -> None` that reads and fills the `Exchange`.
A step that answers early (a guardrail block, a cache hit) sets `exchange.result`; the agent step
then does nothing, and the record step always runs. Later capabilities insert their steps by name
(`Pipeline.insert_before("run_agent", step)`)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.agents import AgentContext, AgentResult, DefaultFlags
from shipyard.flags import FlagsForContext, interaction_context
from shipyard.llm import LLMError, Message
from shipyard.observe import end_span, export_spans, hex_trace_id, start_span, to_records
from shipyard.observe import semconv as sc
from shipyard.runtime._handles import CallInterceptor, TracedLLM, TracedTools, Trail
from shipyard.store import InteractionRecord, new_id

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from shipyard.runtime._runtime import Runtime
    from shipyard.runtime._versions import AgentVersion


@dataclass(slots=True)
class Exchange:
    """One interaction in flight: the request, what the steps decided, and what happened."""

    agent: str
    user_input: str
    session_id: str
    user_id: str | None
    traffic_source: str
    history: list[Message]
    metadata: dict[str, Any]
    version_ref: str | None
    interceptor: CallInterceptor | None
    timeout_s: float | None
    session_supplied: bool = True  # False: the session id was made up for this one request
    id: str = field(default_factory=new_id)
    version: AgentVersion | None = None
    result: AgentResult | None = None
    status: str | None = None  # overrides result.status (e.g. "blocked")
    error: str | None = None
    guardrails: list[dict[str, Any]] = field(default_factory=list)
    trail: Trail = field(default_factory=Trail)
    root: Span | None = None
    created_at: float = field(default_factory=time.time)
    t0: float = field(default_factory=time.perf_counter)
    record: InteractionRecord | None = None


Step = Callable[[Exchange, "Runtime"], Awaitable[None]]


class Pipeline:
    """An ordered, named list of steps."""

    def __init__(self, steps: list[tuple[str, Step]]) -> None:
        self._steps = list(steps)

    @property
    def names(self) -> list[str]:
        return [n for n, _ in self._steps]

    def _index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"no pipeline step {name!r} (steps: {', '.join(self.names)})") from None

    def insert_before(self, name: str, new_name: str, step: Step) -> None:
        self._steps.insert(self._index(name), (new_name, step))

    def insert_after(self, name: str, new_name: str, step: Step) -> None:
        self._steps.insert(self._index(name) + 1, (new_name, step))

    def replace(self, name: str, step: Step) -> None:
        self._steps[self._index(name)] = (name, step)

    async def run(self, ex: Exchange, rt: Runtime) -> None:
        for _, step in self._steps:
            await step(ex, rt)


async def assign_version(ex: Exchange, rt: Runtime) -> None:
    """Pick the agent version: the one asked for, else the runtime's assignment (rollouts fill it)."""
    ex.version = rt.assign(ex)


async def start_trace(ex: Exchange, rt: Runtime) -> None:
    """Open the `invoke_agent` span: one trace per interaction."""
    v = ex.version
    assert v is not None
    ex.root = start_span(
        rt.tracer,
        sc.SPAN_AGENT.format(ex.agent),
        attributes={
            sc.OPERATION: sc.OP_AGENT,
            sc.AGENT_NAME: ex.agent,
            sc.AGENT_VERSION: v.id,
            sc.CONVERSATION_ID: ex.session_id,
            sc.INTERACTION_ID: ex.id,
            sc.TRAFFIC_SOURCE: ex.traffic_source,
            **({sc.USER_ID: ex.user_id} if ex.user_id else {}),
        },
    )


async def run_agent(ex: Exchange, rt: Runtime) -> None:
    """Call the agent with a context whose every capability is traced; never raises."""
    if ex.result is not None:
        return
    v = ex.version
    assert v is not None and ex.root is not None
    ex.trail.loop = asyncio.get_running_loop()
    flags = _flags_for(ex, rt)
    ctx = AgentContext(
        llm=TracedLLM(
            rt.client_for(v),
            rt.prices,
            rt.tracer,
            ex.root,
            ex.trail,
            model_name=v.model.name,
            settings={"temperature": v.model.temperature, "max_tokens": v.model.max_tokens},
            interceptor=ex.interceptor,
        ),
        tools=TracedTools(v.spec.tools, rt.tool_definitions(v), rt.tracer, ex.root, ex.trail, ex.interceptor),
        prompts=v.bundle,
        flags=flags,
        session_id=ex.session_id,
        user_id=ex.user_id,
        history=ex.history,
        metadata=ex.metadata,
        system_prompt=rt.system_prompt(v),
    )
    timeout = ex.timeout_s or v.timeout_s
    try:
        ex.result = await asyncio.wait_for(v.spec(ex.user_input, ctx), timeout)
    except TimeoutError:
        _failed(ex, "timeout", f"the agent did not finish within {timeout:g}s")
    except LLMError as e:
        _failed(ex, f"llm_{e.kind}", f"model call failed: {e}")
    except Exception as e:  # an agent's own bug is a failed interaction, not a crashed server
        _failed(ex, "agent_error", f"{type(e).__name__}: {e}")
    if isinstance(flags, FlagsForContext) and flags.evaluations:
        # on the record and the trace: flag, variant, reason of each flag the agent asked for
        ex.metadata["flags"] = [d.to_dict() for d in flags.evaluations]
        ex.root.set_attribute(
            sc.FEATURE_FLAGS, [f"{d.flag}={d.variant or d.value}:{d.reason.value}" for d in flags.evaluations]
        )


def _flags_for(ex: Exchange, rt: Runtime) -> FlagsForContext | DefaultFlags:
    """`ctx.flags` for this interaction: the runtime's flag store with the session and user as context."""
    if rt.flags is None:
        return DefaultFlags()
    v = ex.version
    context = interaction_context(
        session_id=ex.session_id, user_id=ex.user_id, agent=ex.agent, version=v.label if v else None
    )
    return FlagsForContext(rt.flags, context)


def _failed(ex: Exchange, kind: str, message: str) -> None:
    ex.result = AgentResult(output="", status="failed", metadata={"error_kind": kind})
    ex.error = message


async def record(ex: Exchange, rt: Runtime) -> None:
    """Close the trace and build the interaction record; hand it to the sinks (never waits on I/O)."""
    v = ex.version
    assert v is not None and ex.root is not None
    result = ex.result or AgentResult(output="", status="failed")
    status = ex.status or result.status
    latency_ms = (time.perf_counter() - ex.t0) * 1000
    trail = ex.trail
    ex.root.set_attributes(
        {
            sc.STATUS: status,
            sc.INPUT_TOKENS: trail.usage.input_tokens,
            sc.OUTPUT_TOKENS: trail.usage.output_tokens,
            sc.COST_USD: trail.cost_usd,
        }
    )
    end_span(ex.root, error=ex.error, error_type=result.metadata.get("error_kind") if ex.error else None)
    metadata = {**ex.metadata, **result.metadata}
    if trail.replayed:
        metadata["replayed"] = True
    ex.record = InteractionRecord(
        id=ex.id,
        trace_id=hex_trace_id(ex.root),
        session_id=ex.session_id,
        user_id=ex.user_id,
        agent=ex.agent,
        version=v.id,
        traffic_source=ex.traffic_source,
        input=ex.user_input,
        output=result.output,
        status=status,
        latency_ms=latency_ms,
        input_tokens=trail.usage.input_tokens,
        output_tokens=trail.usage.output_tokens,
        cached_input_tokens=trail.usage.cached_input_tokens,
        cost_usd=trail.cost_usd,
        tool_calls=trail.tool_calls,
        llm_calls=trail.llm_calls,
        guardrails=ex.guardrails,
        error=ex.error,
        metadata=metadata,
        created_at=ex.created_at,
        spans=to_records(otel_spans := [*trail.spans, ex.root]),
    )
    _sample(ex.record, otel_spans, rt)
    for sink in rt.sinks:
        sink(ex.record)


def _sample(record: InteractionRecord, otel_spans: list[Span], rt: Runtime) -> None:
    """Tail sampling: a kept trace goes to the exporter; a dropped one leaves the record (metrics
    still count it) and is held briefly in case negative feedback recalls it."""
    decision = rt.sampler.decide(record) if rt.sampler is not None else None
    if decision is None or decision.keep:
        export_spans(otel_spans)
        return
    assert rt.sampler is not None
    rt.sampler.hold(record.id, record.spans, otel_spans)
    record.spans = []
    record.metadata["trace"] = decision.reason


DEFAULT_STEPS: list[tuple[str, Step]] = [
    ("assign_version", assign_version),
    ("start_trace", start_trace),
    ("run_agent", run_agent),
    ("record", record),
]


def new_session_id() -> str:
    return uuid.uuid4().hex[:16]
