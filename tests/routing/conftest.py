"""A small routed project on disk: two scripted models that answer differently (so a test sees which
tier answered), an agent that names its steps and can make a tool fail or trip a guardrail that
escalates, and a `routing:` section a test can change."""

from __future__ import annotations

import itertools
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shipyard.config import ShipyardConfig, load_config

_counter = itertools.count()

AGENT = '''\
from shipyard import AgentContext, AgentResult, agent
from shipyard.tools import ToolRegistry

tools = ToolRegistry()

@tools.tool()
def flaky(x: str) -> dict:
    """A tool whose backend is down."""
    raise RuntimeError("backend down")

@tools.tool()
def pay(amount: int) -> dict:
    """Pay an amount."""
    return {"paid": amount}

@agent("desk", tools=tools)
async def desk(user_input: str, ctx: AgentContext) -> AgentResult:
    messages = [*ctx.history, {"role": "user", "content": user_input}]
    await ctx.llm.chat(messages, step="classify_intent")
    first = await ctx.llm.chat(messages)
    if "flaky" in user_input:
        await ctx.tools.call("flaky", x="1")
    if "pay twice" in user_input:
        await ctx.tools.call("pay", amount=1)
        await ctx.tools.call("pay", amount=1)
    if "reclassify" in user_input:
        await ctx.llm.chat(messages, step="classify_intent")
    # a call inside the turn (after the agent's own message), not a new user turn
    final = await ctx.llm.chat([*messages, {"role": "assistant", "content": first.text or ""}])
    return AgentResult(output=final.text or "")
'''

SMALL_RULES = "default: small answer\nrules: []\n"
LARGE_RULES = "default: large answer\nrules: []\n"

ROUTING = """\
routing:
  enabled: true
  agents: [desk]
  tiers: {small: small-model, large: large-model}
  steps: {classify_intent: small}
  rules:
    - {when: {pattern: '(?i)lawyer'}, tier: large}
  escalation: {min_confidence: 0.0}
"""


@pytest.fixture
def routing_yaml() -> str:
    """The project's routing section (for a test to vary)."""
    return ROUTING


@pytest.fixture
def routed(tmp_path: Path) -> Iterator[Callable[..., ShipyardConfig]]:
    """Write the project and return a loader: `routing` replaces the routing section (YAML, "" for
    none), `guardrails` is the agent's guardrails section (indented as under the agent)."""
    module = f"routing_desk{next(_counter)}"
    (tmp_path / f"{module}.py").write_text(AGENT)
    (tmp_path / "small.yaml").write_text(SMALL_RULES)
    (tmp_path / "large.yaml").write_text(LARGE_RULES)
    sys.path.insert(0, str(tmp_path))

    def make(routing: str = ROUTING, guardrails: str = "") -> ShipyardConfig:
        (tmp_path / "shipyard.yaml").write_text(
            textwrap.dedent(f"""\
            models:
              small-model: {{provider: scripted, rules: small.yaml, tier: small, prices: {{input: 0.1, output: 0.4}}}}
              large-model: {{provider: scripted, rules: large.yaml, tier: large, prices: {{input: 2.5, output: 10.0}}}}
            agents:
              desk:
                entry: {module}:desk
                model: {{name: small-model}}
            """)
            + (f"    guardrails:\n{guardrails}" if guardrails else "")
            + routing
        )
        return load_config(tmp_path / "shipyard.yaml")

    yield make
    sys.path.remove(str(tmp_path))
    sys.modules.pop(module, None)
