"""A small project whose agent asks a mock LLM server (over HTTP) once per step, with budgets.

`write_project(folder, llm_url, budgets_yaml)` writes shipyard.yaml, a rules file and the agent
module (`budget_agent_<n>.py`, on `sys.path`); the agent makes `steps` model calls (from the input:
"steps=3"), catching nothing, so a budget that runs out stops it (the graceful answer)."""

from __future__ import annotations

import itertools
import sys
import textwrap
from pathlib import Path

_n = itertools.count()

RULES = """\
default: "Here is a short answer about your order and its delivery."
"""

AGENT = """\
import re
from shipyard import AgentContext, AgentResult, agent

@agent("budgeted")
async def budgeted(user_input: str, ctx: AgentContext) -> AgentResult:
    m = re.search(r"steps=(\\d+)", user_input)
    steps = int(m.group(1)) if m else 1
    if "feature=research" in user_input:
        ctx.tag_feature("research")
    messages = [{"role": "user", "content": user_input}]
    text = ""
    for _ in range(steps):
        reply = await ctx.llm.chat(messages)
        text = reply.text or ""
        messages += [reply.to_message(), {"role": "user", "content": "go on"}]
    left = ctx.budget.remaining
    return AgentResult(output=text, metadata={"left_usd": left.usd, "left_tokens": left.tokens,
                                               "can_proceed": ctx.budget.can_proceed(10)})
"""


def write_project(
    folder: Path,
    llm_url: str,
    budgets: str,
    *,
    prices: str = "{input: 1000, output: 2000}",
    store_url: str | None = None,
    max_retries: int = 0,
    timeout_s: float = 60.0,
) -> str:
    """Write the project into `folder`; returns the agent module's name."""
    module = f"budget_agent_{next(_n)}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{module}.py").write_text(AGENT)
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    store = f"store: {{url: '{store_url}', flush_interval_ms: 20}}\n" if store_url else ""
    (folder / "shipyard.yaml").write_text(
        textwrap.dedent(f"""\
        models:
          mock:
            provider: openai
            base_url: {llm_url}
            max_retries: {max_retries}
            backoff_base_s: 0.01
            prices: {prices}
        agents:
          budgeted:
            entry: {module}:budgeted
            timeout_s: {timeout_s}
            model: {{name: mock}}
        """)
        + store
        + textwrap.dedent(budgets)
    )
    return module
