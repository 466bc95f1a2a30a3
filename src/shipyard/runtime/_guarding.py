"""Guardrails in the runtime: the pipeline's input and output steps, and the gate `ctx.tools` calls
around every tool call (`tool_call` checks before the tool runs, `tool_result` checks on its value).

Every check is an `apply_guardrail {name}` span (DESIGN.md §6) with its kind, stage, verdict, score
and reason; its duration is the check's latency. A check that acts (anything but allow) also leaves
a verdict on the record (`guardrails`: name, kind, stage, verdict, reason, score, latency_ms, and the
tool at the tool stages).

- input / output: `redact` changes the text and the next check sees the change; `block` and
  `escalate` answer the request (`Exchange.answer`) with the check's reply, else the agent's
  configured `blocked_reply` / `escalated_reply`, so the pipeline skips to `record`.
- tool_call: `block` refuses the call before the tool runs: the agent gets a tool result with status
  `blocked` and an error saying why, which it can explain; `escalate` refuses it too and makes the
  interaction `escalated`; `redact` changes the arguments (the redacted JSON text).
- tool_result: `redact` changes the value the agent gets; `block` / `escalate` withhold it (the agent
  gets a `blocked` tool error instead).

A check that raises fails closed: at input / output the pipeline fails the interaction; at the tool
stages the tool does not run (or its value is withheld), the interaction is `failed` and the error
reaches the agent's call."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from shipyard.guardrails import AgentGuardrails, Decision, Guardrail, GuardrailInput, Verdict, is_heavy
from shipyard.observe import end_span, start_span
from shipyard.observe import semconv as sc
from shipyard.types import InteractionStatus, ToolResult

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from shipyard.config import GuardrailStage
    from shipyard.runtime._pipeline import Exchange
    from shipyard.runtime._runtime import Runtime

_ANSWER_STATUS = {Verdict.BLOCK: InteractionStatus.BLOCKED, Verdict.ESCALATE: InteractionStatus.ESCALATED}

Stop = tuple[Guardrail, Decision]
"""The check that blocked or escalated, and its decision."""


class GuardrailFailed(RuntimeError):
    """A guardrail raised while checking a tool call or result: the call was refused (fail closed)."""


async def input_guardrails(ex: Exchange, rt: Runtime) -> None:
    """The agent's input checks, on the user's message, before the agent runs."""
    g = rt.guardrails(ex.agent)
    if g.input:
        ex.user_input = await _answering_stage(ex, rt, g, "input", ex.user_input)


async def output_guardrails(ex: Exchange, rt: Runtime) -> None:
    """The agent's output checks, on its answer and the tool calls it made."""
    g = rt.guardrails(ex.agent)
    if g.output and ex.result is not None:
        ex.result.output = await _answering_stage(ex, rt, g, "output", ex.result.output)


async def _answering_stage(
    ex: Exchange, rt: Runtime, g: AgentGuardrails, stage: GuardrailStage, text: str
) -> str:
    """Run a stage whose block or escalation answers the request; returns the text as it leaves
    (input: the user's message, redactions made; output: the answer, or the reply that replaced it)."""
    assert ex.root is not None
    checks = g.input if stage == "input" else g.output
    text, stop = await run_checks(ex, rt, stage, checks, text, parent=ex.root)
    if stop is None:
        return text
    _, decision = stop
    reply = decision.text or (g.blocked_reply if decision.verdict is Verdict.BLOCK else g.escalated_reply)
    ex.answer(reply, by=f"{stage}_guardrails", status=_ANSWER_STATUS[decision.verdict])
    return text if stage == "input" else reply  # the record keeps what the user sent


async def run_checks(
    ex: Exchange,
    rt: Runtime,
    stage: GuardrailStage,
    checks: tuple[Guardrail, ...],
    text: str,
    *,
    parent: Span,
    tool: str | None = None,
    arguments: dict[str, Any] | None = None,
    flag: Callable[[str], bool] | None = None,
) -> tuple[str, Stop | None]:
    """Run `checks` in order on `text`: the text as they leave it (redactions made) and the first
    check that blocked or escalated (None: every check let it through)."""
    v = ex.version
    for g in checks:
        if tool is not None and not g.checks_tool(tool):
            continue
        start_ns = time.time_ns()
        t0 = time.perf_counter()
        inp = GuardrailInput(
            agent=ex.agent,
            stage=stage,
            text=text,
            user_input=ex.user_input,
            tool_calls=tuple(ex.trail.tool_calls) if stage != "input" else (),
            tool=tool,
            arguments=arguments or {},
            metadata=ex.metadata,
            user_id=ex.user_id,
            flag=flag or _no_flags,
            system_prompt=rt.system_prompt(v) if v is not None else "",
            safety_rules=v.bundle.safety_rules if v is not None and v.bundle is not None else "",
        )
        try:
            if is_heavy(text) and not inspect.iscoroutinefunction(g.check):
                found = await asyncio.to_thread(g.check, inp)  # a long text: off the event loop
            else:
                found = g.check(inp)
            decision: Decision = await found if inspect.isawaitable(found) else found
        except Exception as e:
            _checked(ex, rt, g, stage, None, start_ns, t0, parent, tool, error=e)
            raise
        _checked(ex, rt, g, stage, decision, start_ns, t0, parent, tool)
        if decision.verdict is Verdict.ALLOW:
            continue
        if decision.verdict is Verdict.REDACT:
            assert decision.text is not None
            text = decision.text
            continue
        return text, (g, decision)
    return text, None


def _no_flags(_name: str) -> bool:
    return False


def _checked(
    ex: Exchange,
    rt: Runtime,
    g: Guardrail,
    stage: GuardrailStage,
    decision: Decision | None,
    start_ns: int,
    t0: float,
    parent: Span,
    tool: str | None,
    *,
    error: Exception | None = None,
) -> None:
    """The check's span; a verdict on the record when it acted."""
    latency_ms = (time.perf_counter() - t0) * 1000
    attributes: dict[str, Any] = {
        sc.SHIPYARD_OPERATION: sc.OP_GUARDRAIL,
        sc.GUARDRAIL_KIND: g.kind,
        sc.GUARDRAIL_STAGE: stage,
        sc.GUARDRAIL_LATENCY_MS: latency_ms,
    }
    if tool is not None:
        attributes[sc.TOOL_NAME] = tool
    if decision is not None:
        attributes[sc.GUARDRAIL_VERDICT] = decision.verdict.value
        if decision.reason:
            attributes[sc.GUARDRAIL_REASON] = decision.reason
        if decision.score is not None:
            attributes[sc.GUARDRAIL_SCORE] = decision.score
    span = start_span(rt.tracer, sc.SPAN_GUARDRAIL.format(g.name), parent=parent, start_ns=start_ns)
    span.set_attributes(attributes)
    end_span(
        span, error=f"{type(error).__name__}: {error}"[:500] if error else None, error_type="guardrail_error"
    )
    ex.trail.spans.append(span)
    if decision is None or decision.verdict is Verdict.ALLOW:
        return
    entry: dict[str, Any] = {
        "name": g.name,
        "kind": g.kind,
        "stage": stage,
        "verdict": decision.verdict.value,
        "reason": decision.reason,
        "latency_ms": round(latency_ms, 3),
    }
    if decision.score is not None:
        entry["score"] = decision.score
    if tool is not None:
        entry["tool"] = tool
    ex.guardrails.append(entry)


class ToolGate:
    """The tool_call and tool_result checks of one interaction, for `ctx.tools` (`ToolGuard`)."""

    __slots__ = ("_ex", "_flag", "_g", "_rt")

    def __init__(self, ex: Exchange, rt: Runtime, g: AgentGuardrails, flag: Callable[[str], bool]) -> None:
        self._ex = ex
        self._rt = rt
        self._g = g
        self._flag = flag

    async def before(
        self, name: str, arguments: dict[str, Any], span: Span
    ) -> tuple[dict[str, Any], ToolResult | None]:
        """The tool_call checks: the arguments to call with, and the result the agent gets instead
        when the call is refused (None: the tool runs)."""
        if not self._g.tool_call:
            return arguments, None
        text = orjson.dumps(arguments, default=str).decode()
        checked, stop = await self._run("tool_call", self._g.tool_call, text, span, name, arguments)
        if stop is not None:
            return arguments, self._refused(name, arguments, stop, "refused the call")
        if checked != text:
            try:
                redacted = orjson.loads(checked)
            except orjson.JSONDecodeError:
                redacted = None
            if not isinstance(redacted, dict):  # what would run is unknown: refuse (fail closed)
                refusal = "the redacted arguments are not a JSON object"
                return arguments, ToolResult(
                    name, arguments, "blocked", error=f"{name} was refused: {refusal}"
                )
            arguments = redacted
        return arguments, None

    async def after(self, name: str, arguments: dict[str, Any], result: ToolResult, span: Span) -> ToolResult:
        """The tool_result checks on a successful call's value: the result the agent gets."""
        if not self._g.tool_result or not result.ok:
            return result
        text = result.content()
        checked, stop = await self._run("tool_result", self._g.tool_result, text, span, name, arguments)
        if stop is not None:
            refused = self._refused(name, arguments, stop, "withheld the result")
            refused.duration_ms = result.duration_ms
            return refused
        if checked == text:
            return result
        value: Any = checked
        if not isinstance(result.value, str):
            try:
                value = orjson.loads(checked)
            except orjson.JSONDecodeError:
                value = checked
        return ToolResult(
            result.name,
            result.arguments,
            result.status,
            value=value,
            duration_ms=result.duration_ms,
            cached=result.cached,
        )

    async def _run(
        self,
        stage: GuardrailStage,
        checks: tuple[Guardrail, ...],
        text: str,
        span: Span,
        name: str,
        arguments: dict[str, Any],
    ) -> tuple[str, Stop | None]:
        ex = self._ex
        try:
            return await run_checks(
                ex,
                self._rt,
                stage,
                checks,
                text,
                parent=span,
                tool=name,
                arguments=arguments,
                flag=self._flag,
            )
        except Exception as e:
            message = f"a {stage} guardrail failed on {name}: {type(e).__name__}: {e}"[:1000]
            ex.status = InteractionStatus.FAILED
            ex.error = ex.error or message
            ex.metadata["error_kind"] = "guardrail_error"
            raise GuardrailFailed(message) from e

    def _refused(self, name: str, arguments: dict[str, Any], stop: Stop, what: str) -> ToolResult:
        g, decision = stop
        if decision.verdict is Verdict.ESCALATE:
            self._ex.escalated = True
        return ToolResult(
            name, arguments, "blocked", error=f"guardrail {g.name!r} {what}: {decision.reason or g.kind}"
        )


def tool_gate(ex: Exchange, rt: Runtime, flag: Callable[[str], bool]) -> ToolGate | None:
    """The gate for `ctx.tools` of this interaction; None when the agent has no tool checks."""
    g = rt.guardrails(ex.agent)
    if not g.tool_call and not g.tool_result:
        return None
    return ToolGate(ex, rt, g, flag)
