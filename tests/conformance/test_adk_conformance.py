"""google-adk's own evaluators and Shipyard on ADK's own eval sets (vendored from adk-python's
tests, see data/adk/SOURCE.md), for each case and several agent behaviours: the expected one, a
reworded reply (stemming decides), half a reply, an empty reply, a changed tool argument, a missing
tool call, and a tool call made one turn late."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, ClassVar

import pytest
from _conformance import ADK_FILES, DATA, Tally, compare_adk


@pytest.fixture(autouse=True)
def _adk_evaluation() -> None:
    """Each test skips, saying why, without google-adk's evaluation extras (imported here, by the
    tests, not by every pytest worker collecting this file)."""
    pytest.importorskip("google.adk.evaluation.trajectory_evaluator")
    pytest.importorskip("rouge_score")


@pytest.mark.parametrize("path", ADK_FILES, ids=lambda p: str(p.relative_to(DATA / "adk")))
def test_shipyard_agrees_with_adk(path: Path) -> None:
    tally = compare_adk(path)
    assert tally.total > 0
    assert not tally.disagreements, f"{tally}:\n" + "\n".join(tally.disagreements)


@pytest.mark.parametrize(
    "criteria",
    [
        {"tool_trajectory_avg_score": {"threshold": 1.0, "match_type": "IN_ORDER"}},
        {
            "tool_trajectory_avg_score": {"threshold": 0.5, "match_type": "ANY_ORDER"},
            "response_match_score": 0.3,
        },
        {"tool_trajectory_avg_score": {"threshold": 1.0, "ignore_args": True}},
    ],
    ids=["in-order", "any-order", "ignore-args"],
)
def test_trajectory_match_types_as_adk(criteria: dict, tmp_path: Path) -> None:
    """The same eval sets under other criteria of test_config.json (match types, ignored arguments)."""
    (tmp_path / "test_config.json").write_text(json.dumps({"criteria": criteria}))
    tally = Tally()
    for path in ADK_FILES:
        target = tmp_path / f"{len(tally.disagreements)}-{tally.total}-{path.name}"
        shutil.copy(path, target)
        tally.merge(compare_adk(target))
        target.unlink()
    assert tally.total > 0
    assert not tally.disagreements, f"{tally}:\n" + "\n".join(tally.disagreements)


@pytest.mark.parametrize(
    ("reply", "reference"),
    [
        ("The cats were running home.", "the cat runs home"),
        ("Ich habe die Bestellung storniert.", "Bestellung storniert"),
        ("注文は発送されました", "注文は発送済みです"),
        ("ส่งสินค้าแล้วครับ", "ส่งสินค้าแล้ว"),
        ("Café déjà-vu, naïve résumé", "cafe deja vu naive resume"),
        ("", "anything"),
        ("", ""),
    ],
)
def test_rouge1_as_adk_computes_it(reply: str, reference: str) -> None:
    from google.adk.evaluation.final_response_match_v1 import _calculate_rouge_1_scores

    from shipyard.evals._scorers_adk import adk_rouge1

    assert adk_rouge1(reply, reference) == pytest.approx(_calculate_rouge_1_scores(reply, reference).fmeasure)


# conversation_scenario: the user simulator ---------------------------------------------------------

_SCRIPTS: dict[str, list[str]] = {}  # model name -> the replies its scripted model gives, in order


def _adk_script_llm() -> Any:
    """A model class in ADK's own registry (`scripted-<name>`) answering from `_SCRIPTS`: ADK's
    LlmBackedUserSimulator then runs unchanged, and gets the replies Shipyard's simulator gets."""
    from google.adk.models.base_llm import BaseLlm
    from google.adk.models.llm_response import LlmResponse
    from google.adk.models.registry import LLMRegistry
    from google.genai import types as gt

    class ScriptedLlm(BaseLlm):
        prompts: ClassVar[list[str]] = []

        @classmethod
        def supported_models(cls) -> list[str]:
            return [r"scripted-.*"]

        async def generate_content_async(self, llm_request: Any, stream: bool = False) -> Any:
            type(self).prompts.append(llm_request.contents[0].parts[0].text)
            yield LlmResponse(
                content=gt.Content(role="model", parts=[gt.Part(text=_SCRIPTS[self.model].pop(0))])
            )

    LLMRegistry.register(ScriptedLlm)
    return ScriptedLlm


class _ScriptedHandle:
    """The judge handle Shipyard's simulator calls, answering from the same script."""

    def __init__(self, replies: list[str]) -> None:
        self.replies = list(replies)
        self.prompts: list[str] = []

    async def chat(self, model: str, messages: list[dict[str, Any]], **_: Any) -> Any:
        from shipyard.evals import JudgeReply

        self.prompts.append(messages[0]["content"])
        return JudgeReply(self.replies.pop(0), 10, 2, 0.0)


@pytest.mark.parametrize(
    ("replies", "max_turns"),
    [
        (["where is order 42?", "Thanks, that is all. </finished>"], 10),
        (["more please", "and again", "once more"], 3),
        (["ok", "Done. </FINISHED>"], 10),
        (["fine", ""], 10),
    ],
    ids=["stop-signal", "turn-limit", "stop-signal-any-case", "empty-reply"],
)
async def test_user_simulator_plays_as_adks_llm_backed_user_simulator(
    replies: list[str], max_turns: int
) -> None:
    """The same scenario, agent replies and simulated-user model replies through google-adk's
    LlmBackedUserSimulator and through Shipyard's: the same prompts to the model, the same user
    messages, the same end (stop signal, turn limit, or an error on an empty reply)."""
    from google.adk.evaluation.conversation_scenarios import ConversationScenario
    from google.adk.evaluation.simulation.llm_backed_user_simulator import (
        LlmBackedUserSimulator,
        LlmBackedUserSimulatorConfig,
    )
    from google.adk.evaluation.simulation.user_simulator import Status
    from google.adk.events.event import Event
    from google.genai import types as gt

    from shipyard.config import UserSimulatorConfig
    from shipyard.evals import Scenario, SimulatorError, UserSimulator

    llm = _adk_script_llm()
    model = f"scripted-{len(_SCRIPTS)}"
    _SCRIPTS[model] = list(replies)
    llm.prompts = []
    plan = "Ask where order 42 is. When you know, say thanks and end."
    adk = LlmBackedUserSimulator(
        config=LlmBackedUserSimulatorConfig(model=model, max_allowed_invocations=max_turns),
        conversation_scenario=ConversationScenario(starting_prompt="Hello", conversation_plan=plan),
    )
    ours = UserSimulator(
        UserSimulatorConfig(model="user", max_turns=max_turns),
        Scenario(starting_prompt="Hello", conversation_plan=plan),
        _ScriptedHandle(replies),  # type: ignore[arg-type]
        "shop",
    )

    def agent_reply(n: int) -> str:
        return f"Reply {n}: Order 42 is shipped."

    events: list[Any] = []
    history: list[dict[str, Any]] = []
    adk_said: list[str] = []
    ours_said: list[str] = []
    for turn in range(max_turns + 1):
        try:
            got = await adk.get_next_user_message(events)
            adk_end = "" if got.status == Status.SUCCESS else got.status.value
            adk_text = got.user_message.parts[0].text if got.user_message and got.user_message.parts else None
        except RuntimeError as e:
            adk_end, adk_text = f"error: {e}", None
        try:
            ours_text = ours.first_message if turn == 0 else await ours.next_message(history, turn)
            ours_end = (
                ""
                if ours_text is not None
                else ("stop_signal_detected" if ours.stopped else "turn_limit_reached")
            )
        except SimulatorError as e:
            ours_end, ours_text = f"error: {e}", None
        adk_said.append(adk_end or str(adk_text))
        ours_said.append(ours_end or str(ours_text))
        if adk_text is None or ours_text is None:
            break
        reply = agent_reply(turn)
        events += [
            Event(author="user", content=gt.Content(role="user", parts=[gt.Part(text=adk_text)])),
            Event(author="shop", content=gt.Content(role="model", parts=[gt.Part(text=reply)])),
        ]
        history += [{"role": "user", "content": ours_text}, {"role": "assistant", "content": reply}]
    assert llm.prompts and len(adk_said) >= 2  # the reference really ran
    assert ours.handle.prompts == llm.prompts  # type: ignore[attr-defined]
    assert [s.split(":")[0] for s in ours_said] == [s.split(":")[0] for s in adk_said], (ours_said, adk_said)
    assert [s for s in ours_said if not s.startswith("error")] == [
        s for s in adk_said if not s.startswith("error")
    ]


def test_adk_loads_the_scenario_eval_set_as_shipyard_does() -> None:
    """ADK's own models read the vendored scenario set and its test_config.json as Shipyard does; a
    case ADK refuses (both conversation and scenario, or no plan) Shipyard refuses too."""
    import pydantic
    from _conformance import ADK_SCENARIOS
    from google.adk.evaluation.eval_case import EvalCase
    from google.adk.evaluation.eval_config import EvalConfig
    from google.adk.evaluation.eval_set import EvalSet

    from shipyard.evals import load_suite

    path = ADK_SCENARIOS / "conversation_scenario.test.json"
    adk = EvalSet.model_validate_json(path.read_text())
    config = EvalConfig.model_validate_json((ADK_SCENARIOS / "test_config.json").read_text())
    (case,) = load_suite(path).cases
    ref = adk.eval_cases[0]
    assert case.id == ref.eval_id and case.scenario is not None and ref.conversation_scenario is not None
    assert case.scenario.starting_prompt == ref.conversation_scenario.starting_prompt
    assert case.scenario.conversation_plan == ref.conversation_scenario.conversation_plan
    assert config.user_simulator_config is not None
    assert case.scenario.max_turns == config.user_simulator_config.max_allowed_invocations
    for bad in (
        {
            "eval_id": "x",
            "conversation": [],
            "conversation_scenario": {"starting_prompt": "a", "conversation_plan": "b"},
        },
        {"eval_id": "x", "conversation_scenario": {"starting_prompt": "a"}},
    ):
        with pytest.raises(pydantic.ValidationError):
            EvalCase.model_validate(bad)
