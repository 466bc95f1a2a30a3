"""The gateway under load: `shipyard serve` with the demo agent against `shipyard mock-llm` (zero latency).

64 concurrent keep-alive clients (aiohttp, in this process) post "Where is my order N?" to
/v1/agents/support/invoke: per request the agent makes two model calls over HTTP (a tool call, then the
answer) and one tool call; logs (JSON lines to a file), traces, metrics, the KPI window and the
journal are all on. Prints requests/s, p50 / p99 latency, and the CPU time the server process spent
per request (read from /proc), which is the figure that holds on a busy machine.

    .venv/bin/python benchmarks/bench_gateway.py [--seconds 10] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from helpers import free_port, wait_ready
from shipyard.demo import copy_project

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def load(url: str, seconds: float, concurrency: int) -> list[float]:
    latencies: list[float] = []
    stop = time.perf_counter() + seconds
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as session:

        async def client(n: int) -> None:
            i = 0
            while time.perf_counter() < stop:
                body = {"input": f"Where is my order {10001 + (n + i) % 3}?", "session_id": f"c{n}-{i}"}
                t0 = time.perf_counter()
                async with session.post(url, json=body) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise SystemExit(f"HTTP {resp.status}: {await resp.text()}")
                latencies.append(time.perf_counter() - t0)
                i += 1

        await asyncio.gather(*(client(n) for n in range(concurrency)))
    return latencies


def record_steps_cost(root: Path, n: int = 2000) -> dict[str, float]:
    """Microseconds per interaction of each server record step, on a real demo record (in-process)."""
    from shipyard.config import load_config
    from shipyard.observe import KpiWindow, Metrics, configure_logging, log_interaction
    from shipyard.runtime import Runtime
    from shipyard.server import Journal

    cfg = load_config(root / "shipyard.yaml")
    cfg.agents["support"].model.name = "scripted-small"
    rt = Runtime(cfg)
    record = asyncio.run(rt.invoke("support", "Where is my order 10001?"))
    asyncio.run(rt.aclose())
    devnull = open(os.devnull, "wb")  # noqa: SIM115
    configure_logging(stream=devnull)
    journal = Journal(root / "bench-journal", None)
    metrics, window = Metrics(), KpiWindow()
    out = {}
    for name, step in (
        ("journal append", journal.append),
        ("metrics", metrics.observe_interaction),
        ("KPI window", window.add),
        ("event log (6 lines)", log_interaction),
    ):
        t0 = time.perf_counter()
        for _ in range(n):
            step(record)
        out[name] = (time.perf_counter() - t0) / n * 1e6
    devnull.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--warmup", type=float, default=2.0)
    args = parser.parse_args()
    shipyard = str(Path(sys.executable).with_name("shipyard"))
    with tempfile.TemporaryDirectory() as tmp:
        root = copy_project(Path(tmp) / "demo")
        mock_port, port = free_port(), free_port()
        cfg = (root / "shipyard.yaml").read_text()
        cfg = cfg.replace(
            "models:\n",
            f"models:\n  mock:\n    provider: openai\n    model: mock\n"
            f"    base_url: http://127.0.0.1:{mock_port}/v1\n"
            "    prices: {input: 0.15, output: 0.60}\n",
            1,
        )
        cfg = cfg.replace("model: {name: scripted-small}", "model: {name: mock}")
        (root / "shipyard.yaml").write_text(cfg)
        logs = open(Path(tmp) / "server.log", "wb")  # noqa: SIM115  (open for the server's lifetime)
        mock = subprocess.Popen(
            [shipyard, "mock-llm", "--rules", str(root / "rules" / "support.yaml"), "--port", str(mock_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        server = subprocess.Popen(
            [shipyard, "serve", "--port", str(port), "--config", str(root / "shipyard.yaml")],
            cwd=root,
            stdout=logs,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_ready(f"http://127.0.0.1:{mock_port}/health", mock, "shipyard mock-llm")
            wait_ready(f"http://127.0.0.1:{port}/readyz", server, "shipyard serve")
            url = f"http://127.0.0.1:{port}/v1/agents/support/invoke"
            asyncio.run(load(url, args.warmup, args.concurrency))
            cpu0, mock0, t0 = cpu_seconds(server.pid), cpu_seconds(mock.pid), time.perf_counter()
            latencies = asyncio.run(load(url, args.seconds, args.concurrency))
            elapsed = time.perf_counter() - t0
            cpu = cpu_seconds(server.pid) - cpu0
            mock_cpu = cpu_seconds(mock.pid) - mock0
        finally:
            for proc in (server, mock):
                proc.terminate()
            for proc in (server, mock):
                proc.wait(timeout=30)
            logs.close()
        log_lines = sum(1 for _ in open(Path(tmp) / "server.log", "rb"))  # noqa: SIM115
        steps = record_steps_cost(root)
    n = len(latencies)
    latencies.sort()
    print(
        f"gateway: {n} requests in {elapsed:.1f}s with {args.concurrency} concurrent clients "
        f"on {os.cpu_count()} CPU(s) (load generator and mock LLM on the same machine)"
    )
    print(f"  requests/s           {n / elapsed:10.0f}")
    print(f"  latency p50          {latencies[n // 2] * 1000:10.2f} ms")
    print(f"  latency p99          {latencies[int(n * 0.99)] * 1000:10.2f} ms")
    print(f"  server CPU / request {cpu / n * 1000:10.3f} ms   (the shipyard serve process, from /proc)")
    print(f"  mock LLM CPU / req   {mock_cpu / n * 1000:10.3f} ms   (two model calls per request)")
    print(f"  log lines written    {log_lines:10d}")
    print("record steps per interaction (in-process, one demo record with spans):")
    for name, us in steps.items():
        print(f"  {name:<20} {us:10.1f} us")


if __name__ == "__main__":
    main()
