"""Throughput of the mock LLM server on one core, and the client CPU cost per call (aiohttp vs httpx).

The server runs in a child process pinned to CPU 0; load comes from other processes pinned to the
other CPU(s) over keep-alive aiohttp connections. The server's own CPU use is read from /proc, so
the output says whether the server or the load generator was the limit.

    .venv/bin/python benchmarks/bench_mock_llm.py [--seconds 5] [--concurrency 64] [--procs 1]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson
import uvloop

from shipyard.llm import MockLLMServer, OpenAIChatClient

RULES = """
prompt_cache: true
default: "Sorry, I can't help with that."
rules:
  - name: escalate
    when: {user: '(?i)\\b(human|agent|manager)\\b'}
    reply: "Let me connect you with a person."
  - name: order-status
    when: {last_tool: lookup_order, tool_result: '"status"'}
    reply: "Order {result[order_id]} is {result[status]}."
  - name: lookup-order
    when: {user: '(?i)order\\s*#?(?P<order_id>\\d{5})', fresh: true, tools_available: [lookup_order]}
    tool_calls:
      - name: lookup_order
        arguments: {order_id: "{order_id}"}
  - name: refund-policy
    when: {user: '(?i)refund'}
    reply: "Refunds take 5 to 7 business days."
"""

SYSTEM = "You are the support agent of Acme. Be brief and polite. " * 8
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "description": "Look up an order by id.",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string", "description": "five digits"}},
                "required": ["order_id"],
                "additionalProperties": False,
            },
        },
    }
]
MESSAGES = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Where is my order 10001?"}]
BODY = orjson.dumps({"model": "mock", "messages": MESSAGES, "tools": TOOLS})
HEADERS = {"Content-Type": "application/json"}


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# load generation -----------------------------------------------------------------------------------
async def _load(url: str, seconds: float, concurrency: int) -> tuple[int, int, list[float]]:
    connector = aiohttp.TCPConnector(limit=concurrency)
    latencies: list[float] = []
    errors = 0
    async with aiohttp.ClientSession(connector=connector) as session:
        end = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < end:
                t0 = time.perf_counter()
                async with session.post(url + "/chat/completions", data=BODY, headers=HEADERS) as r:
                    await r.read()
                    if r.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(latencies), errors, latencies


def _load_process(url: str, seconds: float, concurrency: int, cpus: set[int], out: Any) -> None:
    os.sched_setaffinity(0, cpus)
    out.put(uvloop.run(_load(url, seconds, concurrency)))


def throughput(
    url: str, server_pid: int, seconds: float, concurrency: int, procs: int, cpus: set[int]
) -> None:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    workers = [
        ctx.Process(target=_load_process, args=(url, seconds, concurrency, cpus, q)) for _ in range(procs)
    ]
    for w in workers:
        w.start()
    time.sleep(0.5)  # let the children import and connect before measuring the server's CPU
    cpu0, t0 = _cpu_seconds(server_pid), time.perf_counter()
    results = [q.get() for _ in workers]
    cpu1, t1 = _cpu_seconds(server_pid), time.perf_counter()
    for w in workers:
        w.join()
    n = sum(r[0] for r in results)
    errors = sum(r[1] for r in results)
    lat = sorted(x for r in results for x in r[2])
    rps = n / seconds
    server_share = (cpu1 - cpu0) / (t1 - t0)
    p50 = lat[len(lat) // 2] * 1000
    p99 = lat[int(len(lat) * 0.99)] * 1000
    print(f"  load: {procs} process(es) x {concurrency} connections on CPU {sorted(cpus)}, {seconds:.0f}s")
    print(f"  {rps:,.0f} requests/s  p50 {p50:.2f} ms  p99 {p99:.2f} ms  errors {errors}")
    print(
        f"  server CPU: {server_share:.0%} of one core, {(cpu1 - cpu0) / max(n, 1) * 1e6:.0f} us per request"
    )
    limit = "the server" if server_share > 0.9 else "the load generator (the server had CPU to spare)"
    print(f"  limit: {limit}")


# client CPU per call ---------------------------------------------------------------------------------
async def _cpu_per_call(kind: str, url: str, calls: int, concurrency: int) -> float:
    sem = asyncio.Semaphore(concurrency)
    if kind == "aiohttp":
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency))

        async def one() -> None:
            async with sem, session.post(url + "/chat/completions", data=BODY, headers=HEADERS) as r:
                orjson.loads(await r.read())

        close: Any = session.close
    elif kind == "httpx":
        client = httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency))

        async def one() -> None:
            async with sem:
                r = await client.post(url + "/chat/completions", content=BODY, headers=HEADERS)
                orjson.loads(r.content)

        close = client.aclose
    else:  # "client" without a circuit breaker, "client+breaker" with the shared default one
        chat = OpenAIChatClient(
            url, "mock", breaker="shared" if kind == "client+breaker" else None, max_connections=concurrency
        )

        async def one() -> None:
            async with sem:
                await chat.chat(MESSAGES, tools=TOOLS)

        close = chat.aclose
    await asyncio.gather(*(one() for _ in range(200)))  # warm up the pool
    c0 = time.process_time()
    await asyncio.gather(*(one() for _ in range(calls)))
    used = time.process_time() - c0
    await close()
    return used / calls * 1e6


def client_cpu(url: str, cpus: set[int], calls: int) -> None:
    os.sched_setaffinity(0, cpus)
    for kind, label in (
        ("aiohttp", "aiohttp (raw)"),
        ("httpx", "httpx (raw)"),
        ("client", "OpenAIChatClient"),
        ("client+breaker", "  + circuit breaker"),
    ):
        one, many = (uvloop.run(_cpu_per_call(kind, url, calls, n)) for n in (1, 16))
        print(f"  {label:<18} {one:6.0f} us CPU per call with 1 in flight, {many:6.0f} us with 16 in flight")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--procs", type=int, default=1, help="load-generator processes")
    ap.add_argument("--calls", type=int, default=3000, help="calls per client in the CPU comparison")
    a = ap.parse_args()
    ncpu = os.cpu_count() or 1
    load_cpus = set(range(1, ncpu)) or {0}
    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "rules.yaml"
        rules.write_text(RULES)
        server = MockLLMServer(rules, subprocess=True, cpu=0)
        with server as url:
            print(f"mock LLM server on CPU 0 ({ncpu} CPUs on this machine), {url}")
            print("throughput (POST /v1/chat/completions, tool-call rule, ~0.7 KB request):")
            throughput(url, server.pid, a.seconds, a.concurrency, a.procs, load_cpus)
            print("client CPU per call against the same server (post + read + JSON parse):")
            client_cpu(url, load_cpus, a.calls)


if __name__ == "__main__":
    main()
