"""The `tool_policy` guardrail kind, judged on its own: preconditions, argument limits (numbers, or
bounds from an earlier tool result), call counts and who may call a tool (request metadata, flags)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from shipyard.guardrails import GuardrailInput, ToolPolicy, ToolPolicyOptions, Verdict
from shipyard.store import ToolCallRecord

REFUND_POLICY: dict[str, Any] = {
    "tools": ["process_refund", "issue_store_credit"],
    "requires": {
        "tool": "check_return_eligibility",
        "same_arguments": ["order_id"],
        "result": {"eligible": True},
    },
}


def policy(**changes: Any) -> ToolPolicy:
    options = {**REFUND_POLICY, **changes}
    return ToolPolicy(
        "refund_policy", ToolPolicyOptions.model_validate({k: v for k, v in options.items() if v})
    )


def call(name: str, status: str = "success", result: Any = None, **arguments: Any) -> ToolCallRecord:
    return ToolCallRecord(name=name, arguments=arguments, status=status, duration_ms=1.0, result=result)


def judge(
    g: ToolPolicy,
    tool: str,
    arguments: dict[str, Any],
    *earlier: ToolCallRecord,
    metadata: dict[str, Any] | None = None,
    flags: tuple[str, ...] = (),
) -> Any:
    return g.check(
        GuardrailInput(
            agent="support",
            stage="tool_call",
            text="{}",
            user_input="hi",
            tool_calls=earlier,
            tool=tool,
            arguments=arguments,
            metadata=metadata or {},
            flag=lambda name: name in flags,
        )
    )


ELIGIBLE = call(
    "check_return_eligibility",
    result={"order_id": "10002", "eligible": True, "refundable_amount": 89.0},
    order_id="10002",
)


def test_a_confirmed_refund_passes_and_other_tools_are_not_judged() -> None:
    g = policy()
    assert (
        judge(g, "process_refund", {"order_id": "10002", "amount": 89.0}, ELIGIBLE).verdict is Verdict.ALLOW
    )
    assert judge(g, "lookup_order", {"order_id": "1"}).verdict is Verdict.ALLOW
    assert not g.checks_tool("lookup_order") and g.checks_tool("issue_store_credit")
    assert g.tool_names() == {"process_refund", "issue_store_credit", "check_return_eligibility"}


@pytest.mark.parametrize(
    ("arguments", "earlier"),
    [
        pytest.param({"order_id": "10003"}, [], id="no check at all"),
        pytest.param(
            {"order_id": "10003"},
            [call("check_return_eligibility", result={"eligible": False}, order_id="10003")],
            id="the check said no",
        ),
        pytest.param({"order_id": "10003"}, [ELIGIBLE], id="another order was checked"),
        pytest.param(
            {"order_id": "10003"},
            [call("check_return_eligibility", status="error", order_id="10003")],
            id="the check failed",
        ),
        pytest.param({"amount": 5}, [ELIGIBLE], id="the refund names no order"),
        pytest.param(
            {"order_id": "10003"},
            [call("check_return_eligibility", result="not json", order_id="10003")],
            id="the check's result is not a mapping",
        ),
    ],
)
def test_an_unconfirmed_refund_is_refused_before_it_runs(
    arguments: dict[str, Any], earlier: list[ToolCallRecord]
) -> None:
    d = judge(policy(), "process_refund", arguments, *earlier)
    assert d.verdict is Verdict.BLOCK and d.score == 1.0
    assert d.text is None  # at the tool_call stage the agent is told the reason
    assert "check_return_eligibility" in d.reason and "order_id" in d.reason


def test_results_as_json_text_and_arguments_of_other_types_compare_by_value() -> None:
    earlier = call("check_return_eligibility", result='{"eligible": true}', order_id=10003)
    assert judge(policy(), "process_refund", {"order_id": "10003"}, earlier).verdict is Verdict.ALLOW


def test_the_verdict_may_be_escalate_and_the_reason_names_the_call() -> None:
    d = judge(policy(verdict="escalate"), "issue_store_credit", {"order_id": "7"})
    assert d.verdict is Verdict.ESCALATE
    assert d.reason.startswith("issue_store_credit(order_id='7') needs a successful check_return_eligibility")


AMOUNT_LIMIT = {
    "amount": {
        "min": 0,
        "max": {
            "tool": "check_return_eligibility",
            "field": "refundable_amount",
            "same_arguments": ["order_id"],
        },
    }
}


@pytest.mark.parametrize(
    ("amount", "verdict", "said"),
    [
        (89.0, Verdict.ALLOW, None),
        ("40.50", Verdict.ALLOW, None),  # numeric text, as models often send
        (89.01, Verdict.BLOCK, "above the maximum 89 (check_return_eligibility.refundable_amount)"),
        (-1, Verdict.BLOCK, "below the minimum 0"),
        ("all of it", Verdict.BLOCK, "must be a number"),
        (True, Verdict.BLOCK, "must be a number"),
        (None, Verdict.BLOCK, "must be a number"),
    ],
)
def test_an_amount_is_bounded_by_an_earlier_result(amount: Any, verdict: Verdict, said: str | None) -> None:
    args = {"order_id": "10002"} | ({"amount": amount} if amount is not None else {})
    d = judge(policy(limits=AMOUNT_LIMIT), "process_refund", args, ELIGIBLE)
    assert d.verdict is verdict
    if said is not None:
        assert said in d.reason


def test_a_bound_that_cannot_be_known_refuses_the_call() -> None:
    g = policy(requires=None, limits=AMOUNT_LIMIT)
    d = judge(g, "process_refund", {"order_id": "10002", "amount": 1})
    assert d.verdict is Verdict.BLOCK and "needs a successful check_return_eligibility" in d.reason
    other = call("check_return_eligibility", result={"refundable_amount": 500}, order_id="99999")
    assert judge(g, "process_refund", {"order_id": "10002", "amount": 1}, other).verdict is Verdict.BLOCK
    no_number = call("check_return_eligibility", result={"refundable_amount": "n/a"}, order_id="10002")
    d = judge(g, "process_refund", {"order_id": "10002", "amount": 1}, no_number)
    assert d.verdict is Verdict.BLOCK and "no number in 'refundable_amount'" in d.reason


def test_a_nested_field_and_the_latest_matching_call_give_the_bound() -> None:
    g = policy(
        requires=None,
        limits={"amount": {"max": {"tool": "lookup_order", "field": "totals.paid"}}},
    )
    older = call("lookup_order", result={"totals": {"paid": 10}})
    newer = call("lookup_order", result={"totals": {"paid": 30}})
    assert judge(g, "process_refund", {"amount": 25}, older, newer).verdict is Verdict.ALLOW
    assert judge(g, "process_refund", {"amount": 25}, newer, older).verdict is Verdict.BLOCK


def test_max_calls_counts_calls_that_ran_in_this_interaction() -> None:
    g = policy(requires=None, max_calls=1)
    assert judge(g, "process_refund", {"order_id": "1"}).verdict is Verdict.ALLOW
    ran = call("process_refund", order_id="1")
    d = judge(g, "process_refund", {"order_id": "2"}, ran)
    assert d.verdict is Verdict.BLOCK and "at most 1 time(s)" in d.reason
    refused = call("process_refund", status="blocked", order_id="1")
    assert judge(g, "process_refund", {"order_id": "2"}, refused).verdict is Verdict.ALLOW
    other_tool = call("issue_store_credit", order_id="1")
    assert judge(g, "process_refund", {"order_id": "2"}, other_tool).verdict is Verdict.ALLOW


def test_tiers_from_request_metadata_allow_and_flags_deny() -> None:
    g = policy(
        requires=None,
        allow_when=[{"metadata": "user_tier", "in": ["gold", "platinum"]}],
        deny_when=[{"flag": "refunds_paused"}],
    )
    args = {"order_id": "1"}
    assert judge(g, "process_refund", args, metadata={"user_tier": "gold"}).verdict is Verdict.ALLOW
    d = judge(g, "process_refund", args, metadata={"user_tier": "free"})
    assert (
        d.verdict is Verdict.BLOCK
        and "allowed only when metadata 'user_tier' is one of gold, platinum" in d.reason
    )
    assert judge(g, "process_refund", args).verdict is Verdict.BLOCK  # no tier: not allowed (closed)
    d = judge(g, "process_refund", args, metadata={"user_tier": "gold"}, flags=("refunds_paused",))
    assert d.verdict is Verdict.BLOCK and "not allowed while flag 'refunds_paused' is on" in d.reason


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ({"tools": ["a"]}, "needs a rule"),
        ({"tools": ["a"], "requires": {"tool": "a"}}, "also one of the guarded tools"),
        ({"tools": ["a"], "limits": {"x": {}}}, "needs min, max or both"),
        ({"tools": ["a"], "allow_when": [{"metadata": "tier"}]}, "needs `in: [values]`"),
        ({"tools": ["a"], "allow_when": [{"flag": "f", "metadata": "tier", "in": [1]}]}, "exactly one of"),
        ({"tools": ["a"], "deny_when": [{"flag": "f", "in": [1]}]}, "goes with metadata"),
        ({"tools": ["a"], "max_calls": 0}, "greater than or equal to 1"),
    ],
)
def test_a_policy_that_cannot_mean_anything_is_refused(options: dict[str, Any], said: str) -> None:
    with pytest.raises(ValidationError) as e:
        ToolPolicyOptions.model_validate(options)
    assert said in str(e.value)
