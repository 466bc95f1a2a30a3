"""Interactions per second of the demo agent in-process on the scripted model (no latency), and
Shipyard's own overhead per interaction: the same agent run through the runtime (tracing, pricing,
argument checks, the record) versus run with a bare context that only calls the model and the tools.

    .venv/bin/python benchmarks/bench_run.py [--n 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from shipyard.agents import AgentContext, DefaultFlags
from shipyard.config import load_config
from shipyard.demo import copy_project
from shipyard.llm import ChatClient, ChatResponse, Message, ToolCall
from shipyard.runtime import Runtime
from shipyard.tools import ToolRegistry, ToolResult

TEXT = "Where is my order 10001?"  # two model calls and one tool call


class BareLLM:
    def __init__(self, client: ChatClient) -> None:
        self.client = client

    async def chat(self, messages: list[Message], **kw: Any) -> ChatResponse:
        return await self.client.chat(messages, **kw)


class BareTools:
    def __init__(self, registry: ToolRegistry) -> None:
        self.registry = registry
        self._defs = registry.definitions()

    def definitions(self) -> list[dict[str, Any]]:
        return self._defs

    def names(self) -> list[str]:
        return self.registry.names()

    async def call(self, name: str, /, **arguments: Any) -> ToolResult:
        return await self.registry.call(name, arguments)

    async def run(self, tool_call: ToolCall) -> ToolResult:
        return await self.registry.call(tool_call.name, tool_call.arguments)


async def main(n: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="shipyard-bench-run-"))
    rt = Runtime(load_config(copy_project(folder) / "shipyard.yaml"))
    v = rt.resolve_version("support")
    client = rt.client_for(v)
    bare_ctx = AgentContext(
        llm=BareLLM(client),
        tools=BareTools(v.spec.tools),
        prompts=v.bundle,
        flags=DefaultFlags(),
        session_id="bench",
        system_prompt=rt.system_prompt(v),
    )

    async def bare() -> None:
        await v.spec(TEXT, bare_ctx)

    async def full() -> None:
        await rt.invoke("support", TEXT, session_id="bench")

    results = {}
    for label, fn in (("bare agent (model + tools only)", bare), ("through the runtime", full)):
        for _ in range(200):
            await fn()
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(n):
                await fn()
            best = min(best, (time.perf_counter() - t0) / n)
        results[label] = best
        print(f"{label:34} {1 / best:10.0f} interactions/s  {best * 1e6:8.0f} µs/interaction")
    overhead = results["through the runtime"] - results["bare agent (model + tools only)"]
    record = await rt.invoke("support", TEXT)
    print(
        f"\nShipyard overhead per interaction: {overhead * 1e6:.0f} µs "
        f"({len(record.spans)} spans, {len(record.llm_calls)} model calls, {len(record.tool_calls)} tool call)"
    )
    await rt.aclose()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=2000)
    asyncio.run(main(ap.parse_args().n))
