"""`agents.<name>.guardrails`: the checks an agent's requests and answers go through.

    agents:
      support:
        guardrails:
          tool_call:
            - kind: tool_policy          # a registered guardrail kind (`shipyard.guardrails`)
              name: refund_policy        # how verdicts and spans name it (default: the kind)
              tools: [process_refund]    # the rest are the kind's own options
              ...
          blocked_reply: "I can't help with that request."   # what a blocked request answers

Stages: `input` (the user's message, before the agent), `tool_call` (a tool call the agent asks for,
before the tool runs), `tool_result` (what a tool returned, before the agent sees it), `output` (the
agent's answer and the tool calls it made).

Each entry names a guardrail kind registered in `GUARDRAIL_KINDS` (the built-ins and plugins register
there through the `shipyard.plugins` entry points); the kind brings the pydantic model of its options,
so an unknown kind, an option it does not take, or a stage it cannot check is an error of the file,
naming the line and the known kinds, before anything runs."""

from typing import Any, ClassVar, Literal, Protocol, Self

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from shipyard.config._schema_base import StrictModel, empty_list, problem_message
from shipyard.plugins import Registry

Stage = Literal["input", "tool_call", "tool_result", "output"]
STAGES: tuple[Stage, ...] = ("input", "tool_call", "tool_result", "output")

DEFAULT_BLOCKED_REPLY = "I'm sorry, I can't help with that request."
DEFAULT_ESCALATED_REPLY = "I've passed your request to a colleague, who will get back to you."


class GuardrailKind(Protocol):
    """What the config needs of a registered guardrail kind (`shipyard.guardrails.Guardrail`)."""

    options: ClassVar[type[BaseModel]]
    stages: ClassVar[tuple[Stage, ...]]


GUARDRAIL_KINDS: Registry[type[GuardrailKind]] = Registry("guardrail kind", builtin="guardrails")
"""Guardrail kinds by the name `kind:` gives; `shipyard.guardrails.guardrail_kind` registers into it."""


def _options_problems(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        where = ".".join(str(x) for x in e["loc"]) or "(options)"
        msg = problem_message(
            e, unknown="unknown option (check the spelling)", missing="required option is missing"
        )
        parts.append(f"{where}: {msg}")
    return "; ".join(parts)


class GuardrailConfig(StrictModel):
    """One configured check: `kind` names a registered guardrail kind, `name` how its verdicts and
    spans are named (default: the kind); every other key is an option of the kind, checked against
    the kind's own options model."""

    model_config = ConfigDict(extra="allow")

    kind: str = Field(..., description="a registered guardrail kind, e.g. tool_policy")
    name: str | None = Field(None, description="the name verdicts and spans carry (default: the kind)")

    _options: BaseModel | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check_kind_and_options(self) -> Self:
        spec = GUARDRAIL_KINDS.get(self.kind)  # an unknown kind: ValueError naming the known ones
        try:
            self._options = spec.options.model_validate(dict(self.model_extra or {}))
        except ValidationError as e:
            raise ValueError(f"guardrail kind {self.kind!r}: {_options_problems(e)}") from None
        return self

    @property
    def label(self) -> str:
        """The name verdicts and spans carry."""
        return self.name or self.kind

    @property
    def options(self) -> Any:
        """The kind's options, validated (an instance of the kind's options model)."""
        assert self._options is not None
        return self._options


class GuardrailsConfig(StrictModel):
    """An agent's checks, in the order they run: `input` before the agent (on the user's message),
    `tool_call` before each tool the agent calls (a block refuses the call: the agent gets a tool
    error it can explain), `tool_result` on what a tool returned (redact, or withhold it), `output`
    after the agent (on its answer and the tool calls it made). At `input` and `output` the first
    check that blocks or escalates answers the request (`blocked_reply` / `escalated_reply` unless
    the check gives its own reply) and the rest of the stage does not run."""

    input: list[GuardrailConfig] = Field(default_factory=empty_list)
    tool_call: list[GuardrailConfig] = Field(default_factory=empty_list)
    tool_result: list[GuardrailConfig] = Field(default_factory=empty_list)
    output: list[GuardrailConfig] = Field(default_factory=empty_list)
    blocked_reply: str = Field(
        DEFAULT_BLOCKED_REPLY, min_length=1, description="what a request a guardrail blocked answers"
    )
    escalated_reply: str = Field(
        DEFAULT_ESCALATED_REPLY,
        min_length=1,
        description="what a request a guardrail escalated to a human answers",
    )

    @model_validator(mode="after")
    def _stages_and_names(self) -> Self:
        problems = []
        seen: set[str] = set()
        for stage in STAGES:
            for i, g in enumerate(getattr(self, stage)):
                stages = GUARDRAIL_KINDS.get(g.kind).stages
                if stage not in stages:
                    problems.append(
                        f"{stage}[{i}]: guardrail kind {g.kind!r} checks only {' and '.join(stages)}: "
                        f"move it under {stages[0]}"
                    )
                if g.label in seen:
                    problems.append(f"{stage}[{i}]: two guardrails are named {g.label!r}: give each a name")
                seen.add(g.label)
        if problems:
            raise ValueError("; ".join(problems))
        return self
