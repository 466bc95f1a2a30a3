"""CPU per model call that Shipyard adds when a framework's calls go through the model proxy
(transport + OpenAI wire format + ctx.llm + span + pricing), against calling the scripted model
directly (no latency), and the framework's own cost per call next to it.

Each row runs its calls inside real interactions of the runtime (an agent that loops over model
calls), timing only the calls with `time.process_time`. What Shipyard adds is the proxy row minus
the baseline row: the same httpx exchange answered by the model without Shipyard (the HTTP client's
own cost is the framework's, paid with or without Shipyard). Target: at most 0.2 ms CPU per call.
A framework integration adds its pair of rows to FRAMEWORK_PAIRS (see `langchain_row`).

    .venv/bin/python benchmarks/bench_frameworks.py [--n 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import tempfile
import textwrap
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
from rich.console import Console
from rich.table import Table

from shipyard.agents import AgentContext
from shipyard.config import load_config
from shipyard.integrations import PROXY_BASE_URL, async_http_client, proxy_transport
from shipyard.llm import ScriptedModel, completion_body, parse_rules
from shipyard.runtime import Runtime

RULES: dict[str, Any] = {"default": "Your order 10001 shipped on 2026-11-15 with UPS; it should arrive soon."}
MESSAGES = [
    {"role": "system", "content": "You are the support agent of Acme. Be brief and exact."},
    {"role": "user", "content": "Where is my order 10001?"},
]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "description": "Find an order.",
            "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
        },
    }
]
CALLS_PER_INTERACTION = 100

Row = Callable[[AgentContext, int], Awaitable[None]]


async def scripted_direct(ctx: AgentContext, n: int) -> None:
    """The model alone: what every other row adds to."""
    model = ctx.metadata["model"]
    for _ in range(n):
        await model.chat(MESSAGES, tools=TOOLS)


class BareTransport(httpx.AsyncBaseTransport):
    """The same HTTP exchange without Shipyard: the request straight to the model, answered in
    OpenAI's format. What a framework pays for calling a model over HTTP in process."""

    def __init__(self, model: ScriptedModel) -> None:
        self.model = model

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        req = orjson.loads(await request.aread())
        resp = await self.model.chat(req["messages"], tools=req.get("tools"))
        body = completion_body(resp, req["model"])
        headers = [("content-type", "application/json"), ("content-length", str(len(body)))]
        return httpx.Response(200, headers=headers, stream=httpx.ByteStream(body), request=request)


async def bare_httpx(ctx: AgentContext, n: int) -> None:
    """A bare httpx client against the model, no Shipyard: the baseline of the proxy rows."""
    body = orjson.dumps({"model": "m", "messages": MESSAGES, "tools": TOOLS})
    headers = {"content-type": "application/json"}
    transport = BareTransport(ctx.metadata["model"])
    async with httpx.AsyncClient(transport=transport, base_url=PROXY_BASE_URL) as client:
        for _ in range(n):
            r = await client.post("/chat/completions", content=body, headers=headers)
            r.json()


async def ctx_llm(ctx: AgentContext, n: int) -> None:
    """ctx.llm: span, pricing, usage on the trail."""
    for _ in range(n):
        await ctx.llm.chat(MESSAGES, tools=TOOLS)


async def proxy_httpx(ctx: AgentContext, n: int) -> None:
    """The model proxy under a bare httpx client: transport, wire format, ctx.llm."""
    body = orjson.dumps({"model": "m", "messages": MESSAGES, "tools": TOOLS})
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(transport=proxy_transport(), base_url=PROXY_BASE_URL) as client:
        for _ in range(n):
            r = await client.post("/chat/completions", content=body, headers=headers)
            r.json()


async def proxy_httpx_stream(ctx: AgentContext, n: int) -> None:
    """The same, `stream: true` (SSE chunks)."""
    body = orjson.dumps({"model": "m", "messages": MESSAGES, "tools": TOOLS, "stream": True})
    async with httpx.AsyncClient(transport=proxy_transport(), base_url=PROXY_BASE_URL) as client:
        for _ in range(n):
            r = await client.post("/chat/completions", content=body)
            r.read()


async def openai_sdk(ctx: AgentContext, n: int) -> None:
    """The official `openai` client through the proxy (the SDK's own cost included)."""
    import openai

    client = openai.AsyncOpenAI(
        base_url=PROXY_BASE_URL, api_key="unused", http_client=async_http_client(), max_retries=0
    )
    for _ in range(n):
        await client.chat.completions.create(model="m", messages=MESSAGES, tools=TOOLS)  # type: ignore[arg-type]
    await client.close()


def langchain_row(through_shipyard: bool) -> Row:
    """LangChain's `ChatOpenAI` with the tools bound, as a LangGraph node calls it: straight to the
    model over the bare in-process transport (LangChain's own cost per call, no Shipyard), or built
    with `shipyard.integrations.langgraph.chat_model` (through the proxy and ctx.llm)."""

    async def row(ctx: AgentContext, n: int) -> None:
        from langchain_openai import ChatOpenAI

        from shipyard.integrations.langgraph import chat_model

        if through_shipyard:
            model = chat_model("m")
        else:
            transport = BareTransport(ctx.metadata["model"])
            model = ChatOpenAI(
                model="m",
                base_url=PROXY_BASE_URL,
                api_key="unused",
                http_async_client=httpx.AsyncClient(transport=transport),
                max_retries=0,
                use_responses_api=False,
            )
        bound = model.bind_tools(TOOLS)
        for _ in range(n):
            await bound.ainvoke(MESSAGES)

    return row


def openai_agents_row(through_shipyard: bool) -> Row:
    """The OpenAI Agents SDK: one `Runner.run` per model call, of an agent with a tool (the SDK's
    whole turn: input conversion, its chat-completions model, its tracing). Straight to the model
    over the bare in-process transport, its traces to no processor (the SDK's own cost per call, no
    Shipyard), or with `shipyard.integrations.openai_agents.run_config()` (through the proxy and
    ctx.llm, its agent and turn spans mirrored into the interaction's trace)."""

    async def row(ctx: AgentContext, n: int) -> None:
        from agents import Agent, OpenAIChatCompletionsModel, RunConfig, Runner, function_tool
        from agents.tracing import set_trace_processors
        from openai import AsyncOpenAI

        from shipyard.integrations.openai_agents import run_config

        @function_tool
        def lookup_order(order_id: str) -> str:
            """Find an order."""
            return order_id

        sdk_agent = Agent(name="bench", instructions=MESSAGES[0]["content"], tools=[lookup_order])
        if through_shipyard:
            config = run_config()
        else:
            set_trace_processors([])  # no exporter (nor Shipyard's processor) receives the spans
            http = httpx.AsyncClient(transport=BareTransport(ctx.metadata["model"]))
            client = AsyncOpenAI(base_url=PROXY_BASE_URL, api_key="unused", http_client=http, max_retries=0)  # type: ignore[arg-type]
            config = RunConfig(model=OpenAIChatCompletionsModel("m", openai_client=client))
        for _ in range(n):
            await Runner.run(sdk_agent, MESSAGES[1]["content"], run_config=config)

    return row


def adk_row(through_shipyard: bool) -> Row:
    """Google ADK: one `Runner.run_async` per model call, in a session of its own (made and dropped
    each run, as `adk_agent` does), of an LlmAgent with a tool on a `LiteLlm` model (ADK's whole turn:
    session, request building, LiteLLM, events, its OpenTelemetry spans on an SDK tracer provider).
    Straight to the model over the bare in-process transport (ADK's own cost per call, no Shipyard),
    or with `shipyard.integrations.adk` (through the proxy and ctx.llm, its tools observed, its spans
    kept on the interaction's trace)."""

    async def row(ctx: AgentContext, n: int) -> None:
        from google.adk.agents import LlmAgent
        from google.adk.models.lite_llm import LiteLlm, LiteLLMClient
        from google.adk.runners import Runner
        from google.adk.sessions import InMemorySessionService
        from google.genai import types
        from openai import AsyncOpenAI

        from shipyard.integrations._otel import install_collector
        from shipyard.integrations.adk import AdkAgent

        install_collector()  # ADK's spans are recorded in both rows (to nowhere without Shipyard)
        http = httpx.AsyncClient(transport=BareTransport(ctx.metadata["model"]))
        bare = AsyncOpenAI(base_url=PROXY_BASE_URL, api_key="unused", http_client=http, max_retries=0)  # type: ignore[arg-type]

        class BareClient(LiteLLMClient):
            async def acompletion(self, model: Any, messages: Any, tools: Any, **kwargs: Any) -> Any:
                kwargs.update(client=bare, custom_llm_provider="openai", num_retries=0)
                return await super().acompletion(model, messages, tools, **kwargs)

        def lookup_order(order_id: str) -> str:
            """Find an order."""
            return order_id

        model = (
            LiteLlm(model="openai/m")
            if through_shipyard
            else LiteLlm(model="openai/m", llm_client=BareClient())
        )
        sdk_agent = LlmAgent(
            name="bench", model=model, instruction=MESSAGES[0]["content"], tools=[lookup_order]
        )
        runner = Runner(app_name="bench", agent=sdk_agent, session_service=InMemorySessionService())
        if through_shipyard:
            adk = AdkAgent(runner)
            for _ in range(n):
                await adk(MESSAGES[1]["content"], ctx)
            return
        sessions = runner.session_service
        message = types.Content(role="user", parts=[types.Part(text=MESSAGES[1]["content"])])
        for _ in range(n):
            session = await sessions.create_session(app_name="bench", user_id="u")
            async for _event in runner.run_async(user_id="u", session_id=session.id, new_message=message):
                pass
            await sessions.delete_session(app_name="bench", user_id="u", session_id=session.id)

    return row


AGENT = """\
import time
from shipyard import agent


@agent("bench")
async def bench(user_input, ctx):
    row = ctx.metadata["row"]
    n = ctx.metadata["n"]
    t0 = time.process_time()
    await row(ctx, n)
    return str(time.process_time() - t0)
"""


def project(folder: Path) -> Runtime:
    (folder / "benchframeworks.py").write_text(AGENT)
    (folder / "rules.yaml").write_text(orjson.dumps(RULES).decode())
    (folder / "shipyard.yaml").write_text(
        textwrap.dedent("""\
        models:
          scripted: {provider: scripted, rules: rules.yaml, prices: {input: 1.0, output: 2.0}}
        agents:
          bench: {entry: 'benchframeworks:bench', model: {name: scripted}, timeout_s: 600}
        """)
    )
    return Runtime(load_config(folder / "shipyard.yaml"))


async def cpu_per_call(rt: Runtime, row: Row, n: int, model: ScriptedModel) -> float:
    """Seconds of CPU per call, over n calls in interactions of CALLS_PER_INTERACTION calls."""
    total = 0.0
    done = 0
    while done < n:
        k = min(CALLS_PER_INTERACTION, n - done)
        rec = await rt.invoke("bench", "x", metadata={"row": row, "n": k, "model": model})
        if rec.status != "completed":
            raise RuntimeError(f"the benchmark interaction failed: {rec.error}")
        total += float(rec.output)
        done += k
    return total / n


ROUNDS = 5
BASE_ROWS: dict[str, Row] = {
    "scripted model, direct": scripted_direct,
    "ctx.llm (span + pricing)": ctx_llm,
    "httpx -> model, no Shipyard (baseline)": bare_httpx,
    "proxy: httpx transport -> ctx.llm": proxy_httpx,
    "proxy: same, stream=true": proxy_httpx_stream,
    "openai SDK -> proxy -> ctx.llm": openai_sdk,
}
FRAMEWORK_PAIRS: list[tuple[str, Callable[[bool], Row], str, str]] = [
    # (framework, its row, the row's name on its own path to the model, and through Shipyard)
    (
        "LangChain",
        langchain_row,
        "LangChain ChatOpenAI -> model, no Shipyard",
        "LangChain chat_model -> proxy -> ctx.llm",
    ),
    (
        "OpenAI Agents SDK",
        openai_agents_row,
        "OpenAI Agents SDK Runner.run -> model, no Shipyard",
        "OpenAI Agents SDK run_config() -> proxy -> ctx.llm",
    ),
    (
        "Google ADK",
        adk_row,
        "Google ADK Runner.run_async -> model, no Shipyard",
        "Google ADK adk_agent -> proxy -> ctx.llm",
    ),
]
# every row, by the name its table line shows, in table order; a framework integration adds a pair above
ROWS: dict[str, Row] = dict(BASE_ROWS)
for _, make, own, through in FRAMEWORK_PAIRS:
    ROWS[own], ROWS[through] = make(False), make(True)


async def main(n: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="shipyard-bench-frameworks-"))
    rt = project(folder)
    model = ScriptedModel(parse_rules(RULES))
    runnable = {}
    for name, row in ROWS.items():
        try:
            await cpu_per_call(rt, row, min(n, 50), model)  # warm: imports, caches, connection setup
        except ImportError as e:
            print(f"{name}: skipped ({e.name} is not installed)")
            continue
        runnable[name] = row
    # Rows take turns over several rounds and each keeps its median round, so a burst of other work
    # on the machine lands on one round of every row rather than on all of one row.
    samples: dict[str, list[float]] = {name: [] for name in runnable}
    for _ in range(ROUNDS):
        for name, row in runnable.items():
            gc.collect()
            samples[name].append(await cpu_per_call(rt, row, max(n // ROUNDS, 1), model))
    results = {name: statistics.median(values) for name, values in samples.items()}
    base = results["scripted model, direct"]
    table = Table(
        title=f"CPU per model call, median of {ROUNDS} rounds of {n // ROUNDS} calls (python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d')})"
    )
    table.add_column("path of one model call")
    table.add_column("per call", justify="right")
    table.add_column("over the model alone", justify="right")
    for name, seconds in results.items():
        added = "" if name == "scripted model, direct" else f"{(seconds - base) * 1000:.3f} ms"
        table.add_row(name, f"{seconds * 1000:.3f} ms", added)
    console = Console(width=120)
    console.print(table)
    bare = results["httpx -> model, no Shipyard (baseline)"]
    proxy_added = (results["proxy: httpx transport -> ctx.llm"] - bare) * 1000
    verdict = "within" if proxy_added <= 0.2 else "OVER"
    console.print(
        f"Shipyard adds {proxy_added:.3f} ms CPU per call through the proxy, over the same HTTP exchange "
        f"without it ({verdict} the 0.2 ms target)",
        highlight=False,
    )
    for framework, _, own, through in FRAMEWORK_PAIRS:
        if own in results and through in results:
            console.print(
                f"{framework}: {results[own] * 1000:.3f} ms of its own per call; through Shipyard "
                f"{(results[through] - results[own]) * 1000:+.3f} ms",
                highlight=False,
            )
    await rt.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="model calls per row")
    asyncio.run(main(parser.parse_args().n))
