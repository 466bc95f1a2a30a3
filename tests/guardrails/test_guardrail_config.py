"""Guardrails in shipyard.yaml: validated when the file loads, errors name the line and what is known."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.config import DEFAULT_BLOCKED_REPLY, DEFAULT_ESCALATED_REPLY, GUARDRAIL_KINDS, load_config
from shipyard.errors import ConfigError
from shipyard.guardrails import AgentGuardrails, ToolPolicy, build_guardrails, guardrail_kinds
from shipyard.plugins import loaded_plugins

HEAD = """\
models:
  small: {provider: scripted, rules: rules.yaml}
agents:
  support:
    entry: shop.agent:support
    model: {name: small}
    guardrails:
"""

POLICY = """\
      tool_call:
        - kind: tool_policy
          name: refund_policy
          tools: [process_refund]
          requires: {tool: check_return_eligibility, same_arguments: [order_id], result: {eligible: true}}
          max_calls: 1
"""


def load(tmp_path: Path, guardrails: str) -> AgentGuardrails:
    (tmp_path / "shipyard.yaml").write_text(HEAD + guardrails)
    return build_guardrails(load_config(tmp_path / "shipyard.yaml").agents["support"].guardrails)


def problems(tmp_path: Path, guardrails: str) -> str:
    with pytest.raises(ConfigError) as e:
        load(tmp_path, guardrails)
    assert str(tmp_path / "shipyard.yaml") in str(e.value)
    return "\n".join(e.value.problems)


def test_a_configured_policy_is_built_once_per_agent(tmp_path: Path) -> None:
    built = load(tmp_path, POLICY)
    [g] = built.tool_call
    assert isinstance(g, ToolPolicy) and g.name == "refund_policy" and g.kind == "tool_policy"
    assert built.input == () and built.output == () and built.tool_result == ()
    assert built.blocked_reply == DEFAULT_BLOCKED_REPLY and built.escalated_reply == DEFAULT_ESCALATED_REPLY
    assert g.policy.requires.result == {"eligible": True} and g.policy.verdict == "block"


def test_the_builtin_kind_is_registered_through_the_plugin_entry_points() -> None:
    assert "tool_policy" in guardrail_kinds()
    assert "tool_policy" in GUARDRAIL_KINDS  # what shipyard.yaml is validated against
    assert any(
        p.name == "guardrails" and p.target == "shipyard.guardrails._plugins" for p in loaded_plugins()
    )


def test_an_unknown_kind_names_the_line_and_the_known_kinds(tmp_path: Path) -> None:
    text = problems(tmp_path, "      input:\n        - kind: no_such_check\n")
    assert "line 9: agents.support.guardrails.input.0:" in text
    assert "unknown guardrail kind 'no_such_check'" in text and "tool_policy" in text


def test_an_unknown_or_missing_option_is_named(tmp_path: Path) -> None:
    text = problems(tmp_path, POLICY.replace("          max_calls:", "          max_cals:"))
    assert "line 9: agents.support.guardrails.tool_call.0:" in text and "max_cals: unknown option" in text
    text = problems(
        tmp_path,
        POLICY.replace("          requires: {tool: check_return_eligibility, ", "          requires: {"),
    )
    assert "requires.tool: required option is missing" in text


@pytest.mark.parametrize("stage", ["input", "tool_result", "output"])
def test_a_kind_on_a_stage_it_cannot_check_is_refused(tmp_path: Path, stage: str) -> None:
    text = problems(tmp_path, POLICY.replace("      tool_call:", f"      {stage}:"))
    assert "checks only tool_call" in text and "move it under tool_call" in text


def test_the_blocked_and_escalated_answers_are_configured_per_agent(tmp_path: Path) -> None:
    built = load(
        tmp_path,
        POLICY + "      blocked_reply: Not that, sorry.\n      escalated_reply: A human will call.\n",
    )
    assert built.blocked_reply == "Not that, sorry." and built.escalated_reply == "A human will call."
    assert "blocked_reply" in problems(tmp_path, "      blocked_reply: ''\n")


def test_two_guardrails_with_one_name_are_refused(tmp_path: Path) -> None:
    second = POLICY.split("\n", 1)[1]
    text = problems(tmp_path, POLICY + second)
    assert "two guardrails are named 'refund_policy'" in text


def test_a_policy_requiring_one_of_its_own_tools_is_refused(tmp_path: Path) -> None:
    text = problems(tmp_path, POLICY.replace("tool: check_return_eligibility", "tool: process_refund"))
    assert "also one of the guarded tools" in text
