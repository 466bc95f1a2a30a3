"""The project of the integration tests: agents that call the model through Shipyard's model proxy
with a real `openai` client (or plain httpx against the loopback endpoint), as a framework would."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from framework_helpers import Project

from shipyard.runtime import Runtime

RULES: dict[str, Any] = {
    "default": "I can only look up orders.",
    "rules": [
        {
            "name": "answer",
            "when": {"last_tool": "lookup_order"},
            "reply": "Order {result[order_id]} is {result[status]}.",
        },
        {
            "name": "lookup",
            "when": {"user": r"order (?P<id>\d+)", "fresh": True},
            "tool_calls": [{"name": "lookup_order", "arguments": {"order_id": "{id}"}}],
        },
    ],
}

# The agents: each written as a framework user would, against an OpenAI client, with its tool
# declared for the model only (not registered with Shipyard) and run through ctx.tools.observe.
AGENTS = '''\
import asyncio
import json

import httpx
import openai

from shipyard import AgentContext, AgentResult, agent
from shipyard.agents import ReplayedToolError
from shipyard.integrations import PROXY_BASE_URL, async_http_client, base_url_for, http_client

TOOLS = [{"type": "function", "function": {"name": "lookup_order", "description": "Find an order.",
          "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}}}}]
TOOL_RUNS = []   # every real run of the framework's tool
LEAKED = {}      # what an agent leaves behind (a URL used after its interaction ended)


async def lookup_order(order_id: str) -> dict:
    TOOL_RUNS.append(order_id)
    if order_id == "99999":
        raise LookupError(f"no order {order_id}")
    return {"order_id": order_id, "status": "shipped"}


def lookup_order_sync(order_id: str) -> dict:
    TOOL_RUNS.append(order_id)
    return {"order_id": order_id, "status": "shipped"}


def client(retries: int = 0) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=PROXY_BASE_URL, api_key="unused", http_client=async_http_client(), max_retries=retries
    )


async def complete(c, messages, options, stream):
    if not stream:
        reply = await c.chat.completions.create(model="gpt-any", messages=messages, tools=TOOLS, **options)
        return reply.choices[0].message.content, reply.choices[0].message.tool_calls
    text, calls = "", {}
    events = await c.chat.completions.create(
        model="gpt-any", messages=messages, tools=TOOLS, stream=True,
        stream_options={"include_usage": True}, **options,
    )
    async for chunk in events:
        for choice in chunk.choices:
            text += choice.delta.content or ""
            for tc in choice.delta.tool_calls or ():
                call = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
                call["id"] += tc.id or ""
                call["name"] += tc.function.name or ""
                call["arguments"] += tc.function.arguments or ""
    tool_calls = [
        openai.types.chat.ChatCompletionMessageToolCall(
            id=c["id"], type="function", function={"name": c["name"], "arguments": c["arguments"]}
        )
        for c in calls.values()
    ]
    return text or None, tool_calls or None


@agent("proxied")
async def proxied(user_input: str, ctx: AgentContext) -> AgentResult:
    options = dict(ctx.metadata.get("options") or {})
    stream = bool(ctx.metadata.get("stream"))
    c = client(ctx.metadata.get("client_retries", 0))
    messages = [{"role": "user", "content": user_input}]
    try:
        for _ in range(4):
            text, calls = await complete(c, messages, options, stream)
            if not calls:
                return AgentResult(output=text or "")
            messages.append({"role": "assistant", "content": text,
                             "tool_calls": [tc.model_dump() for tc in calls]})
            for tc in calls:
                try:
                    value = await ctx.tools.observe(
                        tc.function.name, tc.function.arguments,
                        lambda tc=tc: lookup_order(**json.loads(tc.function.arguments)), call_id=tc.id,
                    )
                    content = json.dumps(value)
                except (LookupError, ReplayedToolError) as e:  # a replay raises the recorded text
                    content = json.dumps({"error": str(e)})
                messages.append({"role": "tool", "tool_call_id": tc.id, "content": content})
    except openai.APIStatusError as e:
        if ctx.metadata.get("raise"):
            raise
        return AgentResult(output=f"{e.status_code} {type(e).__name__}: {e.message}", status="failed")
    return AgentResult(output="gave up", status="failed")


@agent("proxied_sync")
def proxied_sync(user_input: str, ctx: AgentContext) -> str:
    c = openai.OpenAI(base_url=PROXY_BASE_URL, api_key="unused", http_client=http_client(), max_retries=0)
    messages = [{"role": "user", "content": user_input}]
    for _ in range(4):
        reply = c.chat.completions.create(model="gpt-any", messages=messages, tools=TOOLS)
        message = reply.choices[0].message
        if not message.tool_calls:
            return message.content or ""
        messages.append({"role": "assistant", "content": message.content,
                         "tool_calls": [tc.model_dump() for tc in message.tool_calls]})
        for tc in message.tool_calls:
            args = json.loads(tc.function.arguments)
            value = ctx.tools.observe_sync(tc.function.name, args, lambda: lookup_order_sync(**args))
            messages.append({"role": "tool", "tool_call_id": tc.id, "content": json.dumps(value)})
    return "gave up"


@agent("foreign_loop")
async def foreign_loop(user_input: str, ctx: AgentContext) -> str:
    """A framework that runs its own event loop in a worker thread (as ADK's sync runner does)."""

    async def inner() -> str:
        reply = await client().chat.completions.create(
            model="m", messages=[{"role": "user", "content": user_input}]
        )
        return reply.choices[0].message.content or ""

    return await asyncio.to_thread(asyncio.run, inner())


@agent("blocking")
async def blocking(user_input: str, ctx: AgentContext) -> str:
    """Calls the sync client on the event loop itself (a mistake the proxy must refuse, not hang on)."""
    c = openai.OpenAI(base_url=PROXY_BASE_URL, api_key="unused", http_client=http_client(), max_retries=0)
    try:
        c.chat.completions.create(model="m", messages=[{"role": "user", "content": user_input}])
    except openai.APIStatusError as e:
        return f"{e.status_code}: {e.message}"
    return "answered"


@agent("loopback")
async def loopback(user_input: str, ctx: AgentContext) -> AgentResult:
    """Plain HTTP against the loopback endpoint, as LiteLLM would."""
    url = base_url_for(ctx)
    assert base_url_for() == url  # one URL per interaction
    LEAKED[user_input] = url
    messages = [{"role": "user", "content": user_input}]
    async with httpx.AsyncClient(timeout=60) as h:
        models = (await h.get(f"{url}/models")).json()
        for _ in range(4):
            r = await h.post(f"{url}/chat/completions", json={"model": "x", "messages": messages, "tools": TOOLS})
            if r.status_code != 200:
                return AgentResult(output=f"{r.status_code}: {r.text}", status="failed")
            message = r.json()["choices"][0]["message"]
            if not message.get("tool_calls"):
                return AgentResult(output=message["content"], metadata={"models": models})
            messages.append(message)
            for tc in message["tool_calls"]:
                args = json.loads(tc["function"]["arguments"])
                value = await ctx.tools.observe(tc["function"]["name"], args, lambda: lookup_order(**args))
                messages.append({"role": "tool", "tool_call_id": tc["id"], "content": json.dumps(value)})
    return AgentResult(output="gave up", status="failed")
'''


@dataclass
class ProxyProject(Project):
    """The project (its agent module: AGENTS) with a runtime over it."""

    rt: Runtime = field(kw_only=True)
