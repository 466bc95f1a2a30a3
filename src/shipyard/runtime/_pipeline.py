"""One interaction from input to recorded result, as an ordered list of small steps (DESIGN.md §4).

Each step is an async function `(exchange, runtime) -> None` that reads and fills the `Exchange`.
The runtime builds the pipeline once, from the config, and freezes it (`runtime/_build.py`); every
entry point (server, evals, `shipyard run`, the demo, canaries) runs the same steps.

Two rules belong to the pipeline, not to its steps:
- Early exit: a step that answers instead of the agent (a guardrail block, a cache hit) calls
  `exchange.answer(...)`; the steps after it are skipped up to `record`, which always runs.
- Failure: once the interaction's trace is open, a step that raises makes the interaction `failed`
  (error noted, tool calls kept) and `record` still runs; only a configuration error raised before
  the agent did anything (an unknown version, a model that cannot be built) reaches the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from shipyard.agents import NO_BUDGET, AgentContext, AgentResult, DefaultFlags, interaction_scope
from shipyard.cost import BudgetExceeded, BudgetUnavailable, call_cost
from shipyard.errors import ShipyardError
from shipyard.flags import EvaluationDetails, FlagsForContext, interaction_context
from shipyard.llm import LLMError, Message, Usage
from shipyard.observe import (
    add_flag_evaluation,
    end_span,
    export_spans,
    hex_trace_id,
    log_event,
    start_span,
    to_records,
)
from shipyard.observe import semconv as sc
from shipyard.runtime._guarding import GuardrailFailed, tool_gate
from shipyard.runtime._handles import CallInterceptor, TracedLLM, TracedTools, TraceSpans, Trail
from shipyard.runtime._ledger import flag_features, ledger_metadata
from shipyard.store import InteractionRecord, ToolCallRecord, new_id
from shipyard.types import InteractionStatus

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from shipyard.cost import InteractionBudget
    from shipyard.routing import SessionRouter
    from shipyard.runtime._caching import ToolCacheHook
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
    record: InteractionRecord | None = None  # as kept: content masked unless capture says otherwise
    full: InteractionRecord | None = None  # as it happened: what the caller is answered from
    answered_by: str | None = None  # the step that answered instead of the agent (see `answer`)
    escalated: bool = False  # a tool guardrail escalated: a completed interaction is `escalated`
    cache_scope: Any = None  # who may share this request's cached answers (runtime/_caching.py)
    budget: InteractionBudget | None = None  # the budgets of its model calls (`budget_check` sets it)
    api_key: str | None = None  # the caller's API key prefix (the server's; budgets per API key)

    def answer(self, output: str, *, by: str, status: str = "completed") -> None:
        """Answer the request from step `by` (a guardrail block, a cache hit): the steps after it
        are skipped up to `record`. A result the agent already gave keeps its metadata and usage;
        `status` is the interaction's status (completed | escalated | blocked)."""
        if self.result is None:
            self.result = AgentResult(output=output)
        else:
            self.result.output = output
        self.status = status
        self.answered_by = by


Step = Callable[[Exchange, "Runtime"], Awaitable[None]]


class PipelineFrozenError(RuntimeError):
    """A step was added to or replaced in a pipeline that is already running interactions."""


class Pipeline:
    """An ordered, named list of steps; frozen once its runtime is made (`freeze`), after which
    `insert_before`, `insert_after` and `replace` raise PipelineFrozenError."""

    def __init__(self, steps: list[tuple[str, Step]]) -> None:
        self._steps = list(steps)
        self._frozen = False

    @property
    def names(self) -> list[str]:
        """The names of the steps, in the order they run."""
        return [n for n, _ in self._steps]

    @property
    def frozen(self) -> bool:
        return self._frozen

    def freeze(self) -> None:
        """Refuse any change from now on (the runtime calls this when it is made)."""
        self._frozen = True

    def _index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"no pipeline step {name!r} (steps: {', '.join(self.names)})") from None

    def _check_open(self, change: str) -> None:
        if self._frozen:
            raise PipelineFrozenError(
                f"cannot {change}: the pipeline is frozen once its runtime is made, so every entry "
                f"point runs the same steps ({' -> '.join(self.names)}); add steps when the runtime "
                "is made: Runtime(cfg, extend_pipeline=...)"
            )

    def insert_before(self, name: str, new_name: str, step: Step) -> None:
        """Add step `new_name` just before step `name`."""
        self._check_open(f"insert step {new_name!r} before {name!r}")
        self._steps.insert(self._index(name), (new_name, step))

    def insert_after(self, name: str, new_name: str, step: Step) -> None:
        """Add step `new_name` just after step `name`."""
        self._check_open(f"insert step {new_name!r} after {name!r}")
        self._steps.insert(self._index(name) + 1, (new_name, step))

    def replace(self, name: str, step: Step) -> None:
        """Run `step` in place of step `name`."""
        self._check_open(f"replace step {name!r}")
        self._steps[self._index(name)] = (name, step)

    async def run(self, ex: Exchange, rt: Runtime) -> None:
        """Run the steps in order. After a step that answered (`Exchange.answer`) only `record`
        runs. A step that raises once the trace is open is noted on the exchange (the interaction
        failed) and `record` still runs, so what the agent did (its tool calls) is recorded; a
        configuration error before the agent did anything, or an error before the trace opened,
        is raised to the caller."""
        steps = self._steps
        names = [n for n, _ in steps]
        record_at = names.index("record") if "record" in names else None
        agent_at = names.index("run_agent") if "run_agent" in names else len(steps)
        i = 0
        while i < len(steps):
            name, step = steps[i]
            try:
                await step(ex, rt)
            except Exception as e:
                agent_started = i > agent_at or (i == agent_at and (ex.result is not None or ex.trail.spans))
                config_error = isinstance(e, ShipyardError) and not agent_started
                if ex.root is None or config_error or record_at is None or i >= record_at:
                    raise
                _step_failed(ex, name, e)
                i = record_at
                continue
            answered = ex.answered_by is not None and record_at is not None and i < record_at
            i = record_at if answered and record_at is not None else i + 1


def _step_failed(ex: Exchange, name: str, e: Exception) -> None:
    """Note on the exchange that step `name` raised after the agent started: the interaction failed."""
    message = f"pipeline step {name!r} failed: {type(e).__name__}: {e}"[:1000]
    log_event("pipeline_step_failed", level="error", step=name, interaction_id=ex.id, error=message)
    ex.status = "failed"
    ex.error = ex.error or message
    ex.metadata["error_kind"] = "pipeline_error"


async def assign_version(ex: Exchange, rt: Runtime) -> None:
    """Pick the agent version: the one asked for, else the runtime's assignment (rollouts fill it)."""
    ex.version = rt.assign(ex)


async def start_trace(ex: Exchange, rt: Runtime) -> None:
    """Open the `invoke_agent` span: one trace per interaction."""
    v = ex.version
    assert v is not None
    model = rt.cfg.models.get(v.model.name)
    ex.root = start_span(
        rt.tracer,
        sc.SPAN_AGENT.format(ex.agent),
        attributes={
            sc.OPERATION: sc.OP_AGENT,
            # required / conditionally required on `invoke_agent` by the GenAI conventions
            sc.PROVIDER: model.provider if model is not None else "unknown",
            # the provider's model id (the models: entry's `model`), the config key beside it
            sc.REQUEST_MODEL: (model.model if model is not None else None) or v.model.name,
            sc.MODEL_KEY: v.model.name,
            sc.AGENT_NAME: ex.agent,
            sc.AGENT_VERSION: v.id,
            sc.CONVERSATION_ID: ex.session_id,
            sc.INTERACTION_ID: ex.id,
            sc.TRAFFIC_SOURCE: ex.traffic_source,
            **({sc.USER_ID: ex.user_id} if ex.user_id else {}),
        },
    )


def agent_context(ex: Exchange, rt: Runtime) -> AgentContext:
    """The context the agent of `ex` is called with: every capability traced into `ex.trail` under
    `ex.root`. Must be called on the event loop the interaction runs on."""
    v = ex.version
    assert v is not None and ex.root is not None
    ex.trail.loop = asyncio.get_running_loop()
    flags = _flags_for(ex, rt)
    return AgentContext(
        llm=TracedLLM(
            rt.client_for(v),
            rt.prices,
            rt.tracer,
            ex.root,
            ex.trail,
            model_name=v.model.name,
            settings={"temperature": v.model.temperature, "max_tokens": v.model.max_tokens},
            interceptor=ex.interceptor,
            capture_content=rt.cfg.server.content_capture.enabled,
            router=_session_router(ex, rt),
            budget=ex.budget,
        ),
        tools=TracedTools(
            v.spec.tools,
            rt.tool_definitions(v),
            rt.tracer,
            ex.root,
            ex.trail,
            ex.interceptor,
            guard=tool_gate(ex, rt, flags.enabled),
            capture_content=rt.cfg.server.content_capture.enabled,
            cache=_tool_cache(ex, rt),
        ),
        prompts=v.bundle,
        flags=flags,
        session_id=ex.session_id,
        user_id=ex.user_id,
        history=ex.history,
        metadata=ex.metadata,
        system_prompt=rt.system_prompt(v),
        features=ex.trail.features,  # ctx.tag_feature tags the interaction's cost
        budget=ex.budget if ex.budget is not None else NO_BUDGET,
    )


def _tool_cache(ex: Exchange, rt: Runtime) -> ToolCacheHook | None:
    """The tool cache of `ctx.tools` (`_caching.tool_cache`; imported only when a cache is on)."""
    if rt.caches is None:
        return None
    from shipyard.runtime._caching import tool_cache

    return tool_cache(ex, rt)


def _session_router(ex: Exchange, rt: Runtime) -> SessionRouter | None:
    """The router of this interaction's model calls, when routing is on for its agent."""
    routing = rt.routing
    if routing is None or not routing.routes(ex.agent):
        return None
    from shipyard.routing import trail_signals

    v = ex.version
    assert v is not None
    return routing.for_session(
        ex.agent,
        ex.session_id,
        lambda model: rt.routed_client(v, model),
        trail_signals(ex.trail.tool_calls, lambda: ex.escalated),
    )


async def run_agent(ex: Exchange, rt: Runtime) -> None:
    """Call the agent with a context whose every capability is traced; never raises. The context
    is the current one (`shipyard.agents.current_context()`) while the agent runs."""
    v = ex.version
    assert v is not None and ex.root is not None
    ctx = agent_context(ex, rt)
    flags = ctx.flags
    timeout = ex.timeout_s or v.timeout_s
    with interaction_scope(ctx, TraceSpans(rt.tracer, ex.root, ex.trail)) as interaction:
        try:
            # in this task, as `wait_for` runs it on Python 3.12+ (on 3.11 it wraps the agent in a
            # task of its own: a task, a timer and a waiter more per interaction)
            async with asyncio.timeout(timeout):
                ex.result = await v.spec(ex.user_input, ctx)
        except TimeoutError:
            _failed(ex, "timeout", f"the agent did not finish within {timeout:g}s")
        except LLMError as e:
            _failed(ex, f"llm_{e.kind}", f"model call failed: {e}")
        except GuardrailFailed as e:  # a tool check raised: the call was refused (fail closed)
            _failed(ex, "guardrail_error", str(e))
        except BudgetExceeded as e:  # a model call had no room: the configured graceful answer
            from shipyard.runtime._budgeting import stopped_by_budget

            stopped_by_budget(ex, rt, e)
        except BudgetUnavailable as e:  # a fail_closed budget could not be checked
            _failed(ex, "budget_unavailable", str(e))
        except Exception as e:  # an agent's own bug is a failed interaction, not a crashed server
            failure = interaction.model_failure
            if isinstance(failure, LLMError):  # a framework raised on the error the model proxy gave it
                raised = f"{type(e).__name__}: {e}"[:300]
                _failed(
                    ex, f"llm_{failure.kind}", f"model call failed: {failure} (the agent raised {raised})"
                )
            else:
                _failed(ex, "agent_error", f"{type(e).__name__}: {e}")
    if ex.budget is not None:
        ex.budget.end()  # the agent is done: no more model calls in this interaction
        if ex.budget.exceeded is not None and ex.status is None:
            from shipyard.runtime._budgeting import stopped_by_budget

            stopped_by_budget(ex, rt, ex.budget.exceeded, output=ex.result.output if ex.result else None)
    if ex.result is not None and ex.result.usage is not None:
        _add_usage(ex, rt, ex.result.usage)
    if isinstance(flags, FlagsForContext):
        flag_features(flags, ex.trail.features)
    if isinstance(flags, FlagsForContext) and flags.evaluations:
        # on the record and the trace: flag, variant, reason of each flag the agent asked for
        ex.metadata["flags"] = [d.to_dict() for d in flags.evaluations]
        ex.root.set_attribute(
            sc.FEATURE_FLAGS, [f"{d.flag}={d.variant or d.value}:{d.reason.value}" for d in flags.evaluations]
        )


def _add_usage(ex: Exchange, rt: Runtime, usage: Usage) -> None:
    """Tokens the agent reported spending outside ctx.llm (a remote agent's), priced at the
    version's configured model, added to the interaction's tokens and cost."""
    assert ex.version is not None
    ex.trail.usage = ex.trail.usage + usage
    ex.trail.cost_usd += call_cost(rt.prices(ex.version.model.name), usage)


def _flags_for(ex: Exchange, rt: Runtime) -> FlagsForContext | DefaultFlags:
    """`ctx.flags` for this interaction: the runtime's flag store with the session and user as context."""
    if rt.flags is None:
        return DefaultFlags()
    v = ex.version
    context = interaction_context(
        session_id=ex.session_id, user_id=ex.user_id, agent=ex.agent, version=v.label if v else None
    )
    store = rt.flags

    def on_evaluation(d: EvaluationDetails) -> None:
        if ex.root is not None:
            add_flag_evaluation(
                ex.root,
                d.flag,
                variant=d.variant,
                value=d.value,
                reason=d.reason.value,
                error_code=d.error_code.value if d.error_code else None,
                error_message=d.error_message,
                context_id=context.get("targetingKey"),
                version=store.revision,
            )

    return FlagsForContext(store, context, on_evaluation=on_evaluation)


def _failed(ex: Exchange, kind: str, message: str) -> None:
    ex.result = AgentResult(output="", status="failed", metadata={"error_kind": kind})
    ex.error = message


async def record(ex: Exchange, rt: Runtime) -> None:
    """Close the trace and build the interaction record; hand it to the sinks (never waits on I/O).

    Never raises: a record that cannot be built whole (say, an agent's metadata is not a mapping)
    is built from what can be trusted, its tool and model calls kept and the error noted in
    `metadata["record_error"]`; a sink that raises is logged and the other sinks still run."""
    try:
        ex.full, ex.record = _build_record(ex, rt)
    except Exception as e:
        error = f"the record could not be built: {type(e).__name__}: {e}"[:1000]
        log_event("record_build_failed", level="error", interaction_id=ex.id, error=error)
        ex.full = _fallback_record(ex, error)
        try:
            ex.record = rt.mask.record(ex.full)
        except Exception:  # what could not be masked is not kept (fail closed)
            ex.record = _contentless(ex.full)
    for sink in rt.sinks:
        try:
            sink(ex.record)
        except Exception as e:
            log_event(
                "record_sink_failed",
                level="error",
                interaction_id=ex.id,
                sink=getattr(sink, "__qualname__", repr(sink)),
                error=f"{type(e).__name__}: {e}"[:500],
            )


def _build_record(ex: Exchange, rt: Runtime) -> tuple[InteractionRecord, InteractionRecord]:
    """The record as it happened (for the caller) and as it is kept (content masked, see
    `runtime/_at_rest.py`); both carry the kept spans, which are also what is exported."""
    v = ex.version
    assert v is not None and ex.root is not None
    result = ex.result or AgentResult(output="", status="failed")
    status = ex.status or result.status
    if ex.escalated and status == "completed":
        status = "escalated"
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
    ledger_metadata(metadata, ex, rt)
    if trail.replayed:
        metadata["replayed"] = True
    built = InteractionRecord(
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
    )
    kept, otel_spans = rt.mask.keep(built, [*trail.spans, ex.root])
    built.spans = kept.spans = to_records(otel_spans)
    _sample(kept, otel_spans, rt)
    built.spans = kept.spans  # a dropped trace's spans are held, not on either record
    if "trace" in kept.metadata:
        built.metadata["trace"] = kept.metadata["trace"]
    return built, kept


def _contentless(r: InteractionRecord) -> InteractionRecord:
    """`r` without any content: for a record whose content could not be masked."""
    return replace(
        r,
        input="[redacted]",
        output="[redacted]",
        error="[redacted]" if r.error else None,
        tool_calls=[
            ToolCallRecord(t.name, {}, t.status, t.duration_ms, "[redacted]" if t.error else None, t.cached)
            for t in r.tool_calls
        ],
        llm_calls=[replace(c, error="[redacted]" if c.error else None) for c in r.llm_calls],
        guardrails=[{**g, "reason": "[redacted]"} for g in r.guardrails],
        metadata={"record_error": r.metadata.get("record_error", "content could not be masked")},
        spans=[],
    )


def _fallback_record(ex: Exchange, error: str) -> InteractionRecord:
    """The record of an interaction whose full record could not be built: ids, input, what the agent
    did (tool and model calls, usage), its output when it is text, and the error; no spans."""
    if ex.root is not None:
        with contextlib.suppress(Exception):
            end_span(ex.root, error=error, error_type="record_error")
    result = ex.result
    output = result.output if result is not None and isinstance(result.output, str) else ""
    status = ex.status or (result.status if result is not None else "failed")
    trail = ex.trail
    return InteractionRecord(
        id=ex.id,
        trace_id=hex_trace_id(ex.root)
        if ex.root is not None
        else secrets.token_hex(16),  # random like OTel's
        session_id=ex.session_id,
        user_id=ex.user_id,
        agent=ex.agent,
        version=ex.version.id if ex.version is not None else str(ex.version_ref),
        traffic_source=ex.traffic_source,
        input=ex.user_input,
        output=output,
        status=status if status in tuple(InteractionStatus) else "failed",
        latency_ms=(time.perf_counter() - ex.t0) * 1000,
        input_tokens=trail.usage.input_tokens,
        output_tokens=trail.usage.output_tokens,
        cached_input_tokens=trail.usage.cached_input_tokens,
        cost_usd=trail.cost_usd,
        tool_calls=list(trail.tool_calls),
        llm_calls=list(trail.llm_calls),
        guardrails=list(ex.guardrails),
        error=ex.error,
        metadata={"record_error": error},
        created_at=ex.created_at,
    )


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


def new_session_id() -> str:
    return uuid.uuid4().hex[:16]
