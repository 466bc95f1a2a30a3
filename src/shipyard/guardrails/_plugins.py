"""Shipyard's built-in guardrail kinds: `tool_policy`, `prompt_injection`, `pii`,
`system_prompt_leak`, `exfiltration`, `policy_phrases`.

This module is the `guardrails` entry point of the `shipyard.plugins` group (see pyproject.toml):
loading it registers them (each module's `@guardrail_kind` classes), exactly as a third-party
package registers its own."""

from __future__ import annotations

from shipyard.plugins import import_builtins

import_builtins(
    "shipyard.guardrails._injection",
    "shipyard.guardrails._leak",
    "shipyard.guardrails._pii",
    "shipyard.guardrails._tool_policy",
)
