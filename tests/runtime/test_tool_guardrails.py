"""Guardrails around tool calls, in the real runtime: `tool_call` checks run before the tool (a refused
call does not run, the agent gets a `blocked` tool error), `tool_result` checks on what it returned
(redact or withhold), every check an `apply_guardrail` span under the tool's span, the acting ones a
verdict on the record and a safety incident; what cannot be checked fails closed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import pytest
from opentelemetry.sdk.trace import TracerProvider

from shipyard.config import ShipyardConfig, StrictModel
from shipyard.errors import ConfigError
from shipyard.guardrails import ALLOW, Decision, Guardrail, GuardrailInput, Verdict, guardrail_kind
from shipyard.observe import Metrics, is_safety_incident
from shipyard.observe import semconv as sc
from shipyard.runtime import Runtime, ToolRefusedError, TracedTools, Trail
from shipyard.store import InteractionRecord
from shipyard.types import ToolResult

Project = Callable[..., ShipyardConfig]

ONLY_GOLD = """\
      tool_call:
        - kind: tool_policy
          name: gold_only
          tools: [lookup]
          allow_when: [{metadata: tier, in: [gold]}]
          verdict: VERDICT
"""


class ResultWordsOptions(StrictModel):
    word: str
    verdict: Literal["redact", "block", "crash"] = "redact"


@guardrail_kind("test_result_words")
class ResultWords(Guardrail):
    """A tool_call / tool_result check acting on a word in what it sees."""

    options = ResultWordsOptions
    stages = ("tool_call", "tool_result")

    def check(self, inp: GuardrailInput) -> Decision:
        if self.settings.word not in inp.text:
            return ALLOW
        if self.settings.verdict == "crash":
            raise RuntimeError("the check has a bug")
        if self.settings.verdict == "block":
            return Decision(Verdict.BLOCK, reason=f"found {self.settings.word!r}", score=0.9)
        return Decision(Verdict.REDACT, reason="masked", text=inp.text.replace(self.settings.word, "hidden"))


def words(stage: str, word: str, verdict: str = "redact") -> str:
    return f"      {stage}:\n        - {{kind: test_result_words, word: '{word}', verdict: {verdict}}}\n"


def spans(r: InteractionRecord, name: str) -> list[Any]:
    return [s for s in r.spans if s.name == name]


async def test_a_refused_call_does_not_run_and_the_agent_gets_a_blocked_tool_error(project: Project) -> None:
    rt = Runtime(project(guardrails=ONLY_GOLD.replace("VERDICT", "block")))
    r = await rt.invoke("shop", "where is order 42?", metadata={"tier": "free"})
    [call] = r.tool_calls
    assert call.name == "lookup" and call.status == "blocked" and call.result is None
    assert "gold_only" in str(call.error) and "allowed only when metadata 'tier' is one of gold" in str(
        call.error
    )
    assert r.status == "completed" and "42" not in r.output  # the agent never saw an order
    [verdict] = r.guardrails
    assert verdict["stage"] == "tool_call" and verdict["verdict"] == "block" and verdict["tool"] == "lookup"
    assert verdict["score"] == 1.0 and verdict["latency_ms"] >= 0
    assert is_safety_incident(r)
    [check] = spans(r, "apply_guardrail gold_only")
    [tool] = spans(r, "execute_tool lookup")
    assert check.parent_id == tool.span_id and tool.attributes[sc.TOOL_STATUS] == "blocked"
    assert check.attributes[sc.GUARDRAIL_STAGE] == "tool_call" and check.attributes[sc.TOOL_NAME] == "lookup"
    assert check.attributes[sc.GUARDRAIL_SCORE] == 1.0

    allowed = await rt.invoke("shop", "where is order 42?", metadata={"tier": "gold"})
    assert allowed.output == "Order 42 is shipped." and not allowed.guardrails
    [check] = spans(allowed, "apply_guardrail gold_only")  # every check is a span, allow too
    assert check.attributes[sc.GUARDRAIL_VERDICT] == "allow" and not is_safety_incident(allowed)
    await rt.aclose()


async def test_an_escalated_call_is_refused_and_the_interaction_escalated(project: Project) -> None:
    rt = Runtime(project(guardrails=ONLY_GOLD.replace("VERDICT", "escalate")))
    r = await rt.invoke("shop", "where is order 42?")  # no tier at all: not allowed (closed)
    assert r.status == "escalated" and r.tool_calls[0].status == "blocked"
    assert r.guardrails[0]["verdict"] == "escalate" and is_safety_incident(r)
    await rt.aclose()


async def test_a_tool_result_is_redacted_before_the_agent_sees_it(project: Project) -> None:
    rt = Runtime(project(guardrails=words("tool_result", "shipped")))
    r = await rt.invoke("shop", "where is order 42?")
    assert r.output == "Order 42 is hidden."  # the model answered from the redacted result
    assert r.tool_calls[0].result == {"order_id": "42", "status": "hidden"}
    [verdict] = r.guardrails
    assert verdict["stage"] == "tool_result" and verdict["verdict"] == "redact"
    await rt.aclose()


async def test_a_withheld_tool_result_reaches_the_agent_as_a_blocked_error(project: Project) -> None:
    rt = Runtime(project(guardrails=words("tool_result", "shipped", "block")))
    r = await rt.invoke("shop", "where is order 42?")
    [call] = r.tool_calls
    assert call.status == "blocked" and "withheld the result" in str(call.error) and call.result is None
    assert "shipped" not in r.output and r.guardrails[0]["score"] == 0.9
    await rt.aclose()


async def test_redacted_arguments_are_what_the_tool_runs_with(project: Project) -> None:
    rt = Runtime(project(guardrails=words("tool_call", "42")))
    r = await rt.invoke("shop", "where is order 42?")
    assert r.tool_calls[0].arguments == {"order_id": "hidden"} and r.output == "Order hidden is shipped."
    await rt.aclose()


async def test_a_check_that_raises_fails_closed(project: Project) -> None:
    rt = Runtime(project(guardrails=words("tool_call", "42", "crash")))
    r = await rt.invoke("shop", "where is order 42?")
    assert r.status == "failed" and r.metadata["error_kind"] == "guardrail_error"
    assert "a tool_call guardrail failed on lookup" in str(r.error)
    [call] = r.tool_calls
    assert call.status == "blocked"  # the tool did not run
    [check] = spans(r, "apply_guardrail test_result_words")
    assert check.status == "error"
    await rt.aclose()


async def test_a_policy_naming_a_tool_the_agent_lacks_is_a_config_error(project: Project) -> None:
    guardrails = ONLY_GOLD.replace("VERDICT", "block").replace("tools: [lookup]", "tools: [lookupp]")
    rt = Runtime(project(guardrails=guardrails))
    with pytest.raises(ConfigError) as e:
        await rt.invoke("shop", "where is order 42?")
    assert "tool 'lookupp' is not a tool of shop@" in str(e.value) and "its tools: lookup" in str(e.value)
    await rt.aclose()


@guardrail_kind("test_block_all")
class BlockAll(Guardrail):
    """An input check that blocks everything, without a reply of its own."""

    stages = ("input",)

    def check(self, inp: GuardrailInput) -> Decision:
        return Decision(Verdict.BLOCK, reason="everything")


async def test_a_block_without_a_reply_answers_the_configured_blocked_reply(project: Project) -> None:
    rt = Runtime(
        project(guardrails="      input: [{kind: test_block_all}]\n      blocked_reply: Not here.\n")
    )
    r = await rt.invoke("shop", "where is order 42?")
    assert r.status == "blocked" and r.output == "Not here."
    assert r.input == "where is order 42?"  # the record keeps what the user sent
    await rt.aclose()


class AllowOrRefuse:
    """A `ToolGuard` for `TracedTools` on its own: refuses `refuse`, redacts results of `mask`."""

    def __init__(self, refuse: str, mask: str) -> None:
        self.refuse, self.mask = refuse, mask

    async def before(self, name: str, arguments: dict[str, Any], span: Any) -> tuple[dict[str, Any], Any]:
        if name == self.refuse:
            return arguments, ToolResult(name, arguments, "blocked", error=f"{name} refused")
        return arguments, None

    async def after(self, name: str, arguments: dict[str, Any], result: ToolResult, span: Any) -> ToolResult:
        if name == self.mask and result.ok:
            return ToolResult(name, arguments, "success", value="masked", duration_ms=result.duration_ms)
        return result


async def test_tools_a_framework_runs_meet_the_guard_too() -> None:
    trail = Trail()
    tracer = TracerProvider().get_tracer("test")
    root = tracer.start_span("root")
    tools = TracedTools(_NoTools(), [], tracer, root, trail, guard=AllowOrRefuse("pay", "read"))
    ran: list[str] = []

    async def run(name: str) -> Any:
        ran.append(name)
        return {"secret": 1}

    with pytest.raises(ToolRefusedError, match="pay refused"):
        await tools.observe("pay", {"amount": 5}, lambda: run("pay"))
    assert await tools.observe("read", '{"id": 1}', lambda: run("read")) == "masked"
    assert ran == ["read"]  # the refused tool never ran
    assert [(c.name, c.status, c.result) for c in trail.tool_calls] == [
        ("pay", "blocked", None),
        ("read", "success", "masked"),
    ]


class _NoTools:
    def names(self) -> list[str]:
        return []

    def definitions(self) -> list[dict[str, Any]]:
        return []

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        raise AssertionError("not called")


def test_blocks_and_escalations_count_as_incidents_in_metrics() -> None:
    metrics = Metrics()
    base: dict[str, Any] = dict(
        trace_id="t", session_id="s", user_id=None, agent="shop", version="v1", traffic_source="production",
        input="hi", output="ok", status="completed", latency_ms=1.0,
    )  # fmt: skip
    verdicts = ["block", "escalate", "redact"]
    for i, verdict in enumerate(verdicts):
        g = {"name": "gold_only", "stage": "tool_call", "verdict": verdict, "reason": ""}
        metrics.observe_interaction(InteractionRecord(id=str(i), guardrails=[g], **base))
    text = metrics.render().decode()
    assert 'shipyard_safety_incidents_total{agent="shop",version="v1"} 2.0' in text
    for verdict in verdicts:
        assert (
            f'shipyard_guardrail_verdicts_total{{agent="shop",guardrail="gold_only",'
            f'stage="tool_call",verdict="{verdict}",version="v1"}} 1.0'
        ) in text
