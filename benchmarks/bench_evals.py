"""Eval runner speed and memory.

1. 1,000 cases against `shipyard mock-llm` over HTTP (a subprocess) with 50 ms model latency at
   concurrency 64: wall time beside the model floor (1000 / 64 * 50 ms = 0.78 s per model call of a
   case), and Shipyard's own CPU per case (this process's CPU: runtime, runner, scoring, HTTP client;
   the mock model's CPU is its own process's). Target: ≤ 1 ms, so a run is bounded by the model.
   Then the same with the default, adaptive concurrency (from 8, growing while the model keeps up).
2. Shipyard's eval overhead per case with zero model latency: the runner (scheduling, scoring,
   results) versus the same interactions invoked directly through the runtime, in CPU per case.
3. Peak memory (max RSS, in a fresh process) of a run of 20,000 cases on the in-process scripted model.
4. `--only client`: the model client alone (`OpenAIChatClient.chat` against the mock over HTTP, zero
   latency, 16 calls at a time): this process's CPU per call, the HTTP client's share of 1.

Each part runs as `shipyard eval run` runs: on `shipyard._aio.run` (uvloop when it imports, else
asyncio, `SHIPYARD_EVENT_LOOP=asyncio` for asyncio's own; the first line names it; the young GC
generation collected every 10,000 allocations), with what the run uses frozen out of the garbage
collector's walks once built (`gc.freeze`, as the CLI's start-up does).

    .venv/bin/python benchmarks/bench_evals.py [--cases 1000] [--memory-cases 20000] [--only client]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import yaml

from shipyard._aio import loop_name, run
from shipyard.config import ShipyardConfig, load_config
from shipyard.evals import EvalRunner, Suite
from shipyard.llm import MockLLMServer
from shipyard.runtime import Runtime

RULES = {
    "default": "I can only look up orders.",
    "rules": [
        {"when": {"last_tool": "lookup"}, "reply": "Order {result[order_id]} is {result[status]}."},
        {
            "when": {"user": r"order (?P<id>\d+)", "fresh": True},
            "tool_calls": [{"name": "lookup", "arguments": {"order_id": "{id}"}}],
        },
    ],
}

AGENT = '''\
from shipyard import AgentContext, AgentResult, agent
from shipyard.tools import ToolRegistry

tools = ToolRegistry()

@tools.tool(idempotent=True)
def lookup(order_id: str) -> dict:
    """Find an order."""
    return {"order_id": order_id, "status": "shipped"}

@agent("bench", tools=tools)
async def bench(user_input: str, ctx: AgentContext) -> AgentResult:
    messages = [{"role": "user", "content": user_input}]
    for _ in range(3):
        reply = await ctx.llm.chat(messages, tools=ctx.tools.definitions())
        if not reply.tool_calls:
            return AgentResult(output=reply.text or "")
        messages.append(reply.to_message())
        for call in reply.tool_calls:
            res = await ctx.tools.run(call)
            messages.append({"role": "tool", "tool_call_id": call.id, "name": call.name, "content": res.content()})
    return AgentResult(output="gave up", status="failed")
'''


def project(folder: Path, model: str, url: str | None = None) -> ShipyardConfig:
    (folder / "benchagent.py").write_text(AGENT)
    (folder / "rules.yaml").write_text(yaml.safe_dump(RULES))
    mock = f"  mock: {{provider: openai, base_url: '{url}', max_retries: 0, timeout_s: 30}}\n" if url else ""
    (folder / "shipyard.yaml").write_text(
        "models:\n  scripted: {provider: scripted, rules: rules.yaml, prices: {input: 0.15, output: 0.6}}\n"
        + mock
        + textwrap.dedent(f"""\
        agents:
          bench: {{entry: benchagent:bench, model: {{name: {model}}}}}
        """)
    )
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    return load_config(folder / "shipyard.yaml")


def suite(n: int, calls: int = 2) -> Suite:
    """`calls` = 2: a tool call then the answer; 1: a question answered in one model call."""
    if calls == 1:
        cases = [
            {"id": f"c{i}", "input": f"hello number {i}", "expected": "I can only look up orders."}
            for i in range(n)
        ]
    else:
        cases = [
            {
                "id": f"c{i}",
                "input": f"where is order {10000 + i}?",
                "expected": "shipped",
                "trajectory": {"mode": "exact", "calls": [{"name": "lookup"}]},
            }
            for i in range(n)
        ]
    return Suite.model_validate({"name": "bench", "cases": cases})


async def over_http(n: int, concurrency: int) -> None:
    with MockLLMServer(RULES, latency_ms=50, subprocess=True) as url:
        cfg = project(Path(tempfile.mkdtemp(prefix="shipyard-bench-evals-")), "mock", url)
        rt = Runtime(cfg)
        gc.freeze()  # as `shipyard eval run` does once what the run uses is built (cli._app.start_up)
        warm = await EvalRunner(rt, cfg, concurrency=concurrency).run("bench", [suite(64)], progress=False)
        assert all(r.outcome == "PASS" for r in warm.results), warm.results[0]
        for calls, limit in ((1, concurrency), (2, concurrency), (2, None)):
            s = suite(n, calls)
            runner = EvalRunner(rt, cfg, concurrency=limit)
            t0, cpu0 = time.perf_counter(), time.process_time()
            result = await runner.run("bench", [s], progress=False)
            wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            floor = n / (limit or 64) * 0.05 * calls
            grew = (
                f"adaptive: {runner.limiter.highest} at most, {runner.limiter.halvings} halvings"
                if limit is None and runner.limiter is not None
                else f"concurrency {limit}"
            )
            print(
                f"{n} cases over HTTP, 50 ms/model call x {calls} call(s) per case, {grew}: {wall:.2f} s "
                f"(model floor {floor:.2f} s at 64, {wall / floor:.1f}x); Shipyard's own CPU "
                f"{cpu / n * 1000:.3f} ms/case (target ≤ 1 ms); {result.counts()}"
            )
        await rt.aclose()


async def client_cpu(n: int) -> None:
    from shipyard.llm import OpenAIChatClient

    with MockLLMServer(RULES, latency_ms=0, subprocess=True) as url:
        client = OpenAIChatClient(url, "mock", breaker=None, max_retries=0)
        messages = [{"role": "user", "content": "hello"}]
        gate = asyncio.Semaphore(16)

        async def one() -> None:
            async with gate:
                assert (await client.chat(messages, temperature=0.0)).text

        await asyncio.gather(*(one() for _ in range(500)))  # warm: connections open, code loaded
        best = float("inf")
        for _ in range(3):
            t0 = time.process_time()
            await asyncio.gather(*(one() for _ in range(n)))
            best = min(best, time.process_time() - t0)
        await client.aclose()
    print(f"model client alone, {n} calls 16 at a time (best of 3): {best / n * 1e6:.0f} µs CPU per call")


async def overhead(n: int) -> None:
    cfg = project(Path(tempfile.mkdtemp(prefix="shipyard-bench-evals-")), "scripted")
    rt = Runtime(cfg)
    gc.freeze()
    s = suite(n)
    await EvalRunner(rt, cfg, concurrency=1).run("bench", [suite(200)], progress=False)
    best_direct = best_runner = float("inf")
    for _ in range(3):
        t0 = time.process_time()
        for c in s.cases:
            await rt.invoke("bench", c.input or "", traffic_source="eval")
        best_direct = min(best_direct, time.process_time() - t0)
        t0 = time.process_time()
        await EvalRunner(rt, cfg, concurrency=1).run("bench", [s], progress=False)
        best_runner = min(best_runner, time.process_time() - t0)
    await rt.aclose()
    print(
        f"zero latency, {n} cases, CPU per case: runtime alone {best_direct / n * 1000:.3f} ms (the scripted "
        f"model's two calls and a tool call included), through the eval runner {best_runner / n * 1000:.3f} ms; "
        f"the runner's own share {(best_runner - best_direct) / n * 1000:.3f} ms/case"
    )


async def memory(n: int) -> None:
    cfg = project(Path(tempfile.mkdtemp(prefix="shipyard-bench-evals-")), "scripted")
    rt = Runtime(cfg)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    s = suite(n)
    t0 = time.perf_counter()
    result = await EvalRunner(rt, cfg, concurrency=64).run("bench", [s], progress=False)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    await rt.aclose()
    print(
        f"{n} cases in-process: {wall:.1f} s, peak RSS {peak:.0f} MB (before the run {base:.0f} MB; "
        f"{len(result.results)} results, {result.counts()})"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--overhead-cases", type=int, default=1000)
    ap.add_argument("--memory-cases", type=int, default=20000)
    ap.add_argument("--client-calls", type=int, default=3000)
    ap.add_argument("--only", choices=["http", "overhead", "memory", "client"])
    args = ap.parse_args()
    if args.only != "memory":  # the memory part is a subprocess of a run that printed it already
        print(f"event loop: {loop_name()} (as `shipyard eval run`)")
    if args.only == "client":
        run(client_cpu(args.client_calls))
        return
    if args.only == "memory":
        run(memory(args.memory_cases))
        return
    if args.only in (None, "http"):
        run(over_http(args.cases, args.concurrency))
    if args.only in (None, "overhead"):
        run(overhead(args.overhead_cases))
    if args.only is None:  # a fresh process, so the peak is this run's alone
        subprocess.run(
            [sys.executable, __file__, "--only", "memory", "--memory-cases", str(args.memory_cases)],
            check=True,
        )


if __name__ == "__main__":
    main()
