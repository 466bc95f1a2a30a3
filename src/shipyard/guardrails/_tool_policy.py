"""`tool_policy`: a tool may only be used after another tool confirmed it, for the same arguments.

    output:
      - kind: tool_policy
        name: refund_policy
        tools: [process_refund, issue_store_credit]   # a successful call of any of these ...
        requires:                                      # ... must come after a successful call of
          tool: check_return_eligibility               #     this tool
          same_arguments: [order_id]                   #     for the same order_id
          result: {eligible: true}                     #     whose result says eligible: true
        verdict: block                                 # or escalate
        reply: "I've passed your refund request to a colleague, who will confirm it by email."

It reads the tool calls the agent made, so it checks the output stage. The guarded call has already
run when it is judged: what it prevents is the answer that confirms it (the user gets `reply`), and
what it gives is a recorded verdict (a safety incident, which canary analysis and alerts count)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from shipyard.config import StrictModel
from shipyard.guardrails._registry import guardrail_kind
from shipyard.guardrails._types import (
    ALLOW,
    Decision,
    Guardrail,
    GuardrailInput,
    ToolCallView,
    Verdict,
    as_mapping,
)

DEFAULT_REPLY = "I can't complete that request right now; a colleague will follow up with you."


class RequiredCall(StrictModel):
    """The call that must come first."""

    tool: str = Field(..., min_length=1, description="the tool whose successful call must come first")
    same_arguments: list[str] = Field(
        default_factory=list, description="arguments both calls must give the same value"
    )
    result: dict[str, Any] = Field(
        default_factory=dict, description="fields the earlier call's result must have, with these values"
    )


class ToolPolicyOptions(StrictModel):
    """The options of a `tool_policy` guardrail."""

    tools: list[str] = Field(..., min_length=1, description="the guarded tools")
    requires: RequiredCall
    verdict: Literal["block", "escalate"] = Field("block", description="what a guarded call without it gets")
    reply: str = Field(DEFAULT_REPLY, min_length=1, description="what the user gets instead of the answer")

    @model_validator(mode="after")
    def _not_itself(self) -> ToolPolicyOptions:
        if self.requires.tool in self.tools:
            raise ValueError(f"requires.tool {self.requires.tool!r} is also one of the guarded tools")
        return self


@guardrail_kind("tool_policy")
class ToolPolicy(Guardrail):
    """Blocks (or escalates) an answer when a guarded tool succeeded without an earlier successful
    call of the required tool with the same arguments and the required result fields."""

    options = ToolPolicyOptions
    stages = ("output",)

    def __init__(self, name: str, options: ToolPolicyOptions) -> None:
        super().__init__(name, options)
        self.policy = options
        self.guarded = frozenset(options.tools)
        self.verdict = Verdict(options.verdict)

    def check(self, inp: GuardrailInput) -> Decision:
        required = self.policy.requires
        confirmed: list[ToolCallView] = []
        for call in inp.tool_calls:
            if call.status != "success":
                continue
            if call.name == required.tool:
                if self._result_ok(call.result):
                    confirmed.append(call)
            elif call.name in self.guarded and not any(self._same(call, c) for c in confirmed):
                return Decision(self.verdict, reason=self._reason(call), text=self.policy.reply)
        return ALLOW

    def _result_ok(self, result: Any) -> bool:
        wanted = self.policy.requires.result
        if not wanted:
            return True
        found = as_mapping(result)
        return found is not None and all(k in found and found[k] == v for k, v in wanted.items())

    def _same(self, call: ToolCallView, earlier: ToolCallView) -> bool:
        for arg in self.policy.requires.same_arguments:
            if arg not in call.arguments or arg not in earlier.arguments:
                return False  # nothing to compare: not confirmed (fail closed)
            if str(call.arguments[arg]) != str(earlier.arguments[arg]):
                return False
        return True

    def _reason(self, call: ToolCallView) -> str:
        required = self.policy.requires
        args = ", ".join(f"{a}={call.arguments.get(a)!r}" for a in required.same_arguments)
        needed = f"a successful {required.tool}"
        if required.same_arguments:
            needed += f" for the same {', '.join(required.same_arguments)}"
        if required.result:
            needed += " with " + ", ".join(f"{k}={v!r}" for k, v in required.result.items())
        return f"{call.name}({args}) came without {needed} before it"
