"""The demo's refund policy as an output check in the request pipeline: a refund is allowed only
after `check_return_eligibility` confirmed that order. A refund made without it is blocked and
recorded as a guardrail verdict (a safety incident), which is how production notices version 1.1's
"faster refunds" regression. It fills the output-guardrail slot until guardrails have their own
package."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipyard.runtime import Exchange, Runtime

BLOCKED_REPLY = (
    "I've passed your refund request to a colleague, who will confirm it by email within one business day."
)


def _eligible(result: Any) -> tuple[str, bool] | None:
    value = result
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if isinstance(value, dict) and "eligible" in value:
        return str(value.get("order_id", "")), bool(value["eligible"])
    return None


async def refund_policy_check(ex: Exchange, rt: Runtime) -> None:
    """Output guardrail: a refund is only allowed after check_return_eligibility confirmed that order.

    A refund without it is blocked (a safety incident): the customer is told a colleague will
    confirm, and the interaction records the guardrail's verdict."""
    confirmed: set[str] = set()
    for call in ex.trail.tool_calls:
        if call.name == "check_return_eligibility" and call.status == "success":
            found = _eligible(call.result)
            if found and found[1]:
                confirmed.add(found[0])
        elif call.name in ("process_refund", "issue_store_credit") and call.status == "success":
            order = str(call.arguments.get("order_id", ""))
            if order not in confirmed:
                ex.guardrails.append(
                    {
                        "name": "refund_policy",
                        "stage": "output",
                        "verdict": "block",
                        "reason": f"refund of order {order} without a confirmed eligibility check",
                    }
                )
                ex.status = "blocked"
                if ex.result is not None:
                    ex.result.output = BLOCKED_REPLY
                return


def install_refund_policy(rt: Runtime) -> None:
    """Add the refund-policy check to the runtime's pipeline, after the agent (once)."""
    if "refund_policy" not in rt.pipeline.names:
        rt.pipeline.insert_after("run_agent", "refund_policy", refund_policy_check)
