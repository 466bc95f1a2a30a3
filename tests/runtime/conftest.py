"""A small project on disk: a scripted model, a prompt bundle and agent code in a fresh module."""

from __future__ import annotations

import itertools
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shipyard.config import ShipyardConfig, load_config

_counter = itertools.count()

RULES = """\
default: "I can only look up orders."
rules:
  - name: answer
    when: {last_tool: lookup}
    reply: "Order {result[order_id]} is {result[status]}."
  - name: lookup
    when: {user: 'order (?P<id>\\d+)', fresh: true}
    tool_calls: [{name: lookup, arguments: {order_id: "{id}"}}]
"""

AGENT = '''\
import asyncio
from shipyard import AgentContext, AgentResult, agent
from shipyard.tools import ToolRegistry

tools = ToolRegistry()

@tools.tool(idempotent=True)
def lookup(order_id: str) -> dict:
    """Find an order."""
    return {"order_id": order_id, "status": "shipped"}

@agent("shop", tools=tools)
async def shop(user_input: str, ctx: AgentContext) -> AgentResult:
    if "crash" in user_input:
        raise RuntimeError("agent bug")
    if "slow" in user_input:
        await asyncio.sleep(5)
    messages = [{"role": "system", "content": ctx.system_prompt}, {"role": "user", "content": user_input}]
    for _ in range(4):
        reply = await ctx.llm.chat(messages, tools=ctx.tools.definitions())
        if not reply.tool_calls:
            return AgentResult(output=reply.text or "", metadata={"steps": len(messages)})
        messages.append(reply.to_message())
        for call in reply.tool_calls:
            res = await ctx.tools.run(call)
            messages.append({"role": "tool", "tool_call_id": call.id, "name": call.name, "content": res.content()})
    return AgentResult(output="gave up", status="failed")

@agent("shop_sync", tools=tools)
def shop_sync(user_input, ctx):
    reply = ctx.llm.chat_sync([{"role": "user", "content": user_input}], tools=ctx.tools.definitions())
    results = [ctx.tools.run_sync(c) for c in reply.tool_calls]
    return "sync: " + ", ".join(str(r.value) for r in results)
'''


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Callable[..., ShipyardConfig]]:
    """Write a project and return a loader; `extra` is appended to shipyard.yaml."""
    module = f"shopagent{next(_counter)}"
    (tmp_path / f"{module}.py").write_text(AGENT)
    (tmp_path / "rules.yaml").write_text(RULES)
    bundle = tmp_path / "prompts" / "shop"
    bundle.mkdir(parents=True)
    (bundle / "system_prompt.txt").write_text("You help {{ company }} customers.\n{{ safety_rules }}\n")
    (bundle / "safety_rules.txt").write_text("Never share other customers' orders.\n")
    (bundle / "tool_descriptions.yaml").write_text(
        "lookup:\n  description: Look up one order.\n  parameters: {order_id: The order number}\n"
    )
    (bundle / "version.txt").write_text("2.0.0\n")
    sys.path.insert(0, str(tmp_path))

    def make(
        extra: str = "", entry: str = "shop", timeout: float = 2.0, guardrails: str = ""
    ) -> ShipyardConfig:
        """`guardrails` is the agent's `guardrails:` section (YAML, indented as under the agent)."""
        (tmp_path / "shipyard.yaml").write_text(
            textwrap.dedent(f"""\
            models:
              scripted: {{provider: scripted, rules: rules.yaml, prices: {{input: 1.0, output: 2.0}}}}
              dead:
                provider: openai
                base_url: http://127.0.0.1:9/v1
                max_retries: 1
                backoff_base_s: 0.01
                connect_timeout_s: 0.5
            agents:
              shop:
                entry: {module}:{entry}
                prompts: prompts/shop
                prompt_variables: {{company: Acme}}
                timeout_s: {timeout}
                model: {{name: scripted}}
            """)
            + (f"    guardrails:\n{guardrails}" if guardrails else "")
            + textwrap.dedent(extra)
        )
        return load_config(tmp_path / "shipyard.yaml")

    yield make
    sys.path.remove(str(tmp_path))
