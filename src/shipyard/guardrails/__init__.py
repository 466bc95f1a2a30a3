"""Guardrails: checks on an agent's input, tool calls, tool results and output, configured per agent
in shipyard.yaml (`agents.<name>.guardrails: {input: [...], tool_call: [...], tool_result: [...],
output: [...]}`), run by the runtime (its pipeline, and `ctx.tools` around each tool call).

A guardrail kind is a `Guardrail` subclass registered with `@guardrail_kind("name")`; each decides
allow / block / redact / escalate (`Verdict`). Built-in kinds: `tool_policy`, `prompt_injection`,
`pii`, `system_prompt_leak`, `exfiltration`, `policy_phrases`.

The face is lazy (shipyard/_lazy.py): `shipyard run` needs only `redact_pii` and the runtime's types,
not the injection detector's rules and classifier. The built-in kinds are registered by the
`guardrails` entry point (`shipyard.guardrails._plugins`), on the first lookup of a kind."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shipyard.guardrails._injection import InjectionScan, PromptInjection, scan_injection
    from shipyard.guardrails._leak import (
        CANARY_PATTERN,
        Exfiltration,
        PolicyPhrases,
        SystemPromptLeak,
        make_canary,
        plant_canary,
    )
    from shipyard.guardrails._normalize import Normalized, normalize
    from shipyard.guardrails._pii import ENTITY_TYPES, Entity, Pii, StreamRedactor, find_pii, redact_pii
    from shipyard.guardrails._registry import (
        NO_GUARDRAILS,
        AgentGuardrails,
        build_guardrails,
        guardrail_kind,
        guardrail_kinds,
    )
    from shipyard.guardrails._tool_policy import (
        ArgumentLimit,
        Condition,
        RequiredCall,
        ResultBound,
        ToolPolicy,
        ToolPolicyOptions,
    )
    from shipyard.guardrails._types import (
        ALLOW,
        HEAVY_CHARS,
        Decision,
        Guardrail,
        GuardrailInput,
        NoOptions,
        ToolCallView,
        Verdict,
        as_mapping,
        is_heavy,
    )

__all__ = [
    "ALLOW",
    "CANARY_PATTERN",
    "ENTITY_TYPES",
    "HEAVY_CHARS",
    "NO_GUARDRAILS",
    "AgentGuardrails",
    "ArgumentLimit",
    "Condition",
    "Decision",
    "Entity",
    "Exfiltration",
    "Guardrail",
    "GuardrailInput",
    "InjectionScan",
    "NoOptions",
    "Normalized",
    "Pii",
    "PolicyPhrases",
    "PromptInjection",
    "RequiredCall",
    "ResultBound",
    "StreamRedactor",
    "SystemPromptLeak",
    "ToolCallView",
    "ToolPolicy",
    "ToolPolicyOptions",
    "Verdict",
    "as_mapping",
    "build_guardrails",
    "find_pii",
    "guardrail_kind",
    "guardrail_kinds",
    "is_heavy",
    "make_canary",
    "normalize",
    "plant_canary",
    "redact_pii",
    "scan_injection",
]

if not TYPE_CHECKING:  # mypy sees no __getattr__, so a misspelt import is still an error
    from shipyard._lazy import lazy_exports

    __getattr__, __dir__ = lazy_exports(__name__, __file__)
