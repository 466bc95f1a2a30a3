"""The order-desk agent several test folders run (runtime, evals, llm): `shop` asks its model, which
calls the `lookup` tool for an order number and then answers from the tool's result, and the rules
that play that model (the scripted model's rules file, or a mock LLM server's rules).

Shared by the test folders (pytest puts `tests/support` on the import path)."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
  - name: hello
    when: {user: '(?i)hello'}
    reply: "Hello! Ask me about an order."
"""
"""The model's part: an order number asks for `lookup`, its result is the answer; `hello` is greeted;
anything else gets the default."""

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
    messages = [{"role": "system", "content": ctx.system_prompt}, *ctx.history,
                {"role": "user", "content": user_input}]
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
"""The agent module: `shop` (async: the system prompt, the earlier turns and the input to the model,
tool calls run until it answers, at most 4 model calls; "crash" in the input raises, "slow" sleeps
5 s) and `shop_sync` (sync: one model call, its tool calls run); both with the `lookup` tool."""


@contextmanager
def shop_project(folder: Path, prefix: str = "shop") -> Iterator[str]:
    """Write AGENT into `folder` under a module name no other test uses (`prefix` and a number) and
    RULES as `rules.yaml`, with `folder` on the import path until the block ends (then the module is
    forgotten too). Yields the module's name, for `entry: <module>:shop` in shipyard.yaml."""
    module = f"{prefix}{next(_counter)}"
    (folder / f"{module}.py").write_text(AGENT)
    (folder / "rules.yaml").write_text(RULES)
    sys.path.insert(0, str(folder))
    try:
        yield module
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop(module, None)
