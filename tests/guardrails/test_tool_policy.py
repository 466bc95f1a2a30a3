"""The `tool_policy` guardrail kind: a guarded tool only after a confirming call of another tool."""

from __future__ import annotations

from typing import Any

import pytest

from shipyard.guardrails import GuardrailInput, ToolPolicy, ToolPolicyOptions, Verdict
from shipyard.store import ToolCallRecord

REFUND_POLICY: dict[str, Any] = {
    "tools": ["process_refund", "issue_store_credit"],
    "requires": {
        "tool": "check_return_eligibility",
        "same_arguments": ["order_id"],
        "result": {"eligible": True},
    },
    "reply": "A colleague will confirm your refund.",
}


def policy(**changes: Any) -> ToolPolicy:
    return ToolPolicy("refund_policy", ToolPolicyOptions.model_validate({**REFUND_POLICY, **changes}))


def call(name: str, status: str = "success", result: Any = None, **arguments: Any) -> ToolCallRecord:
    return ToolCallRecord(name=name, arguments=arguments, status=status, duration_ms=1.0, result=result)


def judge(g: ToolPolicy, *calls: ToolCallRecord) -> Any:
    return g.check(
        GuardrailInput(agent="support", stage="output", text="Refunded!", user_input="hi", tool_calls=calls)
    )


def test_a_confirmed_refund_passes() -> None:
    d = judge(
        policy(),
        call("lookup_order", order_id="10002"),
        call("check_return_eligibility", result={"order_id": "10002", "eligible": True}, order_id="10002"),
        call("process_refund", order_id="10002", amount=89.0),
    )
    assert d.verdict is Verdict.ALLOW and d.text is None


@pytest.mark.parametrize(
    "calls",
    [
        pytest.param([call("process_refund", order_id="10003")], id="no check at all"),
        pytest.param(
            [
                call("check_return_eligibility", result={"eligible": False}, order_id="10003"),
                call("process_refund", order_id="10003"),
            ],
            id="the check said no",
        ),
        pytest.param(
            [
                call("check_return_eligibility", result={"eligible": True}, order_id="10002"),
                call("issue_store_credit", order_id="10003"),
            ],
            id="another order was checked",
        ),
        pytest.param(
            [
                call("check_return_eligibility", status="error", order_id="10003"),
                call("process_refund", order_id="10003"),
            ],
            id="the check failed",
        ),
        pytest.param(
            [
                call("process_refund", order_id="10003"),
                call("check_return_eligibility", result={"eligible": True}, order_id="10003"),
            ],
            id="checked only afterwards",
        ),
        pytest.param(
            [
                call("check_return_eligibility", result={"eligible": True}, order_id="10003"),
                call("process_refund", amount=5),
            ],
            id="the refund names no order",
        ),
        pytest.param(
            [
                call("check_return_eligibility", result="not json", order_id="10003"),
                call("process_refund", order_id="10003"),
            ],
            id="the check's result is not a mapping",
        ),
    ],
)
def test_an_unconfirmed_refund_is_blocked_with_the_reply(calls: list[ToolCallRecord]) -> None:
    d = judge(policy(), *calls)
    assert d.verdict is Verdict.BLOCK
    assert d.text == "A colleague will confirm your refund."
    assert "check_return_eligibility" in d.reason and "order_id" in d.reason


def test_results_as_json_text_and_arguments_of_other_types_compare_by_value() -> None:
    d = judge(
        policy(),
        call("check_return_eligibility", result='{"eligible": true}', order_id=10003),
        call("process_refund", order_id="10003"),
    )
    assert d.verdict is Verdict.ALLOW


def test_a_failed_guarded_call_did_nothing_and_is_not_judged() -> None:
    assert judge(policy(), call("process_refund", status="error", order_id="10003")).verdict is Verdict.ALLOW


def test_the_verdict_may_be_escalate_and_the_reason_names_the_call() -> None:
    d = judge(policy(verdict="escalate"), call("issue_store_credit", order_id="7"))
    assert d.verdict is Verdict.ESCALATE
    assert d.reason.startswith("issue_store_credit(order_id='7')")


def test_without_required_fields_or_arguments_any_earlier_success_confirms() -> None:
    g = policy(requires={"tool": "ask_manager"})
    assert judge(g, call("ask_manager"), call("process_refund", order_id="1")).verdict is Verdict.ALLOW
    assert judge(g, call("process_refund", order_id="1")).verdict is Verdict.BLOCK
