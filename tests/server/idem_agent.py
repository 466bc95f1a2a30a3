"""An agent for the idempotency tests: it charges (a tool whose side effect the test counts), then
waits at a gate the test opens, so a retry can arrive while it runs."""

from __future__ import annotations

import asyncio
import threading

from shipyard import AgentContext, AgentResult, agent
from shipyard.tools import ToolRegistry

tools = ToolRegistry()
CHARGES: list[str] = []  # one entry per charge made
ENTERED = threading.Event()  # set once a run has charged
GATE = threading.Event()  # runs wait here until the test sets it

AGENT_YAML = "  payer:\n    entry: idem_agent:payer\n    model: {name: scripted-small}\n"


@tools.tool()
def charge(order_id: str) -> dict[str, object]:
    """Charge an order (not idempotent: every call charges again)."""
    CHARGES.append(order_id)
    return {"charged": order_id, "charge": len(CHARGES)}


@agent("payer", tools=tools)
async def payer(user_input: str, ctx: AgentContext) -> AgentResult:
    result = await ctx.tools.call("charge", order_id=user_input)
    ENTERED.set()
    await asyncio.to_thread(GATE.wait, 50)  # below the agent's 60 s timeout
    return AgentResult(output=f"charged {user_input}: {result.value}", status="completed")


def reset() -> None:
    CHARGES.clear()
    ENTERED.clear()
    GATE.clear()
