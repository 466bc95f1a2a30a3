"""What a guardrail sees and what it decides: `GuardrailInput` in, `Decision` (a `Verdict`) out."""

from __future__ import annotations

import enum
import json
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
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
        stage: input (before the agent) | output (after it).
        text: what is checked: the user's message (input) or the agent's answer (output), as
            earlier guardrails of the same stage left it (redactions applied).
        user_input: the user's message.
        tool_calls: the tool calls the agent made, in order (empty at the input stage).
    """

    agent: str
    stage: Stage
    text: str
    user_input: str
    tool_calls: Sequence[ToolCallView] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    """A guardrail's decision.

    Attributes:
        verdict: allow | block | redact | escalate.
        reason: why, for the record and the trace (say what was found, not the user's data).
        text: block / escalate: the reply the user gets instead; redact: the text with the
            redactions made. Unused for allow.
    """

    verdict: Verdict
    reason: str = ""
    text: str | None = None

    def __post_init__(self) -> None:
        if self.verdict is not Verdict.ALLOW and self.text is None:
            raise ValueError(f"a {self.verdict.value} decision needs the text the user gets instead")


ALLOW = Decision(Verdict.ALLOW)
"""The decision of a check that found nothing."""


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
