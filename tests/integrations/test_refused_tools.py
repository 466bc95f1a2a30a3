"""A tool call a framework runs and a `tool_policy` guardrail refuses is told to the model as the tool's
result (an error saying why), and the run goes on: the interaction completes, the call is recorded
`blocked` with the guardrail's verdict. The `langgraph`, `adk` and `openai-agents` starter templates
(written by the real `shipyard init`), run for real against the mock LLM server over loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from framework_helpers import (
    BLIND_REFUND,
    REFUND_POLICY,
    Project,
    add_to_agent,
    forget,
    init_template,
    tool_calls,
)

from shipyard.runtime import Runtime

REASON = "needs a successful lookup_order"
"""What the tool_policy says when the refund was not looked up first."""

# rules put first in a starter's mock model: refund without a lookup when told "right away", and say
# what a refused refund's result said
REFUSED_REFUND = (
    """\
  - name: refund-refused-by-policy
    when: {last_tool: issue_refund, tool_result: 'refused'}
    reply: "Sorry, no refund: {result}"
"""
    + BLIND_REFUND
)
# the SDK starter's Support agent looks the order up, then hands off to Refunds, when told "check and
# refund" (its own rules hand refunds off without a lookup)
CHECKED_REFUND = """\
  - name: checked-refund-handoff
    when: {last_tool: lookup_order, user: '(?i)check and refund', tools_available: [transfer_to_refunds]}
    tool_calls: [{name: transfer_to_refunds, arguments: {}}]
  - name: checked-refund-lookup
    when: {user: '(?i)check and refund\\D*(?P<id>\\d{5})', tools_available: [lookup_order], fresh: true}
    tool_calls: [{name: lookup_order, arguments: {order_id: "{id}"}}]
"""


def _starter(root: Path, template: str, rules: str, refund: str) -> Project:
    """The starter project, its mock model answering `rules` before the template's own, and the
    refund policy on its `refund` tool."""
    project = init_template(root, template, rules)
    add_to_agent(project, REFUND_POLICY.format(refund=refund, result=""))
    return project


def _tool_answers(project: Project, tool: str) -> list[str]:
    """The content of every tool message the model was sent for `tool`'s calls (by call id)."""
    requests = project.requests
    ids = {
        call["id"]
        for req in requests
        for m in req["messages"]
        for call in m.get("tool_calls") or ()
        if call["function"]["name"] == tool
    }
    return list(
        dict.fromkeys(
            str(m["content"])
            for req in requests
            for m in req["messages"]
            if m["role"] == "tool" and m.get("tool_call_id") in ids
        )
    )


@pytest.fixture(params=["langgraph", "adk"])
def support_desk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Project]:
    """The `langgraph` or `adk` starter (lookup_order, issue_refund), with the blind-refund rules."""
    project = _starter(tmp_path / "support", request.param, REFUSED_REFUND, "issue_refund")
    yield project
    forget(project)


async def test_a_refused_refund_is_told_to_the_model_and_the_run_completes(support_desk: Project) -> None:
    rt = Runtime(support_desk.cfg)
    try:
        rec = await rt.invoke("support", "Refund it right away: 10002")
        assert rec.status == "completed", rec.error
        assert tool_calls(rec) == [("issue_refund", {"order_id": "10002", "reason": "asked"}, "blocked")]
        assert REASON in (rec.tool_calls[0].error or "")
        assert [(g["name"], g["verdict"]) for g in rec.guardrails] == [("refund_policy", "block")]
        # the model's next request carried the refusal as the tool's result, and it answered with it
        told = _tool_answers(support_desk, "issue_refund")
        assert len(told) == 1 and "refund_policy" in told[0] and REASON in told[0]
        assert rec.output.startswith("Sorry, no refund: ") and REASON in rec.output
        assert "refunded" not in rec.output

        # looked up first, the refund runs
        rec = await rt.invoke("support", "Please refund order 10002, it arrived broken.")
        assert rec.status == "completed", rec.error
        assert [(n, s) for n, _, s in tool_calls(rec)] == [
            ("lookup_order", "success"),
            ("issue_refund", "success"),
        ]
        assert rec.guardrails == [] and rec.output == "Done: order 10002 is refunded."
    finally:
        await rt.aclose()


async def test_the_sdk_model_sees_why_its_refund_was_refused(tmp_path: Path) -> None:
    project = _starter(tmp_path / "support", "openai-agents", CHECKED_REFUND, "refund_order")
    try:
        rt = Runtime(project.cfg)
        try:
            rec = await rt.invoke("support", "Please refund order 10002")  # Refunds refunds blind
            assert rec.status == "completed", rec.error
            assert tool_calls(rec) == [("refund_order", {"order_id": "10002"}, "blocked")]
            assert [(g["name"], g["verdict"]) for g in rec.guardrails] == [("refund_policy", "block")]
            # the reason, not the SDK's generic "An error occurred while running the tool"
            told = _tool_answers(project, "refund_order")
            assert len(told) == 1 and told[0].startswith("Error: ") and REASON in told[0]
            assert "An error occurred" not in told[0]
            assert rec.output == f"Done. {told[0]}" and "Refunded" not in rec.output

            rec = await rt.invoke("support", "Please check and refund order 10002")
            assert rec.status == "completed", rec.error
            assert tool_calls(rec) == [
                ("lookup_order", {"order_id": "10002"}, "success"),
                ("refund_order", {"order_id": "10002"}, "success"),
            ]
            assert rec.guardrails == [] and rec.output == "Done. Refunded $18.00 on order 10002."
        finally:
            await rt.aclose()
    finally:
        forget(project)
