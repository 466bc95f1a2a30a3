"""`tool_policy`: declarative rules a tool call must meet before the tool runs (`tool_call` stage).

    tool_call:
      - kind: tool_policy
        name: refund_policy
        tools: [process_refund, issue_store_credit]   # the guarded tools
        requires:                                      # a successful call of this tool first ...
          tool: check_return_eligibility
          same_arguments: [order_id]                   # ... for the same order_id
          result: {eligible: true}                     # ... whose result says eligible: true
        limits:                                        # argument bounds: a number, or a field of an
          amount:                                      # earlier tool result (same arguments)
            min: 0
            max: {tool: check_return_eligibility, field: refundable_amount, same_arguments: [order_id]}
        max_calls: 1                                   # each guarded tool at most once per interaction
        allow_when: [{metadata: user_tier, in: [gold, platinum]}]   # only for these users ...
        deny_when: [{flag: refunds_paused}]                         # ... and never while this flag is on
        verdict: block                                 # or escalate (also hands the request to a human)

Every rule is optional but one must be given. A call that breaks one is refused before it runs: the
agent gets a tool error saying why (so it can explain), and the verdict is recorded (a safety
incident, which metrics, KPIs, alerts and canary analysis count). What cannot be checked fails
closed: a bound whose earlier call is missing, an argument that is not a number, a missing metadata
key. The tools a policy names must be tools of the agent (checked when its versions load)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
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


class RequiredCall(StrictModel):
    """The call that must come first."""

    tool: str = Field(..., min_length=1, description="the tool whose successful call must come first")
    same_arguments: list[str] = Field(
        default_factory=list, description="arguments both calls must give the same value"
    )
    result: dict[str, Any] = Field(
        default_factory=dict, description="fields the earlier call's result must have, with these values"
    )


class ResultBound(StrictModel):
    """A bound taken from the result of the latest successful earlier call of `tool`."""

    tool: str = Field(..., min_length=1, description="the tool whose result holds the bound")
    field: str = Field(..., min_length=1, description="the result's field (a.b for nested fields)")
    same_arguments: list[str] = Field(
        default_factory=list, description="arguments that call must share with the guarded call"
    )


Bound = float | ResultBound


class ArgumentLimit(StrictModel):
    """Bounds of one numeric argument (inclusive)."""

    min: Bound | None = None
    max: Bound | None = None

    @model_validator(mode="after")
    def _some_bound(self) -> ArgumentLimit:
        if self.min is None and self.max is None:
            raise ValueError("an argument limit needs min, max or both")
        return self


class Condition(StrictModel):
    """A fact about the request: `{metadata: KEY, in: [values]}` (the request metadata's KEY is one of
    the values) or `{flag: NAME}` (the feature flag is on for the request's user)."""

    metadata: str | None = Field(None, min_length=1, description="a key of the request's metadata")
    values: list[Any] | None = Field(None, alias="in", description="the values that make it hold")
    flag: str | None = Field(None, min_length=1, description="a feature flag that must be on")

    @model_validator(mode="after")
    def _one_kind(self) -> Condition:
        if (self.metadata is None) == (self.flag is None):
            raise ValueError("a condition names exactly one of metadata (with in) or flag")
        if self.metadata is not None and not self.values:
            raise ValueError(f"the condition on metadata {self.metadata!r} needs `in: [values]`")
        if self.flag is not None and self.values is not None:
            raise ValueError("`in` goes with metadata, not with flag")
        return self

    def holds(self, inp: GuardrailInput) -> bool:
        if self.flag is not None:
            return inp.flag(self.flag)
        assert self.metadata is not None and self.values is not None
        if self.metadata not in inp.metadata:
            return False
        value = inp.metadata[self.metadata]
        return any(str(value) == str(v) for v in self.values)

    def __str__(self) -> str:
        if self.flag is not None:
            return f"flag {self.flag!r} is on"
        return f"metadata {self.metadata!r} is one of {', '.join(map(str, self.values or []))}"


class ToolPolicyOptions(StrictModel):
    """The options of a `tool_policy` guardrail."""

    tools: list[str] = Field(..., min_length=1, description="the guarded tools")
    requires: RequiredCall | None = Field(None, description="a call that must come first")
    limits: dict[str, ArgumentLimit] = Field(default_factory=dict, description="bounds of arguments")
    max_calls: int | None = Field(None, ge=1, description="most calls of each guarded tool per interaction")
    allow_when: list[Condition] = Field(
        default_factory=list, description="the guarded tools may run only when all of these hold"
    )
    deny_when: list[Condition] = Field(
        default_factory=list, description="the guarded tools may not run when any of these holds"
    )
    verdict: Literal["block", "escalate"] = Field("block", description="what a call breaking a rule gets")

    @model_validator(mode="after")
    def _sensible(self) -> ToolPolicyOptions:
        if (
            self.requires is None
            and not self.limits
            and self.max_calls is None
            and not self.allow_when
            and not self.deny_when
        ):
            raise ValueError(
                "a tool policy needs a rule: requires, limits, max_calls, allow_when or deny_when"
            )
        if self.requires is not None and self.requires.tool in self.tools:
            raise ValueError(f"requires.tool {self.requires.tool!r} is also one of the guarded tools")
        return self


def _field(value: Any, path: str) -> Any:
    """`path` (a.b.c) of a tool result; None when it is not there."""
    found: Any = as_mapping(value)
    for part in path.split("."):
        found = as_mapping(found)
        if found is None or part not in found:
            return None
        found = found[part]
    return found


def _number(value: Any) -> float | None:
    """A finite number from a number or numeric text (booleans are not numbers)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _same(arguments: Mapping[str, Any], earlier: ToolCallView, names: Sequence[str]) -> bool:
    for arg in names:
        if arg not in arguments or arg not in earlier.arguments:
            return False  # nothing to compare: not the same call (fail closed)
        if str(arguments[arg]) != str(earlier.arguments[arg]):
            return False
    return True


def _for_same(names: Sequence[str]) -> str:
    return f" for the same {', '.join(names)}" if names else ""


@guardrail_kind("tool_policy")
class ToolPolicy(Guardrail):
    """Refuses (or escalates) a call of a guarded tool that breaks one of its rules, before it runs."""

    options = ToolPolicyOptions
    stages = ("tool_call",)

    def __init__(self, name: str, options: ToolPolicyOptions) -> None:
        super().__init__(name, options)
        self.policy = options
        self.guarded = frozenset(options.tools)
        self.verdict = Verdict(options.verdict)

    def checks_tool(self, tool: str) -> bool:
        return tool in self.guarded

    def tool_names(self) -> frozenset[str]:
        p = self.policy
        named = set(p.tools)
        if p.requires is not None:
            named.add(p.requires.tool)
        for limit in p.limits.values():
            named.update(b.tool for b in (limit.min, limit.max) if isinstance(b, ResultBound))
        return frozenset(named)

    def check(self, inp: GuardrailInput) -> Decision:
        if inp.tool not in self.guarded:
            return ALLOW
        problem = self.problem(inp.tool, inp.arguments, inp.tool_calls, inp)
        if problem is None:
            return ALLOW
        return Decision(self.verdict, reason=problem, score=1.0)

    def problem(
        self, tool: str, arguments: Mapping[str, Any], earlier: Sequence[ToolCallView], inp: GuardrailInput
    ) -> str | None:
        """What the call breaks, in words; None when it meets every rule."""
        p = self.policy
        for c in p.deny_when:
            if c.holds(inp):
                return f"{tool} is not allowed while {c}"
        for c in p.allow_when:
            if not c.holds(inp):
                return f"{tool} is allowed only when {c}"
        if p.max_calls is not None:
            ran = sum(1 for c in earlier if c.name == tool and c.status in ("success", "error"))
            if ran >= p.max_calls:
                return f"{tool} may be called at most {p.max_calls} time(s) per interaction"
        if p.requires is not None and not self._confirmed(arguments, earlier):
            return self._unconfirmed(tool, arguments)
        for arg, limit in p.limits.items():
            found = self._limit_problem(tool, arg, arguments, limit, earlier)
            if found is not None:
                return found
        return None

    def _confirmed(self, arguments: Mapping[str, Any], earlier: Sequence[ToolCallView]) -> bool:
        required = self.policy.requires
        assert required is not None
        return any(
            c.name == required.tool
            and c.status == "success"
            and self._result_ok(c.result)
            and _same(arguments, c, required.same_arguments)
            for c in earlier
        )

    def _result_ok(self, result: Any) -> bool:
        assert self.policy.requires is not None
        wanted = self.policy.requires.result
        if not wanted:
            return True
        found = as_mapping(result)
        return found is not None and all(k in found and found[k] == v for k, v in wanted.items())

    def _unconfirmed(self, tool: str, arguments: Mapping[str, Any]) -> str:
        required = self.policy.requires
        assert required is not None
        args = ", ".join(f"{a}={arguments.get(a)!r}" for a in required.same_arguments)
        needed = f"a successful {required.tool}{_for_same(required.same_arguments)}"
        if required.result:
            needed += " that returned " + ", ".join(f"{k}: {v!r}" for k, v in required.result.items())
        return f"{tool}({args}) needs {needed} earlier in this interaction"

    def _limit_problem(
        self,
        tool: str,
        arg: str,
        arguments: Mapping[str, Any],
        limit: ArgumentLimit,
        earlier: Sequence[ToolCallView],
    ) -> str | None:
        value = _number(arguments.get(arg))
        if value is None:
            return f"{tool} argument {arg!r} must be a number (it has a limit), got {arguments.get(arg)!r}"
        for side, bound in (("min", limit.min), ("max", limit.max)):
            if bound is None:
                continue
            resolved = self._resolve(bound, arguments, earlier)
            if isinstance(resolved, str):
                return f"{tool} argument {arg!r}: {resolved}"
            if (side == "min" and value < resolved) or (side == "max" and value > resolved):
                word = "below the minimum" if side == "min" else "above the maximum"
                source = "" if isinstance(bound, float | int) else f" ({bound.tool}.{bound.field})"
                return f"{tool} argument {arg!r} = {value:g} is {word} {resolved:g}{source}"
        return None

    def _resolve(
        self, bound: Bound, arguments: Mapping[str, Any], earlier: Sequence[ToolCallView]
    ) -> float | str:
        """The bound as a number, or why it cannot be known (which refuses the call)."""
        if not isinstance(bound, ResultBound):
            return float(bound)
        for c in reversed(earlier):
            if c.name == bound.tool and c.status == "success" and _same(arguments, c, bound.same_arguments):
                number = _number(_field(c.result, bound.field))
                if number is None:
                    return f"the {bound.tool} result has no number in {bound.field!r}"
                return number
        return f"its bound needs a successful {bound.tool}{_for_same(bound.same_arguments)} earlier"
