"""The request pipeline: built once from the config, frozen, the same everywhere; a step that answers
ends the chain, `record` always runs, and a guardrail that acts leaves a span and a verdict."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import pytest

from shipyard.config import ShipyardConfig, StrictModel
from shipyard.guardrails import ALLOW, Decision, Guardrail, GuardrailInput, Verdict, guardrail_kind
from shipyard.observe import semconv as sc
from shipyard.runtime import PIPELINE_ORDER, Exchange, Pipeline, PipelineFrozenError, Runtime
from shipyard.store import InteractionRecord

Project = Callable[..., ShipyardConfig]

SEEN: list[tuple[str, str]] = []  # (guardrail name, text) of every check that ran


class WordsOptions(StrictModel):
    words: list[str]
    verdict: Literal["block", "redact", "escalate"] = "block"
    reply: str = "I can't help with that."


@guardrail_kind("test_words")
class Words(Guardrail):
    """Acts on texts containing one of `words` (a redaction replaces the word)."""

    options = WordsOptions

    def check(self, inp: GuardrailInput) -> Decision:
        SEEN.append((self.name, inp.text))
        hit = next((w for w in self.settings.words if w in inp.text), None)
        if hit is None:
            return ALLOW
        if self.settings.verdict == "redact":
            return Decision(Verdict.REDACT, reason=f"found {hit!r}", text=inp.text.replace(hit, "[redacted]"))
        return Decision(Verdict(self.settings.verdict), reason=f"found {hit!r}", text=self.settings.reply)


class CrashOptions(StrictModel):
    when: str


@guardrail_kind("test_async_crash")
class AsyncCrash(Guardrail):
    """An async check with a bug on texts that contain `when`."""

    options = CrashOptions

    async def check(self, inp: GuardrailInput) -> Decision:
        SEEN.append((self.name, inp.text))
        if self.settings.when in inp.text:
            raise RuntimeError("the check has a bug")
        return ALLOW


def words(stage: str, name: str, *found: str, verdict: str = "block") -> str:
    return f"      {stage}:\n        - {{kind: test_words, name: {name}, words: {list(found)}, verdict: {verdict}}}\n"


BOTH = words("input", "no_secrets", "forbidden") + words("output", "no_refunds", "refund")


@pytest.fixture(autouse=True)
def _fresh() -> None:
    SEEN.clear()


def spans_named(r: InteractionRecord, prefix: str) -> list[str]:
    return [s.name for s in r.spans if s.name.startswith(prefix)]


def test_without_configured_capabilities_there_are_no_slots(project: Project) -> None:
    rt = Runtime(project())
    assert rt.pipeline.names == ["assign_version", "start_trace", "run_agent", "record"]
    assert rt.pipeline.frozen


def test_configured_guardrails_put_their_steps_in_the_design_order(project: Project) -> None:
    names = Runtime(project(guardrails=BOTH)).pipeline.names
    assert names == [
        "assign_version",
        "start_trace",
        "input_guardrails",
        "run_agent",
        "output_guardrails",
        "record",
    ]
    assert names == [n for n in PIPELINE_ORDER if n in names]
    only_output = Runtime(project(guardrails=words("output", "o", "x"))).pipeline.names
    assert "input_guardrails" not in only_output and "output_guardrails" in only_output


async def _step(ex: Exchange, rt: Runtime) -> None:
    ex.metadata.setdefault("ran", []).append("audit")


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p.insert_after("run_agent", "audit", _step),
        lambda p: p.insert_before("record", "audit", _step),
        lambda p: p.replace("run_agent", _step),
    ],
    ids=["insert_after", "insert_before", "replace"],
)
def test_a_step_added_after_the_runtime_is_made_is_refused(project: Project, change: Callable) -> None:
    rt = Runtime(project())
    before = list(rt.pipeline.names)
    with pytest.raises(PipelineFrozenError) as e:
        change(rt.pipeline)
    assert "the pipeline is frozen once its runtime is made" in str(e.value)
    assert "Runtime(cfg, extend_pipeline=...)" in str(e.value)
    assert rt.pipeline.names == before


async def test_steps_are_added_when_the_runtime_is_made(project: Project) -> None:
    def extend(p: Pipeline) -> None:
        p.insert_after("run_agent", "audit", _step)

    rt = Runtime(project(), extend_pipeline=extend)
    assert rt.pipeline.names == ["assign_version", "start_trace", "run_agent", "audit", "record"]
    r = await rt.invoke("shop", "where is order 42?")
    assert r.metadata["ran"] == ["audit"] and r.status == "completed"
    with pytest.raises(PipelineFrozenError):
        rt.pipeline.insert_after("audit", "late", _step)
    await rt.aclose()


async def test_an_input_block_skips_the_agent_and_later_steps_but_is_recorded(project: Project) -> None:
    rt = Runtime(
        project(guardrails=BOTH), extend_pipeline=lambda p: p.insert_after("run_agent", "audit", _step)
    )
    sunk: list[InteractionRecord] = []
    rt.sinks.append(sunk.append)
    r = await rt.invoke("shop", "forbidden: where is order 42?")
    assert r.status == "blocked" and r.output == "I can't help with that."
    assert r.llm_calls == [] and r.tool_calls == []  # the agent never ran
    assert "ran" not in r.metadata and SEEN == [
        ("no_secrets", "forbidden: where is order 42?")
    ]  # nor did later steps
    assert sunk == [r]  # record ran and handed the record to the sinks
    [verdict] = r.guardrails
    assert verdict == {
        "name": "no_secrets",
        "kind": "test_words",
        "stage": "input",
        "verdict": "block",
        "reason": "found 'forbidden'",
        "latency_ms": verdict["latency_ms"],
    }
    assert verdict["latency_ms"] >= 0
    [span] = [s for s in r.spans if s.name == "apply_guardrail no_secrets"]
    root = next(s for s in r.spans if s.name == "invoke_agent shop")
    assert span.parent_id == root.span_id and span.attributes[sc.GUARDRAIL_VERDICT] == "block"
    assert span.attributes[sc.GUARDRAIL_STAGE] == "input" and root.attributes[sc.STATUS] == "blocked"
    await rt.aclose()


async def test_a_step_that_answers_ends_the_chain_and_record_runs(project: Project) -> None:
    async def cache_hit(ex: Exchange, rt: Runtime) -> None:
        ex.answer("Order 42 is shipped (cached).", by="cache_hit")

    rt = Runtime(
        project(guardrails=BOTH),
        extend_pipeline=lambda p: p.insert_before("run_agent", "cache_hit", cache_hit),
    )
    r = await rt.invoke("shop", "where is order 42?")
    assert r.status == "completed" and r.output == "Order 42 is shipped (cached)."
    assert r.llm_calls == [] and [n for n, _ in SEEN] == ["no_secrets"]  # agent and output checks skipped
    assert spans_named(r, "invoke_agent") == ["invoke_agent shop"]
    await rt.aclose()


async def test_checks_that_only_look_leave_a_span_but_no_verdict(project: Project) -> None:
    rt = Runtime(project(guardrails=BOTH))
    r = await rt.invoke("shop", "where is order 42?")
    assert r.status == "completed" and r.output == "Order 42 is shipped."
    assert SEEN == [("no_secrets", "where is order 42?"), ("no_refunds", "Order 42 is shipped.")]
    assert r.guardrails == []  # the record keeps the checks that acted
    assert spans_named(r, "apply_guardrail") == ["apply_guardrail no_secrets", "apply_guardrail no_refunds"]
    for span in (s for s in r.spans if s.name.startswith("apply_guardrail")):
        assert (
            span.attributes[sc.GUARDRAIL_VERDICT] == "allow" and span.attributes[sc.GUARDRAIL_LATENCY_MS] >= 0
        )
    await rt.aclose()


async def test_a_redaction_changes_what_the_agent_sees_and_the_chain_goes_on(project: Project) -> None:
    rt = Runtime(project(guardrails=words("input", "hide_numbers", "42", verdict="redact")))
    r = await rt.invoke("shop", "where is order 42?")
    assert r.input == "where is order [redacted]?" and r.status == "completed"
    assert (
        r.output == "I can only look up orders." and len(r.llm_calls) == 1
    )  # the agent ran on the redacted text
    assert [g["verdict"] for g in r.guardrails] == ["redact"]
    assert spans_named(r, "apply_guardrail") == ["apply_guardrail hide_numbers"]
    await rt.aclose()


async def test_an_output_escalation_replaces_the_answer_and_keeps_what_the_agent_did(
    project: Project,
) -> None:
    rt = Runtime(project(guardrails=words("output", "to_a_human", "shipped", verdict="escalate")))
    r = await rt.invoke("shop", "where is order 42?")
    assert r.status == "escalated" and r.output == "I can't help with that."
    assert [t.name for t in r.tool_calls] == ["lookup"] and len(r.llm_calls) == 2
    assert r.guardrails[0]["stage"] == "output" and r.guardrails[0]["verdict"] == "escalate"
    await rt.aclose()


@pytest.mark.parametrize(
    ("stage", "seen"), [("input", "where is order 42?"), ("output", "Order 42 is shipped.")]
)
async def test_a_check_that_raises_fails_the_interaction_closed_and_it_is_recorded(
    project: Project, stage: str, seen: str
) -> None:
    rt = Runtime(
        project(guardrails=f"      {stage}:\n        - {{kind: test_async_crash, name: buggy, when: '42'}}\n")
    )
    r = await rt.invoke("shop", "where is order 42?")
    assert [("buggy", seen)] == SEEN
    assert r.status == "failed" and r.metadata["error_kind"] == "pipeline_error"
    assert r.error is not None and f"pipeline step '{stage}_guardrails' failed: RuntimeError" in r.error
    if stage == "input":
        assert r.llm_calls == [] and r.output == ""  # nothing unchecked reached the agent
    else:
        assert [t.name for t in r.tool_calls] == ["lookup"]  # what the agent did is kept
    await rt.aclose()
