"""shipyard.guardrails is a lazy face: importing it (and using `redact_pii`, as `shipyard run` does)
loads none of the injection detector, the leak checks or the tool policy, and the built-in kinds are
all registered by the `guardrails` entry point on the first lookup of a kind (every exported name
resolving: tests/cli/test_startup_imports.py, with the other lazy faces)."""

from __future__ import annotations

import subprocess
import sys

KIND_MODULES = (
    "shipyard.guardrails._injection",
    "shipyard.guardrails._leak",
    "shipyard.guardrails._tool_policy",
)

PROBE = """
import sys
from shipyard.guardrails import AgentGuardrails, Decision, Guardrail, GuardrailInput, Verdict, is_heavy
from shipyard.guardrails import redact_pii
redact_pii("mail jane@example.com")
print("after import", sorted(m for m in {mods} if m in sys.modules))
from shipyard.config import GUARDRAIL_KINDS
print("kinds", GUARDRAIL_KINDS.names())
print("after lookup", sorted(m for m in {mods} if m in sys.modules))
"""


def test_the_runtime_s_names_load_no_kind_and_a_lookup_registers_every_built_in() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(mods=repr(KIND_MODULES))],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "after import []" in done.stdout
    kinds = (
        "['exfiltration', 'pii', 'policy_phrases', 'prompt_injection', 'system_prompt_leak', 'tool_policy']"
    )
    assert f"kinds {kinds}" in done.stdout
    assert f"after lookup {sorted(KIND_MODULES)}" in done.stdout
