"""A help-desk project on disk for the cache tests: a scripted model, an agent whose tools count
their calls (an idempotent `lookup`, a `refund` that is not), and an agent whose model is down and
that answers with an apology (a refusal caused by an outage)."""

from __future__ import annotations

import itertools
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from shipyard.config import ShipyardConfig, load_config

_n = itertools.count()

RULES = """\
default: "I can look up orders and refunds."
rules:
  - name: answer-lookup
    when: {last_tool: lookup}
    reply: "Order {result[order_id]} is {result[status]}."
  - name: answer-refund
    when: {last_tool: refund}
    reply: "Refunded order {result[order_id]}."
  - name: lookup
    when: {user: '(?i)status of order (?P<id>\\d+)', fresh: true}
    tool_calls: [{name: lookup, arguments: {order_id: "{id}"}}]
  - name: refund
    when: {user: '(?i)refund order (?P<id>\\d+)', fresh: true}
    tool_calls: [{name: refund, arguments: {order_id: "{id}"}}]
  - name: returns
    when: {user: '(?i)return'}
    reply: "You can return items within 30 days."
  - name: contact
    when: {user: '(?i)contact'}
    reply: "Write to help@example.com or call +1 415 555 0100."
  - name: hello
    when: {user: '(?i)hello'}
    reply: "Hello! Ask me about an order."
"""

AGENT = '''\
from shipyard import AgentContext, AgentResult, agent
from shipyard.llm import LLMError
from shipyard.tools import ToolRegistry

CALLS = {"lookup": 0, "refund": 0, "agent": 0}
tools = ToolRegistry()

@tools.tool(idempotent=True)
def lookup(order_id: str) -> dict:
    """Find an order."""
    CALLS["lookup"] += 1
    return {"order_id": order_id, "status": "shipped"}

@tools.tool()
def refund(order_id: str) -> dict:
    """Refund an order (an effect: not idempotent)."""
    CALLS["refund"] += 1
    return {"order_id": order_id, "refunded": True}

@agent("desk", tools=tools)
async def desk(user_input: str, ctx: AgentContext) -> AgentResult:
    CALLS["agent"] += 1
    if "crash" in user_input:
        raise RuntimeError("agent bug")
    if "greet" in user_input:  # an answer that depends on a feature flag's variant for this user
        return AgentResult(output="Howdy!" if ctx.flags.enabled("casual") else "Good day.")
    if "over budget" in user_input:
        return AgentResult(output="I have reached my processing limit.", metadata={"error_kind": "budget_exceeded"})
    messages = [{"role": "system", "content": ctx.system_prompt}, *ctx.history,
                {"role": "user", "content": user_input}]
    for _ in range(4):
        reply = await ctx.llm.chat(messages, tools=ctx.tools.definitions())
        if not reply.tool_calls:
            return AgentResult(output=reply.text or "")
        messages.append(reply.to_message())
        for call in reply.tool_calls:
            res = await ctx.tools.run(call)
            messages.append({"role": "tool", "tool_call_id": call.id, "name": call.name, "content": res.content()})
    return AgentResult(output="gave up", status="failed")

@agent("fragile")
async def fragile(user_input: str, ctx: AgentContext) -> str:
    CALLS["agent"] += 1
    try:
        reply = await ctx.llm.chat([{"role": "user", "content": user_input}])
    except LLMError:
        return "Sorry, we are having trouble right now. Please try again later."
    return reply.text or ""
'''

Project = Callable[..., ShipyardConfig]


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[tuple[Project, Callable[[], ModuleType]]]:
    """(make, module): `make(cache_yaml, agent_extra="")` writes shipyard.yaml with `cache:` set to
    `cache_yaml` (YAML under `cache:`) and loads it; `module()` is the agent module (its CALLS)."""
    module = f"cachedesk{next(_n)}"
    (tmp_path / f"{module}.py").write_text(AGENT)
    (tmp_path / "rules.yaml").write_text(RULES)
    bundle = tmp_path / "prompts" / "desk"
    bundle.mkdir(parents=True)
    (bundle / "system_prompt.txt").write_text("You help customers.\n")
    (bundle / "version.txt").write_text("1.0.0\n")
    sys.path.insert(0, str(tmp_path))

    def make(cache: str = "", agent_extra: str = "", extra: str = "") -> ShipyardConfig:
        body = textwrap.dedent(f"""\
            project: cachetest{next(_n)}
            models:
              scripted: {{provider: scripted, rules: rules.yaml, prices: {{input: 1.0, output: 2.0}}}}
              dead:
                provider: openai
                base_url: http://127.0.0.1:9/v1
                max_retries: 0
                connect_timeout_s: 0.5
                breaker: {{enabled: false}}
            agents:
              desk:
                entry: {module}:desk
                prompts: prompts/desk
                model: {{name: scripted}}
            """)
        body += textwrap.indent(textwrap.dedent(agent_extra), "    ") if agent_extra else ""
        body += f"  fragile:\n    entry: {module}:fragile\n    model: {{name: dead}}\n"
        if cache:
            body += "cache:\n" + textwrap.indent(textwrap.dedent(cache), "  ")
        body += textwrap.dedent(extra)
        (tmp_path / "shipyard.yaml").write_text(body)
        return load_config(tmp_path / "shipyard.yaml")

    def mod() -> ModuleType:
        __import__(module)
        return sys.modules[module]

    try:
        yield make, mod
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(module, None)
