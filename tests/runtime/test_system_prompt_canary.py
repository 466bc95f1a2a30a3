"""The system prompt carries a canary token (stable per version) exactly when the agent has a
`system_prompt_leak` output guardrail; the output checks' module loads only for an agent with output
guardrails (runtime/_runtime.py `system_prompt`)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from shipyard.config import ShipyardConfig
from shipyard.guardrails import CANARY_PATTERN, make_canary
from shipyard.runtime import Runtime

Project = Callable[..., ShipyardConfig]

LEAK = "      output:\n        - kind: system_prompt_leak\n"
EXFILTRATION = "      output:\n        - kind: exfiltration\n"
INPUT_ONLY = "      input:\n        - kind: pii\n"


def test_a_system_prompt_leak_guardrail_plants_the_versions_canary(project: Project) -> None:
    rt = Runtime(project(guardrails=LEAK))
    v = rt.resolve_version("shop")
    prompt = rt.system_prompt(v)
    assert prompt.startswith("You help Acme customers.\nNever share")
    assert CANARY_PATTERN.findall(prompt) == [make_canary(v.hash)]
    assert rt.system_prompt(v) == prompt  # rendered once per version


@pytest.mark.parametrize("guardrails", ["", EXFILTRATION, INPUT_ONLY])
def test_without_one_the_prompt_is_the_bundles_as_rendered(project: Project, guardrails: str) -> None:
    rt = Runtime(project(guardrails=guardrails))
    v = rt.resolve_version("shop")
    assert v.bundle is not None
    prompt = rt.system_prompt(v)
    assert prompt == v.bundle.render(v.prompt_variables)
    assert not CANARY_PATTERN.search(prompt)
