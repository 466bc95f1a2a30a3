"""Guardrails: checks on an agent's input and output, configured per agent in shipyard.yaml
(`agents.<name>.guardrails: {input: [...], output: [...]}`), run by the runtime's pipeline.

A guardrail kind is a `Guardrail` subclass registered with `@guardrail_kind("name")`; each decides
allow / block / redact / escalate (`Verdict`). Built-in kinds: `tool_policy`."""

from shipyard.guardrails._registry import (
    NO_GUARDRAILS,
    AgentGuardrails,
    build_guardrails,
    guardrail_kind,
    guardrail_kinds,
)
from shipyard.guardrails._tool_policy import RequiredCall, ToolPolicy, ToolPolicyOptions
from shipyard.guardrails._types import (
    ALLOW,
    Decision,
    Guardrail,
    GuardrailInput,
    NoOptions,
    ToolCallView,
    Verdict,
    as_mapping,
)

__all__ = [
    "ALLOW",
    "NO_GUARDRAILS",
    "AgentGuardrails",
    "Decision",
    "Guardrail",
    "GuardrailInput",
    "NoOptions",
    "RequiredCall",
    "ToolCallView",
    "ToolPolicy",
    "ToolPolicyOptions",
    "Verdict",
    "as_mapping",
    "build_guardrails",
    "guardrail_kind",
    "guardrail_kinds",
]
