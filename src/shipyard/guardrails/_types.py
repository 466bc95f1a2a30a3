"""What a guardrail sees and what it decides: `GuardrailInput` in, `Decision` (a `Verdict`) out."""

from __future__ import annotations

import enum
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel

from shipyard.config import GuardrailStage as Stage
from shipyard.config import StrictModel


class Verdict(enum.StrEnum):
    """What a guardrail decided. `allow` lets the text through; `block` answers with the guardrail's
    reply instead (the interaction is `blocked`, a safety incident); `redact` lets a changed text
    through; `escalate` hands the request to a human (the interaction is `escalated`)."""

    ALLOW = "allow"
    BLOCK = "block"
    REDACT = "redact"
    ESCALATE = "escalate"


class ToolCallView(Protocol):
    """A tool call the agent made, as a guardrail reads it (`shipyard.store.ToolCallRecord` is one)."""

    @property
    def name(self) -> str: ...

    @property
    def arguments(self) -> dict[str, Any]: ...

    @property
    def status(self) -> str: ...  # success | error | invalid_arguments | not_found | blocked

    @property
    def result(self) -> Any: ...  # the tool's value (None unless it succeeded)


@dataclass(frozen=True, slots=True)
class GuardrailInput:
    """What one check looks at.

    Attributes:
        agent: the agent's name.
        stage: input (before the agent) | tool_call (before a tool runs) | tool_result (on what a
            tool returned) | output (after the agent).
        text: what is checked: the user's message (input), the tool call's arguments as JSON
            (tool_call), the tool's result as text (tool_result, JSON unless it was text) or the
            agent's answer (output), as earlier guardrails of the same stage left it.
        user_input: the user's message.
        tool_calls: the tool calls the agent made so far, in order (empty at the input stage; at
            tool_call / tool_result, the calls before this one).
        tool: tool_call / tool_result: the tool's name (None at input / output).
        arguments: tool_call / tool_result: the call's arguments (empty at input / output).
        metadata: the request's metadata (user attributes such as a tier live here).
        user_id: the request's user id, if any.
        flag: whether a feature flag is on for this request's user and session (`ctx.flags.enabled`).
        system_prompt: the system prompt the agent's version runs with, as rendered (with its canary
            token when one is planted); '' when unknown. `system_prompt_leak` compares the output to it.
        safety_rules: the version's prompt bundle `safety_rules.txt` ('' when absent);
            `policy_phrases` reads its "Never say" lines.
    """

    agent: str
    stage: Stage
    text: str
    user_input: str
    tool_calls: Sequence[ToolCallView] = ()
    tool: str | None = None
    arguments: Mapping[str, Any] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    user_id: str | None = None
    flag: Callable[[str], bool] = lambda _name: False
    system_prompt: str = ""
    safety_rules: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    """A guardrail's decision.

    Attributes:
        verdict: allow | block | redact | escalate.
        reason: why, for the record and the trace (say what was found, not the user's data).
        text: redact: the text with the redactions made (required); block / escalate: the reply
            the user gets instead (None: the agent's configured `blocked_reply` /
            `escalated_reply`). Unused for allow.
        score: how sure the check is (0..1, e.g. a classifier's probability), if it has a score.
    """

    verdict: Verdict
    reason: str = ""
    text: str | None = None
    score: float | None = None

    def __post_init__(self) -> None:
        if self.verdict is Verdict.REDACT and self.text is None:
            raise ValueError("a redact decision needs the text with the redactions made")


ALLOW = Decision(Verdict.ALLOW)
"""The decision of a check that found nothing."""

HEAVY_CHARS = 8_000
"""Texts longer than this are checked off the event loop: the built-in checks take about 1.2 µs per
character (benchmarks/bench_guardrails.py), so ~10 ms here and ~0.25 s for a 200 KB tool result."""


def is_heavy(text: str) -> bool:
    """Whether checking `text` is slow enough to run in a worker thread (`asyncio.to_thread`) rather
    than on the event loop. A guardrail kind's sync `check` must therefore be thread-safe (the
    built-in ones are: they keep no per-call state)."""
    return len(text) > HEAVY_CHARS


class NoOptions(StrictModel):
    """A guardrail kind without options."""


class Guardrail:
    """Base of a guardrail kind: subclass it, set `options` (a pydantic model of the settings the
    kind takes in shipyard.yaml) and `stages`, implement `check`, and register it with
    `@guardrail_kind("name")`.

    Args:
        name: the configured name (verdicts and spans carry it).
        options: the validated options (an instance of `options`).
    """

    kind: ClassVar[str] = ""  # set by @guardrail_kind
    options: ClassVar[type[BaseModel]] = NoOptions
    stages: ClassVar[tuple[Stage, ...]] = ("input", "output")

    def __init__(self, name: str, options: Any) -> None:
        self.name = name
        self.settings = options

    def check(self, inp: GuardrailInput) -> Decision | Awaitable[Decision]:
        """Judge `inp`; sync or async. Raising fails the interaction (closed), never lets it pass."""
        raise NotImplementedError

    def checks_tool(self, tool: str) -> bool:
        """Whether this check looks at calls of `tool` (tool_call / tool_result stages); a check
        that does not is skipped for it (no span). Default: every tool."""
        return True

    def tool_names(self) -> frozenset[str]:
        """The tools this check names in its options; each must be a tool of the agent (the runtime
        checks when the agent's versions load, so a misspelt tool is a configuration error)."""
        return frozenset()

    def version_problem(self, safety_rules: str) -> str | None:
        """What makes this check unusable for a version whose prompt bundle has `safety_rules`
        (its safety_rules.txt, '' when absent), with what to do; None when nothing does. The runtime
        raises it as a configuration error when the agent's versions load, never per request."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def as_mapping(value: Any) -> Mapping[str, Any] | None:
    """A tool result as a mapping: a dict as it is, a JSON object text parsed; else None."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, Mapping) else None
