"""Routing in the real runtime: each model call goes to a tier's model; a named step keeps its own
tier; a session keeps its tier (sticky) and only moves up, on each trigger (low confidence, a failed
tool call, a guardrail escalation, a harder new turn); the decision and its reasons are on the `chat`
span; a call routed below the reference tier records the saving."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from shipyard.config import ShipyardConfig
from shipyard.cost import call_cost
from shipyard.observe import semconv as sc
from shipyard.runtime import Runtime
from shipyard.store import InteractionRecord
from shipyard.types import Usage

Project = Callable[..., ShipyardConfig]

LONG = (
    "My order arrived late and the box was open, and also the invoice is wrong because you charged me "
    "twice, but I was not told why; then your colleague said it would be fixed, although nothing "
    "happened, so what are you going to do about it and when? And why did nobody call me back?"
)


def chats(rec: InteractionRecord) -> list[dict[str, Any]]:
    """The routing attributes of each `chat` span, in order, with the model that answered."""
    spans = sorted((s for s in rec.spans if s.name.startswith("chat ")), key=lambda s: s.start_ns)
    return [{"model": s.attributes[sc.MODEL_KEY], **s.attributes} for s in spans]


async def run(rt: Runtime, text: str, session: str, **kw: Any) -> InteractionRecord:
    return (await rt.interact("desk", text, session_id=session, **kw)).full


async def test_a_short_request_runs_on_small_and_a_named_step_keeps_its_tier(routed: Project) -> None:
    rt = Runtime(routed())
    rec = await run(rt, "hi, where is my parcel?", "s-short")
    calls = chats(rec)
    assert [c["model"] for c in calls] == ["small-model"] * 3 and rec.output == "small answer"
    assert calls[0][sc.ROUTING_DECIDED_BY] == "step" and calls[0][sc.ROUTING_STEP] == "classify_intent"
    assert calls[1][sc.ROUTING_DECIDED_BY] == "rules" and calls[1][sc.ROUTING_TIER] == "small"
    assert "difficulty" in calls[1][sc.ROUTING_REASONS][0] and 0 <= calls[1][sc.ROUTING_CONFIDENCE] <= 1
    assert calls[2][sc.ROUTING_DECIDED_BY] == "sticky" and calls[2][sc.ROUTING_ESCALATED] is False
    await rt.aclose()


async def test_a_long_multi_part_request_runs_on_large_but_the_pinned_step_stays_small(
    routed: Project,
) -> None:
    rt = Runtime(routed())
    rec = await run(rt, LONG, "s-long")
    assert [c["model"] for c in chats(rec)] == ["small-model", "large-model", "large-model"]
    assert [c.tier for c in rec.llm_calls] == ["small", "large", "large"]  # for the cost ledger
    assert rec.output == "large answer"
    await rt.aclose()


async def test_a_rule_decides_before_the_scorer(routed: Project) -> None:
    rt = Runtime(routed())
    calls = chats(await run(rt, "my lawyer", "s-rule"))
    assert calls[1][sc.ROUTING_DECIDED_BY] == "rule" and calls[1]["model"] == "large-model"
    assert calls[1][sc.ROUTING_REASONS] == ("routing.rules[0] matched",)
    await rt.aclose()


async def test_a_session_keeps_its_tier_and_a_harder_turn_moves_it_up_never_down(routed: Project) -> None:
    rt = Runtime(routed())
    first = chats(await run(rt, "hello", "s-sticky"))
    assert first[1]["model"] == "small-model"
    history = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "small answer"}]
    harder = chats(await run(rt, LONG, "s-sticky", history=history))
    assert harder[1]["model"] == "large-model" and harder[1][sc.ROUTING_ESCALATED] is True
    assert any("harder new turn" in r for r in harder[1][sc.ROUTING_REASONS])
    history += [{"role": "user", "content": LONG}, {"role": "assistant", "content": "large answer"}]
    easy_again = chats(await run(rt, "thanks", "s-sticky", history=history))
    assert easy_again[1]["model"] == "large-model" and easy_again[1][sc.ROUTING_DECIDED_BY] == "sticky"
    # another session is routed on its own
    assert chats(await run(rt, "thanks", "s-other"))[1]["model"] == "small-model"
    await rt.aclose()


async def test_low_confidence_takes_the_next_tier_up(routed: Project, routing_yaml: str) -> None:
    # "hello" scores just under the one cut-off: small, but with little confidence
    unsure = routing_yaml.replace(
        "min_confidence: 0.0}", "min_confidence: 0.5}\n  scorer: {thresholds: [0.1]}"
    )
    rt = Runtime(routed(unsure))
    calls = chats(await run(rt, "hello", "s-unsure"))
    assert calls[1][sc.ROUTING_CONFIDENCE] < 0.5
    assert calls[1]["model"] == "large-model" and calls[1][sc.ROUTING_ESCALATED] is True
    assert any("low confidence" in r for r in calls[1][sc.ROUTING_REASONS])
    await rt.aclose()


async def test_a_failed_tool_call_moves_the_session_up_for_the_rest_of_it(routed: Project) -> None:
    rt = Runtime(routed())
    rec = await run(rt, "hello flaky", "s-tool")
    assert [t.status for t in rec.tool_calls] == ["error"]
    calls = chats(rec)
    assert [c["model"] for c in calls] == ["small-model", "small-model", "large-model"]
    assert calls[2][sc.ROUTING_ESCALATED] is True
    assert any("failed tool call (flaky)" in r for r in calls[2][sc.ROUTING_REASONS])
    later = chats(await run(rt, "hello", "s-tool", history=[{"role": "user", "content": "hello flaky"}]))
    assert later[1]["model"] == "large-model" and later[1][sc.ROUTING_DECIDED_BY] == "sticky"
    await rt.aclose()


async def test_a_pinned_step_between_leaves_the_escalation_to_the_next_routed_call(routed: Project) -> None:
    rt = Runtime(routed())
    calls = chats(await run(rt, "hello flaky reclassify", "s-pinned"))
    assert [c["model"] for c in calls] == ["small-model", "small-model", "small-model", "large-model"]
    assert calls[2][sc.ROUTING_DECIDED_BY] == "step" and calls[3][sc.ROUTING_ESCALATED] is True
    await rt.aclose()


async def test_turning_the_tool_error_trigger_off_keeps_the_tier(routed: Project, routing_yaml: str) -> None:
    cfg = routed(routing_yaml.replace("min_confidence: 0.0}", "min_confidence: 0.0, on_tool_error: false}"))
    rt = Runtime(cfg)
    assert [c["model"] for c in chats(await run(rt, "hello flaky", "s-off"))][2] == "small-model"
    await rt.aclose()


ESCALATING_POLICY = """\
      tool_call:
        - kind: tool_policy
          name: one_payment
          tools: [pay]
          max_calls: 1
          verdict: escalate
"""


async def test_a_guardrail_escalation_moves_the_session_up(routed: Project) -> None:
    rt = Runtime(routed(guardrails=ESCALATING_POLICY))
    rec = await run(rt, "hello pay twice", "s-guard")
    assert [t.status for t in rec.tool_calls] == ["success", "blocked"] and rec.status == "escalated"
    calls = chats(rec)
    assert calls[2]["model"] == "large-model" and calls[2][sc.ROUTING_ESCALATED] is True
    assert any("guardrail escalation" in r for r in calls[2][sc.ROUTING_REASONS])
    assert not any("failed tool call" in r for r in calls[2][sc.ROUTING_REASONS])  # blocked is not failed
    await rt.aclose()


async def test_a_call_below_the_reference_tier_records_its_saving(routed: Project) -> None:
    cfg = routed()
    savings: list[dict[str, float]] = []

    async def keep(ex: Any, rt: Runtime) -> None:
        savings.append(dict(ex.trail.savings))

    rt = Runtime(cfg, extend_pipeline=lambda p: p.insert_after("run_agent", "keep_savings", keep))
    rec = await run(rt, "hello", "s-save")
    expected = 0.0
    for c in rec.llm_calls:
        usage = Usage(c.input_tokens, c.output_tokens, c.cached_input_tokens)
        expected += call_cost(cfg.models["large-model"].prices, usage) - c.cost_usd
    assert expected > 0 and abs(savings[0]["routing"] - expected) < 1e-12
    spans = [s for s in rec.spans if s.name.startswith("chat ")]
    assert abs(sum(s.attributes[sc.ROUTING_SAVING_USD] for s in spans) - expected) < 1e-12
    # nothing is saved on the reference tier
    savings.clear()
    await run(rt, "my lawyer", "s-nosave")
    assert savings[0]["routing"] < expected / 2  # only the pinned small step saved
    await rt.aclose()


async def test_with_routing_off_the_agent_calls_its_configured_model_as_before(routed: Project) -> None:
    rt = Runtime(routed(routing=""))
    rec = await run(rt, LONG, "s-plain")
    assert rt.routing is None
    assert [c["model"] for c in chats(rec)] == ["small-model"] * 3
    assert not any(k.startswith("shipyard.routing") for c in chats(rec) for k in c)
    plain_id = rec.version
    await rt.aclose()
    off = routed(routing="routing:\n  enabled: false\n  agents: [desk]\n")
    assert Runtime(off).resolve_version("desk").id == plain_id  # configured but off: the same version
    on = Runtime(routed())
    assert on.resolve_version("desk").id != plain_id  # routed: a new version, for the gates to judge
    await on.aclose()


async def test_a_low_confidence_answer_moves_the_session_up_for_its_next_call(
    routed: Project, routing_yaml: str
) -> None:
    import re

    from shipyard.config import load_config
    from shipyard.errors import ConfigError
    from shipyard.llm import MockLLMServer
    from shipyard.llm._mockserver import mock_logprob

    # the small model's answer, as the mock LLM scores its tokens
    mean = sum(map(mock_logprob, (tokens := re.findall(r"\s*\S+", "small answer")))) / len(tokens)
    unsure = routing_yaml.replace(
        "min_confidence: 0.0}", f"min_confidence: 0.0, min_answer_logprob: {mean + 0.01}}}"
    )
    with pytest.raises(ConfigError, match="set logprobs: true on models"):
        routed(unsure)  # scripted models return no log-probabilities: the setting would do nothing
    cfg = routed(routing_yaml)
    path = cfg.root / "shipyard.yaml"
    with MockLLMServer(cfg.root / "small.yaml") as small, MockLLMServer(cfg.root / "large.yaml") as large:
        text = path.read_text()
        text = re.sub(
            r"  small-model: .*\n",
            f"  small-model: {{provider: openai, base_url: '{small}', tier: small, logprobs: true}}\n",
            text,
        )
        text = re.sub(
            r"  large-model: .*\n",
            f"  large-model: {{provider: openai, base_url: '{large}', tier: large, logprobs: true}}\n",
            text,
        )
        path.write_text(text.replace(routing_yaml, unsure))
        rt = Runtime(load_config(path))
        calls = chats(await run(rt, "hello", "s-answer"))
        assert [c["model"] for c in calls] == ["small-model", "small-model", "large-model"]
        assert calls[2][sc.ROUTING_ESCALATED] is True
        assert any("low-confidence answer" in r for r in calls[2][sc.ROUTING_REASONS])
        await rt.aclose()
        # just under the answer's confidence: no escalation
        path.write_text(path.read_text().replace(f"{mean + 0.01}", f"{mean - 0.01}"))
        rt = Runtime(load_config(path))
        assert [c["model"] for c in chats(await run(rt, "hello", "s-sure"))][2] == "small-model"
        await rt.aclose()
