"""The gateway under load: `shipyard serve` with the demo agent against `shipyard mock-llm` (zero latency),
and the raw floor measured in the same run.

64 concurrent keep-alive clients (aiohttp, in this process) post "Where is my order N?" to
/v1/agents/support/invoke: per request the agent makes two model calls over HTTP (a tool call, then the
answer) and one tool call; logs (JSON lines to a file), traces, metrics, the KPI window and the
journal are all on. Prints requests/s, p50 / p99 latency, and the CPU time the server process spent
per request (read from /proc), which is the figure that holds on a busy machine.

The references, served the same way (uvicorn + uvloop + httptools, one process) and loaded by the same
clients right after:
- floor: a minimal ASGI app doing the same mock calls: the same two chat-completions calls to the same
  mock LLM (aiohttp, keep-alive, orjson) and the same tool function, with nothing else;
- bare ASGI: the same app answering at once (no model call): the cost of the HTTP server alone.
The figure to read is `Shipyard CPU per interaction / floor CPU per interaction`, measured twice:
- the demo's own config: guardrails (input, tool result, output), the session budget and the exact
  cache (SQLite) on besides logs, traces and metrics (issue 16's target with those on: at most 12x);
- "logs, traces, metrics only": the same project with the agent's guardrails and the `cache:` and
  `budgets:` sections taken out (issue 16's target: at most 8x);
and at most 1.1x of itself after many requests or with a dashboard tab polling.

Variants:
    --dashboard     measure again while a dashboard tab polls the server (the page's 4 requests every
                    5 s: overview, timeseries, versions, traces); prints the ratio to the fresh run
    --after N       then send N more requests (a server that has run a while) and measure again;
                    prints the ratio to the fresh run
    --profile FILE  record the server with py-spy during the measurement (speedscope JSON); with
                    --gil only the thread holding the GIL is sampled (where the CPU goes, without the
                    time threads spend waiting for the GIL after I/O, which py-spy counts otherwise)
    --no-plain      skip the "logs, traces, metrics only" server

    .venv/bin/python benchmarks/bench_gateway.py [--seconds 10] [--concurrency 64] [--dashboard] [--after N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from helpers import free_port, py_spy, wait_ready
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


# the floor: a minimal ASGI app doing the same mock calls -------------------------------------------
def serve_floor(port: int, mock_port: int, bare: bool) -> None:
    """Run the floor app (in a child process: `bench_gateway.py --serve-floor`)."""
    import aiohttp
    import orjson
    import uvicorn

    from shipyard.demo._tools import TOOLS
    from shipyard.demo.agent import DEFAULT_SYSTEM_PROMPT

    url = f"http://127.0.0.1:{mock_port}/v1/chat/completions"
    definitions = TOOLS.definitions()
    session: aiohttp.ClientSession | None = None

    async def agent(user_input: str) -> str:
        nonlocal session
        if session is None:
            session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        messages: list[dict] = [
            {"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
            {"role": "user", "content": user_input},
        ]
        for _ in range(6):
            body = orjson.dumps({"model": "mock", "messages": messages, "tools": definitions})
            async with session.post(url, data=body, headers={"content-type": "application/json"}) as resp:
                answer = orjson.loads(await resp.read())
            message = answer["choices"][0]["message"]
            if not message.get("tool_calls"):
                return str(message.get("content") or "")
            messages.append(message)
            for call in message["tool_calls"]:
                fn = call["function"]
                value = TOOLS.get(fn["name"]).fn(**orjson.loads(fn["arguments"]))
                messages.append(
                    {"role": "tool", "tool_call_id": call["id"], "content": orjson.dumps(value).decode()}
                )
        return ""

    async def app(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if scope["path"] == "/readyz":
            out = b'{"status":"ok"}'
        else:
            request = orjson.loads(body)
            output = "ok" if bare else await agent(request["input"])
            out = orjson.dumps(
                {"output": output, "status": "completed", "session_id": request.get("session_id")}
            )
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": out})

    uvicorn.run(
        app, port=port, loop="uvloop", http="httptools", log_level="warning", access_log=False, lifespan="off"
    )


def measure(url: str, pid: int, mock_pid: int, args: argparse.Namespace) -> dict[str, float]:
    """Warm up, then load `url` for args.seconds: requests, elapsed, CPU per request of `pid` and the mock."""
    warm = len(asyncio.run(load(url, args.warmup, args.concurrency)))
    cpu0, mock0, t0 = cpu_seconds(pid), cpu_seconds(mock_pid), time.perf_counter()
    latencies = asyncio.run(load(url, args.seconds, args.concurrency))
    elapsed = time.perf_counter() - t0
    n = len(latencies)
    latencies.sort()
    return {
        "n": n,
        "sent": n + warm,
        "elapsed": elapsed,
        "rps": n / elapsed,
        "p50_ms": latencies[n // 2] * 1000,
        "p99_ms": latencies[int(n * 0.99)] * 1000,
        "cpu_us": (cpu_seconds(pid) - cpu0) / n * 1e6,
        "mock_cpu_us": (cpu_seconds(mock_pid) - mock0) / n * 1e6,
    }


async def poll_dashboard(base: str, stop: asyncio.Event) -> int:
    """What one open dashboard tab does: the overview's 4 requests every 5 s. Returns the polls made."""
    polls = 0
    async with aiohttp.ClientSession() as session:
        while not stop.is_set():
            for path in ("overview", "timeseries", "versions", "traces?limit=25"):
                async with session.get(f"{base}/admin/api/dashboard/{path}") as resp:
                    await resp.read()
            polls += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 5.0)
    return polls


def measure_with_tab(
    url: str, base: str, pid: int, mock_pid: int, args: argparse.Namespace
) -> dict[str, float]:
    """`measure` while a dashboard tab polls the server."""

    async def with_tab() -> tuple[dict[str, float], int]:
        stop = asyncio.Event()
        tab = asyncio.create_task(poll_dashboard(base, stop))
        out = await asyncio.to_thread(measure, url, pid, mock_pid, args)
        stop.set()
        return out, await tab

    out, polls = asyncio.run(with_tab())
    out["dashboard_polls"] = polls
    return out


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
        ("event log (1 line)", log_interaction),
    ):
        t0 = time.perf_counter()
        for _ in range(n):
            step(record)
        out[name] = (time.perf_counter() - t0) / n * 1e6
    devnull.close()
    return out


def plain_config(text: str) -> str:
    """The demo's shipyard.yaml with logs, traces and metrics only: no guardrails, cache or budgets."""
    import yaml

    doc = yaml.safe_load(text)
    for agent in doc["agents"].values():
        agent.pop("guardrails", None)
    doc.pop("cache", None)
    doc.pop("budgets", None)
    return yaml.safe_dump(doc, sort_keys=False)


def serve_and_measure(
    shipyard: str,
    root: Path,
    config: Path,
    log: Path,
    mock: subprocess.Popen[bytes],
    args: argparse.Namespace,
) -> dict[str, float]:
    """Start `shipyard serve` on `config`, measure it as the fresh server is measured, stop it."""
    port = free_port()
    with open(log, "wb") as out:
        server = start(
            [shipyard, "serve", "--port", str(port), "--config", str(config)], cwd=root, stdout=out
        )
        try:
            wait_ready(f"http://127.0.0.1:{port}/readyz", server, "shipyard serve")
            return measure(f"http://127.0.0.1:{port}/v1/agents/support/invoke", server.pid, mock.pid, args)
        finally:
            server.terminate()
            server.wait(timeout=30)


def start(cmd: list[str], **kw: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, stdout=kw.pop("stdout", subprocess.DEVNULL), stderr=subprocess.STDOUT, **kw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument(
        "--dashboard", action="store_true", help="a dashboard tab polls during the measurement"
    )
    parser.add_argument("--after", type=int, default=0, help="send this many requests before measuring")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy the server into this file")
    parser.add_argument("--gil", action="store_true", help="with --profile: sample the GIL holder only")
    parser.add_argument(
        "--no-plain", action="store_true", help="skip the server without guardrails, cache and budgets"
    )
    parser.add_argument(
        "--serve-floor", nargs=3, metavar=("PORT", "MOCK_PORT", "MODE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve_floor:
        port, mock_port, mode = args.serve_floor
        serve_floor(int(port), int(mock_port), bare=mode == "bare")
        return
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
        mock = start(
            [shipyard, "mock-llm", "--rules", str(root / "rules" / "support.yaml"), "--port", str(mock_port)]
        )
        server = start(
            [shipyard, "serve", "--port", str(port), "--config", str(root / "shipyard.yaml")],
            cwd=root,
            stdout=logs,
        )
        procs = [server, mock]
        try:
            wait_ready(f"http://127.0.0.1:{mock_port}/health", mock, "shipyard mock-llm")
            wait_ready(f"http://127.0.0.1:{port}/readyz", server, "shipyard serve")
            base = f"http://127.0.0.1:{port}"
            url = f"{base}/v1/agents/support/invoke"
            spy = None
            if args.profile:
                spy = py_spy(server.pid, args.profile, args.seconds + args.warmup + 2, gil=args.gil)
            ship = measure(url, server.pid, mock.pid, args)  # the fresh server, no tab
            if spy is not None:
                spy.wait(timeout=120)
            variants: dict[str, dict[str, float]] = {}
            sent_total = ship["sent"]
            if args.dashboard:
                variants["with a dashboard tab"] = measure_with_tab(url, base, server.pid, mock.pid, args)
                sent_total += variants["with a dashboard tab"]["sent"]
            if args.after:
                t0 = time.perf_counter()
                sent = 0
                while sent < args.after:
                    sent += len(asyncio.run(load(url, 5.0, args.concurrency)))
                sent_total += sent
                print(f"(sent {sent} requests, in {time.perf_counter() - t0:.0f}s)")
                variants[f"after {sent} more requests"] = measure(url, server.pid, mock.pid, args)
                sent_total += variants[f"after {sent} more requests"]["sent"]
            server.terminate()
            server.wait(timeout=30)
            procs = [mock]
            plain = None
            if not args.no_plain:
                (root / "plain.yaml").write_text(plain_config(cfg))
                plain = serve_and_measure(
                    shipyard, root, root / "plain.yaml", Path(tmp) / "plain.log", mock, args
                )
            floors = {}
            for mode in ("floor", "bare"):
                fport = free_port()
                floor = start([sys.executable, __file__, "--serve-floor", str(fport), str(mock_port), mode])
                procs.append(floor)
                try:
                    wait_ready(f"http://127.0.0.1:{fport}/readyz", floor, f"the {mode} app")
                    floors[mode] = measure(f"http://127.0.0.1:{fport}/invoke", floor.pid, mock.pid, args)
                finally:
                    floor.terminate()
                    floor.wait(timeout=30)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.terminate()
            for proc in procs:
                proc.wait(timeout=30)
            logs.close()
        log_lines = sum(1 for _ in open(Path(tmp) / "server.log", "rb"))  # noqa: SIM115
        steps = record_steps_cost(root)
    floor, bare = floors["floor"], floors["bare"]
    print(
        f"gateway: {args.seconds:g}s per measurement, {args.concurrency} concurrent clients on "
        f"{os.cpu_count()} CPU(s) (load generator and mock LLM on the same machine)"
    )
    print(f"  {'':<28}{'Shipyard':>12}{'floor':>12}{'bare ASGI':>12}")
    rows = (
        ("rps", "requests/s", "{:12.0f}"),
        ("p50_ms", "latency p50 (ms)", "{:12.2f}"),
        ("p99_ms", "latency p99 (ms)", "{:12.2f}"),
        ("cpu_us", "server CPU / request (us)", "{:12.0f}"),
        ("mock_cpu_us", "mock LLM CPU / request (us)", "{:12.0f}"),
    )
    for key, label, fmt in rows:
        print(f"  {label:<28}" + "".join(fmt.format(m[key]) for m in (ship, floor, bare)))
    print(
        f"  Shipyard / floor (CPU per interaction)   {ship['cpu_us'] / floor['cpu_us']:6.2f}x   "
        "(the demo's config: guardrails, budget, exact cache on; target <= 12x)"
    )
    if plain is not None:
        print(
            f"  logs, traces, metrics only: CPU / request {plain['cpu_us']:.0f} us = "
            f"{plain['cpu_us'] / floor['cpu_us']:.2f}x the floor (target <= 8x); "
            f"requests/s {plain['rps']:.0f}, p50 {plain['p50_ms']:.1f} ms"
        )
    print(f"  Shipyard / bare ASGI (CPU per request)   {ship['cpu_us'] / bare['cpu_us']:6.2f}x")
    for name, m in variants.items():
        polls = f", {m['dashboard_polls']:.0f} dashboard polls" if "dashboard_polls" in m else ""
        print(
            f"  {name}: CPU / request {m['cpu_us']:.0f} us = {m['cpu_us'] / ship['cpu_us']:.2f}x the fresh "
            f"server's (target <= 1.1x); requests/s {m['rps'] / ship['rps']:.2f}x{polls}"
        )
    print(
        f"  log lines written                        {log_lines:6d}   "
        f"({log_lines / sent_total:.2f} per request, start-up lines included)"
    )
    print("record steps per interaction (in-process, one demo record with spans):")
    for name, us in steps.items():
        print(f"  {name:<20} {us:10.1f} us")


if __name__ == "__main__":
    main()
