"""A project for the ledger tests: an order-desk agent on a mock LLM server over HTTP (which reports
a repeated system prompt as cached input tokens), a feature the agent tags (`refunds`, when the
input mentions a refund) and one a flag attaches (`new_refund_flow`, on for users named `beta-*`).

`write_project(folder, llm_url)` writes shipyard.yaml, rules, flags.json and the agent module
(`ledger_agent_<n>.py`, on `sys.path` until `forget(module)`)."""

from __future__ import annotations

import itertools
import json
import sys
import textwrap
from pathlib import Path

_n = itertools.count()

RULES = {
    "prompt_cache": True,
    "default": "I can help with orders and refunds.",
    "rules": [
        {
            "name": "answer",
            "when": {"last_tool": "lookup"},
            "reply": "Order {result[order_id]} is {result[status]}.",
        },
        {
            "name": "lookup",
            "when": {"user": "order (?P<id>\\d+)", "fresh": True},
            "tool_calls": [{"name": "lookup", "arguments": {"order_id": "{id}"}}],
        },
    ],
}
"""The model's part: an order number asks for `lookup` (two model calls), anything else one call."""

AGENT = '''\
from shipyard import AgentContext, AgentResult, agent
from shipyard.tools import ToolRegistry

tools = ToolRegistry()

@tools.tool()
def lookup(order_id: str) -> dict:
    """Find an order."""
    return {"order_id": order_id, "status": "shipped"}

@agent("desk", tools=tools)
async def desk(user_input: str, ctx: AgentContext) -> AgentResult:
    if "refund" in user_input:
        ctx.tag_feature("refunds")
        ctx.tag_feature("refunds")  # twice is once
    ctx.flags.enabled("new_refund_flow")
    messages = [{"role": "system", "content": "You are the order desk of Acme. " * 20},
                {"role": "user", "content": user_input}]
    for _ in range(4):
        reply = await ctx.llm.chat(messages, tools=ctx.tools.definitions())
        if not reply.tool_calls:
            return AgentResult(output=reply.text or "")
        messages.append(reply.to_message())
        for call in reply.tool_calls:
            res = await ctx.tools.run(call)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": res.content()})
    return AgentResult(output="gave up", status="failed")
'''

FLAGS = {
    "flags": {
        "new_refund_flow": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
            "targeting": {"if": [{"starts_with": [{"var": "user_id"}, "beta-"]}, "on", None]},
            "metadata": {"feature": "new_refund_flow"},
        }
    }
}

PRICES = {"input": 1.0, "cached_input": 0.1, "output": 2.0}
"""USD per million tokens of the project's model."""


def write_project(folder: Path, llm_url: str) -> str:
    """Write the project into `folder`; returns the agent module's name (imported from `folder`)."""
    module = f"ledger_agent_{next(_n)}"
    (folder / f"{module}.py").write_text(AGENT)
    (folder / "flags.json").write_text(json.dumps(FLAGS))
    (folder / "shipyard.yaml").write_text(
        textwrap.dedent(f"""\
        models:
          desk-model:
            provider: openai
            base_url: {llm_url}
            model: mock
            tier: small
            prices: {json.dumps(PRICES)}
        agents:
          desk:
            entry: {module}:desk
            model: {{name: desk-model}}
        """)
    )
    sys.path.insert(0, str(folder))
    return module


def forget(folder: Path, module: str) -> None:
    """Undo `write_project`'s import path and module."""
    if str(folder) in sys.path:
        sys.path.remove(str(folder))
    sys.modules.pop(module, None)
