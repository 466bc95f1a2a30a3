"""The guardrail steps of the pipeline: the agent's configured input and output checks.

Each check sees a `GuardrailInput`. A check that lets the text through leaves nothing behind (no
span, no verdict: a trace stays as small as before). One that acts leaves an `apply_guardrail {name}`
span (DESIGN.md §6) and a verdict on the record (`guardrails`: name, kind, stage, verdict, reason):
`redact` changes the text and the next check sees the change; `block` and `escalate` answer the
request with the guardrail's reply (`Exchange.answer`), so the pipeline skips to `record`. A check
that raises fails the interaction (the pipeline's rule): nothing unchecked reaches the user."""

from __future__ import annotations

import inspect
import time
from typing import TYPE_CHECKING

from shipyard.guardrails import Decision, Guardrail, GuardrailInput, Verdict
from shipyard.observe import end_span, start_span
from shipyard.observe import semconv as sc
from shipyard.types import InteractionStatus

if TYPE_CHECKING:
    from shipyard.config import GuardrailStage
    from shipyard.runtime._pipeline import Exchange
    from shipyard.runtime._runtime import Runtime

_ANSWER_STATUS = {Verdict.BLOCK: InteractionStatus.BLOCKED, Verdict.ESCALATE: InteractionStatus.ESCALATED}


async def input_guardrails(ex: Exchange, rt: Runtime) -> None:
    """The agent's input checks, on the user's message, before the agent runs."""
    checks = rt.guardrails(ex.agent).input
    if checks:
        ex.user_input = await _apply(ex, rt, "input", checks, ex.user_input)


async def output_guardrails(ex: Exchange, rt: Runtime) -> None:
    """The agent's output checks, on its answer and the tool calls it made."""
    checks = rt.guardrails(ex.agent).output
    if checks and ex.result is not None:
        ex.result.output = await _apply(ex, rt, "output", checks, ex.result.output)


async def _apply(
    ex: Exchange, rt: Runtime, stage: GuardrailStage, checks: tuple[Guardrail, ...], text: str
) -> str:
    """Run `checks` in order on `text`; returns the text as they leave it (redactions made)."""
    for g in checks:
        start_ns = time.time_ns()
        inp = GuardrailInput(
            agent=ex.agent,
            stage=stage,
            text=text,
            user_input=ex.user_input,
            tool_calls=ex.trail.tool_calls if stage == "output" else (),
        )
        found = g.check(inp)
        decision: Decision = await found if inspect.isawaitable(found) else found
        if decision.verdict is Verdict.ALLOW:
            continue
        _acted(ex, rt, g, stage, decision, start_ns)
        assert decision.text is not None
        if decision.verdict is Verdict.REDACT:
            text = decision.text
            continue
        ex.answer(decision.text, by=f"{stage}_guardrails", status=_ANSWER_STATUS[decision.verdict])
        return decision.text
    return text


def _acted(
    ex: Exchange, rt: Runtime, g: Guardrail, stage: GuardrailStage, decision: Decision, start_ns: int
) -> None:
    """Leave the span and the verdict of a check that acted."""
    assert ex.root is not None
    span = start_span(
        rt.tracer,
        sc.SPAN_GUARDRAIL.format(g.name),
        parent=ex.root,
        start_ns=start_ns,
        attributes={
            sc.OPERATION: sc.OP_GUARDRAIL,
            sc.GUARDRAIL_KIND: g.kind,
            sc.GUARDRAIL_STAGE: stage,
            sc.GUARDRAIL_VERDICT: decision.verdict.value,
            sc.GUARDRAIL_REASON: decision.reason,
        },
    )
    end_span(span)
    ex.trail.spans.append(span)
    ex.guardrails.append(
        {
            "name": g.name,
            "kind": g.kind,
            "stage": stage,
            "verdict": decision.verdict.value,
            "reason": decision.reason,
        }
    )
