"""A small desk agent for shadow replay tests: its model is the mock LLM server over HTTP.

`desk` looks an order up (`lookup`, idempotent) and, asked for a refund, refunds it (`refund`, a side
effect: each real run appends a line to `refunds.log` beside the project). Version 1.0 looks the
order up and answers; version 2.0 (a prompt that says "refund at once") refunds straight away.
With `NOISY` in the system prompt the agent ends its reply with one of three closings, drawn from a
generator seeded by the input and the shadow arm that runs it: the baseline's two runs disagree on some
inputs, like a real model at temperature > 0, and the same ones in every test run (an unseeded draw made
the noise tests fail about once in 1,600 runs: too little noise drawn, or too much agreement).

Latency is compared only beyond a minute (`shadow.latency`, unless a test sets its own): the three
arms of an interaction run at once on the test's machine, whose stalls are not the version's. On a
loaded machine a stall of a few hundred ms in the candidate's arm alone is a latency difference, and
with the baseline's arms agreeing everywhere else (no noise) that one difference is reported."""

from __future__ import annotations

import itertools
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from testdb import at_newest_schema

from shipyard.llm import MockLLMServer

_counter = itertools.count()

RULES = """\
default: "I can only help with orders."
rules:
  - name: judge-says-same
    when: {system: 'You compare two replies'}
    reply: '{{"pass": true, "score": 1, "reason": "the same answer"}}'
  - name: refunded
    when: {last_tool: refund}
    reply: "Refunded order {result[order_id]}: {result[refund_id]}."
  - name: refund-at-once
    when: {last_tool: lookup, system: 'refund at once', user: '(?i)refund', not_called: [refund]}
    tool_calls: [{name: refund, arguments: {order_id: "{result[order_id]}", amount: "{result[total]}"}}]
  - name: answer
    when: {last_tool: lookup}
    reply: "Order {result[order_id]} is {result[status]} and cost {result[total]} USD."
  - name: lookup
    when: {user: 'order (?P<id>\\d+)', fresh: true}
    tool_calls: [{name: lookup, arguments: {order_id: "{id}"}}]
"""

AGENT = '''\
import random
from pathlib import Path
from shipyard import AgentContext, AgentResult, agent
from shipyard.tools import ToolRegistry

tools = ToolRegistry()
LOG = Path(__file__).with_name("refunds.log")
CLOSINGS = [
    " Thanks for shopping with us and have a wonderful day!",
    " Is there anything else I can help you with today?",
    " Let me know whenever you have more questions.",
]

@tools.tool(idempotent=True)
def lookup(order_id: str) -> dict:
    """Find an order."""
    return {"order_id": order_id, "status": "delivered", "total": 20.0}

@tools.tool()
def refund(order_id: str, amount: float) -> dict:
    """Refund an order (a side effect)."""
    with LOG.open("a") as f:
        f.write(f"{order_id} {amount}\\n")
    return {"order_id": order_id, "refund_id": "R-" + order_id}

@agent("desk", tools=tools)
async def desk(user_input: str, ctx: AgentContext) -> AgentResult:
    messages = [{"role": "system", "content": ctx.system_prompt}, *ctx.history,
                {"role": "user", "content": user_input}]
    for _ in range(4):
        reply = await ctx.llm.chat(messages, tools=ctx.tools.definitions())
        if not reply.tool_calls:
            text = reply.text or ""
            if "NOISY" in ctx.system_prompt:
                arm = ctx.metadata.get("shadow", {}).get("arm", "served")
                text += random.Random(f"{user_input}|{arm}").choice(CLOSINGS)
            return AgentResult(output=text)
        messages.append(reply.to_message())
        for call in reply.tool_calls:
            res = await ctx.tools.run(call)
            messages.append({"role": "tool", "tool_call_id": call.id, "name": call.name, "content": res.content()})
    return AgentResult(output="gave up", status="failed")
'''


def _bundle(folder: Path, version: str, prompt: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "system_prompt.txt").write_text(prompt + "\n")
    (folder / "version.txt").write_text(version + "\n")


@contextmanager
def desk_project(
    folder: Path, llm_url: str, *, noisy: bool = False, extra: str = "", guardrails: str = ""
) -> Iterator[Path]:
    """Write the project into `folder` (model: the mock LLM at `llm_url`); yields shipyard.yaml's path.
    `guardrails`: the agent's guardrails as one line of YAML (`guardrails: {...}`); `extra`: more
    top-level YAML."""
    module = f"shadowdesk{next(_counter)}"
    (folder / f"{module}.py").write_text(AGENT)
    noise = " NOISY" if noisy else ""
    _bundle(folder / "prompts" / "v1", "1.0.0", "You help customers with orders." + noise)
    _bundle(folder / "prompts" / "v2", "2.0.0", "You help customers with orders; refund at once." + noise)
    config = folder / "shipyard.yaml"
    config.write_text(
        textwrap.dedent(f"""\
        models:
          mock: {{provider: openai, base_url: '{llm_url}', model: mock, prices: {{input: 1.0, output: 2.0}}}}
        agents:
          desk:
            entry: {module}:desk
            prompts: prompts/v1
            model: {{name: mock}}
            versions:
              - prompts: prompts/v2
            {guardrails}
        store:
          url: {at_newest_schema(f"sqlite:///{folder / 'shipyard.db'}")}
        """)
        + _with_machine_latency(textwrap.dedent(extra))
    )
    sys.path.insert(0, str(folder))
    try:
        yield config
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop(module, None)


MACHINE_LATENCY = {"ratio": 2.0, "min_delta": 60_000.0}
"""`shadow.latency` of the desk projects (see the module docs): a minute apart before it counts."""


def _with_machine_latency(extra: str) -> str:
    """`extra` (top-level YAML) with `shadow.latency` set to MACHINE_LATENCY unless it sets its own."""
    sections = yaml.safe_load(extra) or {}
    sections.setdefault("shadow", {}).setdefault("latency", MACHINE_LATENCY)
    return yaml.safe_dump(sections, sort_keys=False)


@pytest.fixture(scope="module")
def llm_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The mock LLM server playing the desk agent's model (RULES), over HTTP on loopback."""
    rules = tmp_path_factory.mktemp("llm") / "rules.yaml"
    rules.write_text(RULES)
    with MockLLMServer(rules) as url:
        yield url


Inputs = Callable[[int], list[str]]


def production_inputs(n: int) -> list[str]:
    """`n` production inputs: every third asks for a refund, the rest where an order is."""
    return [
        f"Please refund order {100 + i}" if i % 3 == 0 else f"Where is order {100 + i}?" for i in range(n)
    ]
