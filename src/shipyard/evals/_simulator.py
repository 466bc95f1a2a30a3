"""The user simulator: a configured model plays the user of a `scenario` case (ADK's
`conversation_scenario`), as google-adk's `LlmBackedUserSimulator` does.

The first user turn is the scenario's `starting_prompt`, sent as is. Every further turn is one call
of the `evals.user_simulator` model with ADK's default instructions (vendored in
`data/user_simulator.yaml`) filled with the stop signal, the scenario's `conversation_plan` and the
conversation so far (`user: ...` and `<agent>: ...` paragraphs, as ADK summarises its events). A reply
holding the stop signal (`</finished>`, any case) ends the conversation; so does reaching `max_turns`
user turns, the starting prompt included (ADK's `max_allowed_invocations`). An empty reply or a failed
call is an error (ADK raises too): the repeat is ERROR, never a pass.

The simulator's calls go through the judge's handle: priced, counted with the judge's cost (eval
overhead, not the agent's), and recorded / replayed under kind `user_simulator`."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

import yaml

from shipyard.llm import LLMError

if TYPE_CHECKING:
    from shipyard.config import UserSimulatorConfig
    from shipyard.evals._judge import JudgeHandle
    from shipyard.evals._suite import Scenario

_PLACEHOLDER = re.compile(r"\{\{ (stop_signal|conversation_plan|conversation_history) \}\}")
SIMULATOR_KIND = "user_simulator"


class SimulatorError(RuntimeError):
    """The user simulator could not give a user message (its model failed or answered nothing)."""


@functools.cache
def _data() -> dict[str, Any]:
    text = resources.files("shipyard.evals").joinpath("data/user_simulator.yaml").read_text("utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def stop_signal() -> str:
    """The text a simulated user writes when the conversation is over (ADK's `</finished>`)."""
    return str(_data()["stop_signal"])


def render_prompt(conversation_plan: str, conversation_history: str) -> str:
    """ADK's default user-simulator instructions, filled as its Jinja template renders them (each
    placeholder once, the template's trailing newline dropped)."""
    template = str(_data()["template"]).removesuffix("\n")
    values = {
        "stop_signal": stop_signal(),
        "conversation_plan": conversation_plan,
        "conversation_history": conversation_history,
    }
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def transcript(history: list[dict[str, Any]], agent: str) -> str:
    """The conversation so far as ADK gives it to its simulator: one `author: text` paragraph per
    message with text (`user`, or the agent's name), joined by blank lines."""
    lines = []
    for m in history:
        text = m.get("content")
        if isinstance(text, str) and text:
            lines.append(f"{'user' if m.get('role') == 'user' else agent}: {text}")
    return "\n\n".join(lines)


@dataclass(slots=True)
class SimulatorUsage:
    """What the simulator's calls cost, added to the repeat's judge figures."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


class UserSimulator:
    """Plays the user of one case repeat.

    Args:
        settings: `evals.user_simulator` from shipyard.yaml (the model and the default turn limit).
        scenario: the case's scenario (its own `max_turns` wins over the default).
        handle: the judge handle the calls go through (priced, maybe recorded or replayed).
        agent: the agent's name, the author of its replies in the transcript."""

    def __init__(
        self, settings: UserSimulatorConfig, scenario: Scenario, handle: JudgeHandle, agent: str
    ) -> None:
        self.settings = settings
        self.scenario = scenario
        self.handle = handle
        self.agent = agent
        self.max_turns = scenario.max_turns or settings.max_turns
        self.usage = SimulatorUsage()
        self.stopped = False  # the simulated user said the conversation is over

    @property
    def first_message(self) -> str:
        return self.scenario.starting_prompt

    async def next_message(self, history: list[dict[str, Any]], turns_sent: int) -> str | None:
        """The next user message after `turns_sent` user turns, or None when the conversation is over
        (the turn limit is reached, or the simulated user wrote the stop signal).

        Raises SimulatorError when the model fails or answers nothing."""
        if turns_sent >= self.max_turns:
            return None
        prompt = render_prompt(self.scenario.conversation_plan, transcript(history, self.agent))
        try:
            reply = await self.handle.chat(
                self.settings.model, [{"role": "user", "content": prompt}], kind=SIMULATOR_KIND
            )
        except LLMError as e:
            raise SimulatorError(f"its model {self.settings.model!r} failed: {e}") from None
        self.usage.calls += 1
        self.usage.input_tokens += reply.input_tokens
        self.usage.output_tokens += reply.output_tokens
        self.usage.cost_usd += reply.cost_usd
        if reply.text and stop_signal().lower() in reply.text.lower():
            self.stopped = True
            return None
        if not reply.text:
            raise SimulatorError(f"its model {self.settings.model!r} returned an empty message")
        return reply.text
